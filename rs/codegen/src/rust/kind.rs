//! The Rust code of one kind: its struct (and its tracepoint attributes
//! struct), decoder, owned copy, serde output and encoder.

use std::fmt::Write;

use super::{data_type, doc, enum_name, int_type};
use crate::registry::{DataType, Field, FieldType, FlagJson, Item, Kind};

/// The struct's fields: (doc, name, type).
fn struct_fields(k: &Kind) -> Vec<(String, String, String)> {
    let mut out = vec![
        ("Kernel CLOCK_MONOTONIC nanoseconds.".to_string(), "ts_ns".to_string(), "u64".to_string()),
        ("Wall-clock time of `ts_ns`.".to_string(), "time".to_string(), "WallTime".to_string()),
    ];
    for h in k.header_fields() {
        out.push((h.doc.into(), h.name.into(), h.rust_type.into()));
    }
    item_fields(k, false, &mut out);
    if k.has_args() {
        let (_, _, use_) = generics(k);
        out.push(("The tracepoint's attributes.".into(), "args".into(), format!("{}{use_}", k.args_rust())));
    }
    for f in &k.flags {
        out.push((f.doc.clone(), f.name.clone(), "bool".into()));
    }
    if !k.data.is_empty() {
        out.push((
            "The data pages were full: the variable fields are absent (counted in stats).".into(),
            "data_lost".into(),
            "bool".into(),
        ));
    }
    out
}

/// Whether an item is a tracepoint attribute (in the `args` struct).
fn is_arg(item: &Item) -> bool {
    match item {
        Item::Field(f) => f.arg,
        Item::Data(d) => d.arg,
    }
}

