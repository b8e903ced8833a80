//! `kinds.rs`: the Rust event types, included into the crate's `event`
//! module. For each kind: a struct generic over its byte storage (borrowed
//! views from a batch, or owned), its decoder (safe reads at the offsets the
//! C header asserts), its encoder (tests and benches), its serde output (the
//! same fields, order and format as the C printer), plus `Event`,
//! `EventKind` and the counter and knob tables.

use std::fmt::Write;

mod kind;

use crate::registry::{DataType, Field, Kind, Registry};
pub(crate) use kind::ident;
use kind::{args_struct, decoder, generics, kind_struct, methods};

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

pub(crate) fn enum_name(k: &Kind, f: &Field) -> String {
    format!("{}{}", k.rust, crate::names::camel(&f.name))
}

fn int_type(bits: u32, signed: bool) -> String {
    format!("{}{bits}", if signed { "i" } else { "u" })
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
    o.push_str(
        "    /// The process' start, CLOCK_BOOTTIME nanoseconds, for kinds that carry\n    \
         /// it (None for the others, and 0 for a record made without one).\n    \
         pub fn proc_start_ns(&self) -> Option<u64> {\n",
    );
    arms(o, &|k| if k.proc_start { "Some(e.proc_start_ns)".into() } else { "None".into() });
    o.push_str("    /// Kernel CLOCK_MONOTONIC nanoseconds.\n    pub fn ts_ns(&self) -> u64 {\n");
    arms(o, &|_| "e.ts_ns".into());
    o.push_str(
        "    /// The v2 cgroup id the event carries, for kinds that carry one (the\n    \
         /// thread's cgroup; an OOM kill's victim's) ([`crate::container`]\n    \
         /// turns it into a path and container ids).\n    \
         pub fn cgroup_id(&self) -> Option<u64> {\n",
    );
    arms(o, &|k| match k.fields.iter().any(|f| f.rust == "cgroup_id" && !f.arg) {
        true => "Some(e.cgroup_id)".into(),
        false => "None".into(),
    });
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
    table(o, "pub fn name(self) -> &'static str", &|k| format!("\"{}\"", k.json_type()));
    o.push_str("    /// The record kind number (kernel side).\n");
    table(o, "pub(crate) fn id(self) -> u16", &|k| k.id.to_string());
    o.push_str("    /// Position in [`EventKind::ALL`].\n");
    table(o, "pub(crate) fn index(self) -> usize", &|k| {
        reg.kinds.iter().position(|x| x.id == k.id).unwrap_or(0).to_string()
    });
    o.push_str("    /// Whether a config can enable it (the loader makes loss reports on its own).\n");
    table(o, "pub(crate) fn is_traced(self) -> bool", &|k| k.selectable().to_string());
    o.push_str("    /// Whether it is a tracepoint declared at build time (PROCTAP_EVENTS).\n");
    table(o, "pub fn is_tracepoint(self) -> bool", &|k| k.tracepoint.is_some().to_string());
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
    for k in reg.kinds.iter().filter(|k| k.selectable() && k.tracepoint.is_none()) {
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
        if k.has_args() {
            args_struct(&mut o, k);
        }
        kind_struct(&mut o, k);
        decoder(&mut o, k);
        methods(&mut o, k);
    }
    o
}
