//! `kinds.rs`: the Rust event types, included into the crate's `event`
//! module. For each kind: a struct generic over its byte storage (borrowed
//! views from a batch, or owned), its decoder (safe reads at the offsets the
//! C header asserts), its encoder (tests and benches), its serde output (the
//! same fields, order and format as the C printer), plus `Event`,
//! `EventKind` and the counter and knob tables.

use std::fmt::Write;

use crate::registry::{DataType, Field, FieldType, FlagJson, Item, Kind, Registry};

/// The first clause of a doc text, as one sentence.
fn summary(text: &str) -> String {
    let end = [text.find(": "), text.find(". ")].into_iter().flatten().min().unwrap_or(text.len());
    format!("{}.", text[..end].trim_end_matches('.'))
}

fn doc(o: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(o, "{indent}/// {line}");
    }
}

/// Rust type of a data field, given the storage parameter.
fn data_type(ty: DataType) -> &'static str {
    match ty {
        DataType::String | DataType::Bytes => "B",
        DataType::Argv => "Argv<B>",
        DataType::KStack => "KernelStack<B>",
        DataType::UStack => "UserStack<B>",
    }
}

fn enum_name(k: &Kind, f: &Field) -> String {
    format!("{}{}", k.rust, crate::names::camel(&f.name))
}

fn int_type(bits: u32, signed: bool) -> String {
    format!("{}{bits}", if signed { "i" } else { "u" })
}