/// A field name as a Rust identifier (attributes may be keywords).
pub(crate) fn ident(name: &str) -> String {
    if crate::names::RUST_KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// The fields of the kind's items, or of its attributes (`args`).
fn item_fields(k: &Kind, args: bool, out: &mut Vec<(String, String, String)>) {
    for item in k.items().into_iter().filter(|i| is_arg(i) == args) {
        let f = match item {
            Item::Data(d) => {
                out.push((d.doc.clone(), ident(&d.key), data_type(d.ty).into()));
                continue;
            }
            Item::Field(f) => f,
        };
        match &f.ty {
            FieldType::Int { bits, signed } => out.push((f.doc.clone(), ident(&f.rust), int_type(*bits, *signed))),
            FieldType::Comm => out.push((f.doc.clone(), f.rust.clone(), "Comm".into())),
            FieldType::SockAddr => out.push((f.doc.clone(), f.rust.clone(), "Option<std::net::SocketAddr>".into())),
            FieldType::ExitStatus => {
                out.push((
                    "The exit status byte; 0 and meaningless when `signal` is set.".into(),
                    "exit_code".into(),
                    "u8".into(),
                ));
                out.push((
                    "The signal that terminated the process, if one did.".into(),
                    "signal".into(),
                    "Option<u8>".into(),
                ));
                out.push(("The process dumped core.".into(), "core_dumped".into(), "bool".into()));
            }
            FieldType::Errno => out.push((f.doc.clone(), f.rust.clone(), "Option<Errno>".into())),
            FieldType::Result => {
                out.push((
                    format!("{} (None when it failed).", f.doc.trim_end_matches('.')),
                    f.rust.clone(),
                    "Option<i64>".into(),
                ));
                out.push((
                    "Why it failed: the errno, positive (None when it succeeded).".into(),
                    "errno".into(),
                    "Option<i32>".into(),
                ));
            }
            FieldType::Kind => out.push((f.doc.clone(), f.rust.clone(), "EventKind".into())),
            FieldType::Enum(_) => out.push((f.doc.clone(), f.rust.clone(), enum_name(k, f))),
        }
        if let Some(since) = &f.since {
            out.push((format!("`ts_ns` minus `{}`.", f.rust), since.clone(), "u64".into()));
        }
    }
}

/// Serializes one fixed field (and what it derives).
fn serialize_field(o: &mut String, f: &Field) {
    let n = &f.rust;
    let _ = match &f.ty {
        FieldType::ExitStatus => writeln!(
            o,
            "        m.serialize_entry(\"exit_code\", &self.exit_code)?;\n        m.serialize_entry(\"signal\", &self.signal)?;\n        m.serialize_entry(\"core_dumped\", &self.core_dumped)?;"
        ),
        FieldType::Errno => {
            writeln!(o, "        if let Some(e) = &self.{n} {{\n            m.serialize_entry(\"{n}\", e)?;\n        }}")
        }
        FieldType::Result => writeln!(
            o,
            "        m.serialize_entry(\"{n}\", &self.{n})?;\n        m.serialize_entry(\"errno\", &self.errno)?;"
        ),
        _ => writeln!(o, "        m.serialize_entry(\"{n}\", &self.{n})?;"),
    };
    if let Some(since) = &f.since {
        let _ = writeln!(o, "        m.serialize_entry(\"{since}\", &self.{since})?;");
    }
}

/// Serializes one field or variable field of `owner` (self, or self.args).
fn serialize_item(o: &mut String, item: &Item, owner: &str) {
    match item {
        Item::Field(f) if f.json && f.arg => {
            let _ = writeln!(o, "        m.serialize_entry(\"{}\", &{owner}.{})?;", f.rust, ident(&f.rust));
        }
        Item::Field(f) if f.json => serialize_field(o, f),
        Item::Data(d) if d.json => {
            let (key, name) = (&d.key, ident(&d.key));
            let _ = match d.ty {
                DataType::String | DataType::Bytes => {
                    writeln!(o, "        m.serialize_entry(\"{key}\", &ByteStr({owner}.{name}.as_ref()))?;")
                }
                _ => writeln!(o, "        m.serialize_entry(\"{key}\", &{owner}.{name})?;"),
            };
        }
        _ => {}
    }
}

/// A tracepoint's attributes: their struct, owned copy and serde output.
pub(super) fn args_struct(o: &mut String, k: &Kind) {
    let (decl, bound, use_) = generics(k);
    let name = k.args_rust();
    let _ = writeln!(o, "/// The attributes of {} events, as the kernel's tracepoint names them.", k.json_type());
    let copy = if k.generic() { "" } else { "Copy, " };
    let _ = writeln!(o, "#[derive(Clone, {copy}Debug, PartialEq, Eq)]\npub struct {name}{decl} {{");
    let mut fields = Vec::new();
    item_fields(k, true, &mut fields);
    for (d, field, ty) in &fields {
        doc(o, "    ", d);
        let _ = writeln!(o, "    pub {field}: {ty},");
    }
    o.push_str("}\n\n");
    // The kind's owned copy is `*self` when there are no bytes to copy.
    if k.generic() {
        let _ = writeln!(
            o,
            "impl{bound} {name}{use_} {{\n    fn to_owned_args(&self) -> {name}<Vec<u8>> {{\n        {name} {{"
        );
        for (_, field, ty) in &fields {
            let _ = match ty.as_str() {
                "B" => writeln!(o, "            {field}: self.{field}.as_ref().to_vec(),"),
                _ => writeln!(o, "            {field}: self.{field},"),
            };
        }
        o.push_str("        }\n    }\n}\n\n");
    }
    let _ = writeln!(
        o,
        "impl{bound} Serialize for {name}{use_} {{\n    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {{\n        let mut m = s.serialize_map(None)?;"
    );
    for item in k.items().iter().filter(|i| is_arg(i)) {
        serialize_item(o, item, "self");
    }
    o.push_str("        m.end()\n    }\n}\n\n");
}

pub(super) fn generics(k: &Kind) -> (&'static str, &'static str, &'static str) {
    // (declaration, impl bound, use)
    if k.generic() {
        ("<B = Vec<u8>>", "<B: AsRef<[u8]>>", "<B>")
    } else {
        ("", "", "")
    }
}

pub(super) fn kind_struct(o: &mut String, k: &Kind) {
    let (decl, _, _) = generics(k);
    for f in &k.fields {
        if let FieldType::Enum(values) = &f.ty {
            doc(o, "", &f.doc);
            o.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]\n");
            let _ = writeln!(o, "pub enum {} {{", enum_name(k, f));
            for v in values {
                doc(o, "    ", &v.doc);
                let _ = writeln!(o, "    {},", crate::names::camel(&v.name));
            }
            o.push_str("}\n\n");
            let name = enum_name(k, f);
            let _ = writeln!(o, "impl {name} {{\n    /// The name JSON shows.\n    pub fn name(self) -> &'static str {{\n        match self {{");
            for v in values {
                let _ = writeln!(o, "            {name}::{} => \"{}\",", crate::names::camel(&v.name), v.name);
            }
            o.push_str("        }\n    }\n\n    fn from_raw(raw: u32) -> Option<Self> {\n        match raw {\n");
            for v in values {
                let _ = writeln!(o, "            {} => Some({name}::{}),", v.value, crate::names::camel(&v.name));
            }
            o.push_str("            _ => None,\n        }\n    }\n\n    fn raw(self) -> u32 {\n        match self {\n");
            for v in values {
                let _ = writeln!(o, "            {name}::{} => {},", crate::names::camel(&v.name), v.value);
            }
            o.push_str("        }\n    }\n}\n\n");
            let _ = writeln!(o, "impl Serialize for {name} {{\n    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {{\n        s.serialize_str(self.name())\n    }}\n}}\n");
        }
    }
    doc(o, "", &k.doc);
    if k.generic() {
        o.push_str("#[derive(Clone, Debug, PartialEq, Eq)]\n");
    } else {
        o.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq)]\n");
    }
    if k.hidden {
        o.push_str("#[doc(hidden)]\n");
    }
    let _ = writeln!(o, "pub struct {}{decl} {{", k.rust);
    for (d, name, ty) in struct_fields(k) {
        doc(o, "    ", &d);
        let _ = writeln!(o, "    pub {name}: {ty},");
    }
    o.push_str("}\n\n");
}