/// The struct's fields: (doc, name, type).
fn struct_fields(k: &Kind) -> Vec<(String, String, String)> {
    let mut out = vec![
        ("Kernel CLOCK_MONOTONIC nanoseconds.".to_string(), "ts_ns".to_string(), "u64".to_string()),
        ("Wall-clock time of `ts_ns`.".to_string(), "time".to_string(), "WallTime".to_string()),
    ];
    for (on, name, d, ty) in [
        (k.pid, "pid", "Process id (tgid).", "u32"),
        (k.tid, "tid", "Thread id.", "u32"),
        (k.cpu, "cpu", "CPU that produced the record.", "u16"),
    ] {
        if on {
            out.push((d.into(), name.into(), ty.into()));
        }
    }
    for item in k.items() {
        let f = match item {
            Item::Data(d) => {
                out.push((d.doc.clone(), d.name.clone(), data_type(d.ty).into()));
                continue;
            }
            Item::Field(f) => f,
        };
        match &f.ty {
            FieldType::Int { bits, signed } => out.push((f.doc.clone(), f.rust.clone(), int_type(*bits, *signed))),
            FieldType::Comm => out.push((f.doc.clone(), f.rust.clone(), "Comm".into())),
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

fn generics(k: &Kind) -> (&'static str, &'static str, &'static str) {
    // (declaration, impl bound, use)
    if k.generic() {
        ("<B = Vec<u8>>", "<B: AsRef<[u8]>>", "<B>")
    } else {
        ("", "", "")
    }
}

fn kind_struct(o: &mut String, k: &Kind) {
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

fn decoder(o: &mut String, k: &Kind) {
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
    let _ = writeln!(o, "        Some({} {{", k.rust);
    o.push_str("            ts_ns: h.ts_ns,\n            time: WallTime::from_monotonic(h.ts_ns, realtime_offset),\n");
    for (on, name) in [(k.pid, "pid"), (k.tid, "tid"), (k.cpu, "cpu")] {
        if on {
            let _ = writeln!(o, "            {name}: h.{name},");
        }
    }
    for f in &k.fields {
        let (n, off) = (&f.rust, f.offset);
        let _ = match &f.ty {
            FieldType::Int { bits: 64, signed: false } if f.since.is_some() => writeln!(o, "            {n},"),
            FieldType::Int { bits, signed } => writeln!(o, "            {n}: r.{}({off}),", int_type(*bits, *signed)),
            FieldType::Comm => writeln!(o, "            {n}: r.comm({off}),"),
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
    for d in &k.data {
        let take = format!("var_bytes.take(r.u32({}))?", d.len_offset);
        let _ = match d.ty {
            DataType::String | DataType::Bytes => writeln!(o, "            {}: {take},", d.name),
            DataType::Argv => writeln!(o, "            {}: Argv({take}),", d.name),
            DataType::KStack => writeln!(o, "            {}: KernelStack({take}),", d.name),
            DataType::UStack => writeln!(o, "            {}: UserStack({take}),", d.name),
        };
    }
    for f in &k.flags {
        let _ = writeln!(o, "            {}: h.flags & (1 << {}) != 0,", f.name, f.bit);
    }
    if k.generic() {
        o.push_str("            data_lost: h.flags & 1 != 0,\n");
    }
    o.push_str("        })\n    }\n}\n\n");
}

fn methods(o: &mut String, k: &Kind) {
    let (_, bound, use_) = generics(k);
    let _ = writeln!(o, "impl{bound} {}{use_} {{", k.rust);
    // Owned copy.
    let owned = if k.generic() { format!("{}<Vec<u8>>", k.rust) } else { k.rust.clone() };
    let _ = writeln!(o, "    /// Copies the event out of its batch.\n    pub fn to_owned_event(&self) -> {owned} {{");
    if k.generic() {
        let _ = writeln!(o, "        {} {{", k.rust);
        for (_, name, ty) in struct_fields(k) {
            let _ = match ty.as_str() {
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
    for (on, name) in [(k.pid, "pid"), (k.tid, "tid"), (k.cpu, "cpu")] {
        if on {
            let _ = writeln!(o, "        m.serialize_entry(\"{name}\", &self.{name})?;");
        }
    }
    for item in k.items() {
        match item {
            Item::Field(f) if f.json => serialize_field(o, f),
            Item::Data(d) if d.json => {
                let _ = match d.ty {
                    DataType::String | DataType::Bytes => {
                        writeln!(o, "        m.serialize_entry(\"{0}\", &ByteStr(self.{0}.as_ref()))?;", d.name)
                    }
                    _ => writeln!(o, "        m.serialize_entry(\"{0}\", &self.{0})?;", d.name),
                };
            }
            _ => {}
        }
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
        "        let mut w = RecordEncoder::new(out, {}, {}, {flags}, {}, {}, {}, self.ts_ns);",
        k.id,
        k.size,
        pick(k.pid, "pid"),
        pick(k.tid, "tid"),
        pick(k.cpu, "cpu")
    );
    for f in &k.fields {
        let (n, off) = (&f.rust, f.offset);
        let _ = match &f.ty {
            FieldType::Int { bits, signed } => writeln!(o, "        w.{}({off}, self.{n});", int_type(*bits, *signed)),
            FieldType::Comm => writeln!(o, "        w.comm({off}, &self.{n});"),
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
        let bytes = match d.ty {
            DataType::String | DataType::Bytes => format!("self.{}.as_ref()", d.name),
            _ => format!("self.{}.0.as_ref()", d.name),
        };
        let _ = writeln!(o, "        w.data({}, {bytes});", d.len_offset);
    }
    o.push_str("        w.finish();\n    }\n");
}

fn event_enum(o: &mut String, reg: &Registry) {
    o.push_str("/// One event from the stream. More kinds will come; match with a `_` arm.\n");
    o.push_str("#[derive(Clone, Debug, PartialEq, Eq)]\n#[non_exhaustive]\npub enum Event<B = Vec<u8>> {\n");
    for k in &reg.kinds {
        doc(o, "    ", &summary(&k.doc));
        if k.hidden {
            o.push_str("    #[doc(hidden)]\n");
        }
        let (_, _, use_) = generics(k);
        let _ = writeln!(o, "    {}({}{use_}),", k.variant(), k.rust);
    }
    o.push_str("}\n\nimpl<B: AsRef<[u8]>> Event<B> {\n");
    // Each arm binds `e` only when its body uses it.
    let arms = |o: &mut String, body: &dyn Fn(&Kind) -> String| {
        o.push_str("        match self {\n");
        for k in &reg.kinds {
            let body = body(k);
            let bind = if body.contains("e.") || body.contains("(e") { "e" } else { "_" };
            let _ = writeln!(o, "            Event::{}({bind}) => {body},", k.variant());
        }
        o.push_str("        }\n    }\n\n");
    };
    o.push_str("    /// Which kind of event this is.\n    pub fn kind(&self) -> EventKind {\n");
    arms(o, &|k| format!("EventKind::{}", k.variant()));
    o.push_str("    /// Process id (tgid), or 0 for kinds without one.\n    pub fn pid(&self) -> u32 {\n");
    arms(o, &|k| if k.pid { "e.pid".into() } else { "0".into() });
    o.push_str("    /// Kernel CLOCK_MONOTONIC nanoseconds.\n    pub fn ts_ns(&self) -> u64 {\n");
    arms(o, &|_| "e.ts_ns".into());
    o.push_str("    /// Copies the event out of its batch.\n    pub fn to_owned_event(&self) -> Event {\n");
    arms(o, &|k| format!("Event::{}(e.to_owned_event())", k.variant()));
    o.push_str("    /// Appends the record the C loader would write for this event.\n    pub(crate) fn encode(&self, out: &mut Vec<u8>) {\n");
    arms(o, &|_| "e.encode(out)".into());
    o.push_str("}\n\nimpl<B: AsRef<[u8]>> Serialize for Event<B> {\n    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {\n");
    o.push_str("        let mut m = s.serialize_map(None)?;\n        m.serialize_entry(\"type\", self.kind().name())?;\n        match self {\n");
    for k in &reg.kinds {
        let _ = writeln!(o, "            Event::{}(e) => e.serialize_fields(&mut m)?,", k.variant());
    }
    o.push_str("        }\n        m.end()\n    }\n}\n\n");
    o.push_str(
        "/// Decodes one validated record (header already parsed); None for kinds this version does not know.\n",
    );
    o.push_str("pub(crate) fn decode<'a>(h: &Hdr, rec: &'a [u8], offset: i64) -> Option<Event<&'a [u8]>> {\n    match h.kind {\n");
    for k in &reg.kinds {
        let _ = writeln!(o, "        {} => {}::decode(h, rec, offset).map(Event::{}),", k.id, k.rust, k.variant());
    }
    o.push_str("        _ => None,\n    }\n}\n\n");
}

fn kind_enum(o: &mut String, reg: &Registry) {
    o.push_str("/// The kinds of events, one per declaration in c/events/.\n");
    o.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\npub enum EventKind {\n");
    for k in &reg.kinds {
        doc(o, "    ", &summary(&k.doc));
        if k.hidden {
            o.push_str("    #[doc(hidden)]\n");
        }
        let _ = writeln!(o, "    {},", k.variant());
    }
    let n = reg.kinds.len();
    let _ = writeln!(
        o,
        "}}\n\n/// Most counters one kind declares.\npub(crate) const KIND_COUNTERS_MAX: usize = {};",
        crate::registry::KIND_COUNTERS_MAX
    );
    o.push_str("\n/// Number of declared kinds.\npub(crate) const KINDS: usize = ");
    let _ = writeln!(
        o,
        "{n};\n\nimpl EventKind {{\n    /// Every kind, in id order.\n    pub const ALL: [EventKind; {n}] = ["
    );
    for k in &reg.kinds {
        let _ = writeln!(o, "        EventKind::{},", k.variant());
    }
    o.push_str("    ];\n\n");
    let table = |o: &mut String, sig: &str, body: &dyn Fn(&Kind) -> String| {
        let _ = writeln!(o, "    {sig} {{\n        match self {{");
        for k in &reg.kinds {
            let _ = writeln!(o, "            EventKind::{} => {},", k.variant(), body(k));
        }
        o.push_str("        }\n    }\n\n");
    };
    o.push_str("    /// The name JSON shows as `type`.\n");
    table(o, "pub fn name(self) -> &'static str", &|k| format!("\"{}\"", k.name));
    o.push_str("    /// The record kind number (kernel side).\n");
    table(o, "pub(crate) fn id(self) -> u16", &|k| k.id.to_string());
    o.push_str("    /// Position in [`EventKind::ALL`].\n");
    table(o, "pub(crate) fn index(self) -> usize", &|k| {
        reg.kinds.iter().position(|x| x.id == k.id).unwrap_or(0).to_string()
    });
    o.push_str("    /// Whether kernel programs produce it (the loader makes the others).\n");
    table(o, "pub(crate) fn is_traced(self) -> bool", &|k| (k.family != "loader").to_string());
    o.push_str("    /// Its counters: (name, index into the counter array).\n");
    table(o, "pub(crate) fn counters(self) -> &'static [(&'static str, usize)]", &|k| {
        let list: Vec<String> = k.all_counters().iter().map(|(n, i)| format!("(\"{n}\", {i})")).collect();
        format!("&[{}]", list.join(", "))
    });
    o.push_str(
        "    /// The kind with this name, as JSON shows it.\n    pub fn from_name(name: &str) -> Option<EventKind> {\n",
    );
    o.push_str("        EventKind::ALL.into_iter().find(|k| k.name() == name)\n    }\n\n");
    o.push_str("    pub(crate) fn from_id(id: u32) -> Option<EventKind> {\n        match id {\n");
    for k in &reg.kinds {
        let _ = writeln!(o, "            {} => Some(EventKind::{}),", k.id, k.variant());
    }
    o.push_str("            _ => None,\n        }\n    }\n}\n\n");
    o.push_str("impl Serialize for EventKind {\n    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {\n        s.serialize_str(self.name())\n    }\n}\n\n");
    o.push_str("impl std::fmt::Display for EventKind {\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n        f.write_str(self.name())\n    }\n}\n\n");
    o.push_str("/// Knobs (configurable caps of variable fields) by index; the C side holds\n");
    o.push_str("/// their defaults and ranges and checks them.\n");
    o.push_str("pub(crate) const KNOBS: &[&str] = &[\n");
    for knob in &reg.knobs {
        let _ = writeln!(o, "    \"{}\",", knob.name);
    }
    o.push_str("];\n\n");
}

/// `stats.exec()` and the like: each kind's counters by name.
fn stats_accessors(o: &mut String, reg: &Registry) {
    o.push_str("impl crate::Stats {\n");
    for k in reg.kinds.iter().filter(|k| k.family != "loader") {
        let _ = writeln!(o, "    /// Counters of {} events.", k.name);
        if k.hidden {
            o.push_str("    #[doc(hidden)]\n");
        }
        let _ = writeln!(
            o,
            "    pub fn {}(&self) -> &crate::KindStats {{\n        self.kind(EventKind::{})\n    }}\n",
            k.name,
            k.variant()
        );
    }
    o.push_str("}\n\n");
}

pub fn module(reg: &Registry) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "// {}\n", crate::c::BANNER);
    kind_enum(&mut o, reg);
    stats_accessors(&mut o, reg);
    event_enum(&mut o, reg);
    for k in &reg.kinds {
        kind_struct(&mut o, k);
        decoder(&mut o, k);
        methods(&mut o, k);
    }
    o
}