pub(super) fn decoder(o: &mut String, k: &Kind) {
    let lt = if k.generic() { "<&'a [u8]>" } else { "" };
    let _ = writeln!(o, "impl<'a> {}{lt} {{", k.rust);
    let _ =
        writeln!(o, "    #[inline]\n    fn decode(h: &Hdr, rec: &'a [u8], realtime_offset: i64) -> Option<Self> {{");
    let _ = writeln!(o, "        let r = Fixed::new(rec, {})?;", k.size);
    if k.generic() {
        let _ = writeln!(o, "        let mut var_bytes = Data::new(rec, {}, h.data_len)?;", k.size);
    } else {
        o.push_str("        let _ = &rec;\n");
    }
    for f in &k.fields {
        match &f.ty {
            FieldType::ExitStatus => {
                let _ = writeln!(o, "        let {} = r.u32({});", f.name, f.offset);
            }
            FieldType::Int { bits: 64, signed: false } if f.since.is_some() => {
                let _ = writeln!(o, "        let {} = r.u64({});", f.rust, f.offset);
            }
            _ => {}
        }
    }
    // Variable fields are taken in record order.
    for (i, d) in k.data.iter().enumerate() {
        let _ = writeln!(o, "        let var_{i} = var_bytes.take(r.u32({}))?;", d.len_offset);
    }
    let _ = writeln!(o, "        Some({} {{", k.rust);
    o.push_str("            ts_ns: h.ts_ns,\n            time: WallTime::from_monotonic(h.ts_ns, realtime_offset),\n");
    for h in k.header_fields() {
        let _ = writeln!(o, "            {0}: h.{0},", h.name);
    }
    let mut args = String::new();
    for f in &k.fields {
        let (n, off) = (&f.rust, f.offset);
        if f.arg {
            if let FieldType::Int { bits, signed } = &f.ty {
                let _ = writeln!(args, "                {}: r.{}({off}),", ident(n), int_type(*bits, *signed));
            }
            continue;
        }
        let _ = match &f.ty {
            FieldType::Int { bits: 64, signed: false } if f.since.is_some() => writeln!(o, "            {n},"),
            FieldType::Int { bits, signed } => writeln!(o, "            {n}: r.{}({off}),", int_type(*bits, *signed)),
            FieldType::Comm => writeln!(o, "            {n}: r.comm({off}),"),
            FieldType::SockAddr => writeln!(o, "            {n}: r.sockaddr({off}),"),
            FieldType::ExitStatus => {
                let s = &f.name;
                writeln!(o, "            exit_code: ({s} >> 8) as u8,\n            signal: Some(({s} & 0x7f) as u8).filter(|&sig| sig != 0),\n            core_dumped: {s} & 0x80 != 0,")
            }
            FieldType::Errno => writeln!(o, "            {n}: Errno::from_raw(r.i32({off})),"),
            FieldType::Result => writeln!(
                o,
                "            {n}: Some(r.i64({off})).filter(|v| *v >= 0),\n            errno: Some(r.i64({off})).filter(|v| *v < 0).map(|v| i32::try_from(v.saturating_neg()).unwrap_or(i32::MAX)),"
            ),
            FieldType::Kind => writeln!(o, "            {n}: EventKind::from_id(r.u32({off}))?,"),
            FieldType::Enum(_) => writeln!(o, "            {n}: {}::from_raw(r.u32({off}))?,", enum_name(k, f)),
        };
        if let Some(since) = &f.since {
            let _ = writeln!(o, "            {since}: h.ts_ns.saturating_sub({n}),");
        }
    }
    for (i, d) in k.data.iter().enumerate() {
        let (name, take) = (ident(&d.key), format!("var_{i}"));
        let out = if d.arg { &mut args } else { &mut *o };
        let indent = if d.arg { "                " } else { "            " };
        let _ = match d.ty {
            DataType::String | DataType::Bytes => writeln!(out, "{indent}{name}: {take},"),
            DataType::Argv => writeln!(out, "{indent}{name}: Argv({take}),"),
            DataType::KStack => writeln!(out, "{indent}{name}: KernelStack({take}),"),
            DataType::UStack => writeln!(out, "{indent}{name}: UserStack({take}),"),
        };
    }
    if k.has_args() {
        let _ = writeln!(o, "            args: {} {{\n{args}            }},", k.args_rust());
    }
    for f in &k.flags {
        let _ = writeln!(o, "            {}: h.flags & (1 << {}) != 0,", f.name, f.bit);
    }
    if k.generic() {
        o.push_str("            data_lost: h.flags & 1 != 0,\n");
    }
    o.push_str("        })\n    }\n}\n\n");
}

pub(super) fn methods(o: &mut String, k: &Kind) {
    let (_, bound, use_) = generics(k);
    let _ = writeln!(o, "impl{bound} {}{use_} {{", k.rust);
    // Owned copy.
    let owned = if k.generic() { format!("{}<Vec<u8>>", k.rust) } else { k.rust.clone() };
    let _ = writeln!(o, "    /// Copies the event out of its batch.\n    pub fn to_owned_event(&self) -> {owned} {{");
    if k.generic() {
        let _ = writeln!(o, "        {} {{", k.rust);
        for (_, name, ty) in struct_fields(k) {
            let _ = match ty.as_str() {
                _ if name == "args" && k.has_args() => writeln!(o, "            args: self.args.to_owned_args(),"),
                "B" => writeln!(o, "            {name}: self.{name}.as_ref().to_vec(),"),
                t if t.ends_with("<B>") => {
                    writeln!(o, "            {name}: {}(self.{name}.0.as_ref().to_vec()),", t.trim_end_matches("<B>"))
                }
                _ => writeln!(o, "            {name}: self.{name},"),
            };
        }
        o.push_str("        }\n");
    } else {
        o.push_str("        *self\n");
    }
    o.push_str("    }\n\n");
    // Serde fields, in the C printer's order.
    o.push_str("    fn serialize_fields<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {\n");
    o.push_str(
        "        m.serialize_entry(\"ts_ns\", &self.ts_ns)?;\n        m.serialize_entry(\"time\", &self.time)?;\n",
    );
    for h in k.header_fields() {
        let _ = writeln!(o, "        m.serialize_entry(\"{0}\", &self.{0})?;", h.name);
    }
    for item in k.items().iter().filter(|i| !is_arg(i)) {
        serialize_item(o, item, "self");
    }
    if k.has_args() {
        o.push_str("        m.serialize_entry(\"args\", &self.args)?;\n");
    }
    for f in &k.flags {
        let _ = match f.json {
            FlagJson::Always => writeln!(o, "        m.serialize_entry(\"{0}\", &self.{0})?;", f.name),
            FlagJson::IfSet => writeln!(
                o,
                "        if self.{0} {{\n            m.serialize_entry(\"{0}\", &true)?;\n        }}",
                f.name
            ),
            FlagJson::Never => Ok(()),
        };
    }
    if k.generic() {
        o.push_str("        m.serialize_entry(\"data_lost\", &self.data_lost)?;\n");
    }
    o.push_str("        Ok(())\n    }\n\n");
    encoder(o, k);
    o.push_str("}\n\n");
    let _ = writeln!(
        o,
        "impl{bound} Serialize for {}{use_} {{\n    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {{\n        let mut m = s.serialize_map(None)?;\n        self.serialize_fields(&mut m)?;\n        m.end()\n    }}\n}}\n",
        k.rust
    );
}

fn encoder(o: &mut String, k: &Kind) {
    o.push_str("    fn encode(&self, out: &mut Vec<u8>) {\n");
    let mut flags = Vec::new();
    if k.generic() {
        flags.push("u16::from(self.data_lost)".to_string());
    }
    for f in &k.flags {
        flags.push(format!("u16::from(self.{}) << {}", f.name, f.bit));
    }
    let flags = if flags.is_empty() { "0".to_string() } else { flags.join(" | ") };
    let pick = |on: bool, name: &str| if on { format!("self.{name}") } else { "0".into() };
    let _ = writeln!(
        o,
        "        let mut w = RecordEncoder::new(out, {}, {}, {flags}, {}, {}, {}, self.ts_ns, {});",
        k.id,
        k.size,
        pick(k.pid, "pid"),
        pick(k.tid, "tid"),
        pick(k.cpu, "cpu"),
        pick(k.proc_start, "proc_start_ns")
    );
    for f in &k.fields {
        let (n, off) = (&f.rust, f.offset);
        let n = if f.arg { format!("args.{}", ident(n)) } else { n.clone() };
        let _ = match &f.ty {
            FieldType::Int { bits, signed } => writeln!(o, "        w.{}({off}, self.{n});", int_type(*bits, *signed)),
            FieldType::Comm => writeln!(o, "        w.comm({off}, &self.{n});"),
            FieldType::SockAddr => writeln!(o, "        w.sockaddr({off}, self.{n});"),
            FieldType::ExitStatus => writeln!(
                o,
                "        w.u32({off}, u32::from(self.exit_code) << 8 | u32::from(self.signal.unwrap_or(0) & 0x7f) | if self.core_dumped {{ 0x80 }} else {{ 0 }});"
            ),
            FieldType::Errno => writeln!(o, "        w.i32({off}, self.{n}.map_or(0, |e| e.errno.saturating_neg()));"),
            FieldType::Result => writeln!(
                o,
                "        w.i64({off}, self.{n}.unwrap_or_else(|| -i64::from(self.errno.unwrap_or(0))));"
            ),
            FieldType::Kind => writeln!(o, "        w.u32({off}, u32::from(self.{n}.id()));"),
            FieldType::Enum(_) => writeln!(o, "        w.u32({off}, self.{n}.raw());"),
        };
    }
    for d in &k.data {
        let n = if d.arg { format!("args.{}", ident(&d.key)) } else { d.key.clone() };
        let bytes = match d.ty {
            DataType::String | DataType::Bytes => format!("self.{n}.as_ref()"),
            _ => format!("self.{n}.0.as_ref()"),
        };
        let _ = writeln!(o, "        w.data({}, {bytes});", d.len_offset);
    }
    o.push_str("        w.finish();\n    }\n");
}
