//! User-declared tracepoints: the JSON file named by `PROCTAP_EVENTS`,
//!
//! ```json
//! [{"tracepoint": "syscalls:sys_enter_openat", "attributes": ["filename", "flags", "mode"]}]
//! ```
//!
//! typed from the build machine's kernel ([`Kernel`]: its BTF, and tracefs
//! format files for syscalls tracepoints, whose argument names BTF does not
//! have), then added to the registry as kinds like any declared one (so the
//! C record, loader table, JSON printer and Rust types come from the same
//! emitters), plus a BPF program each ([`bpf`]).
//!
//! Attributes are the tracepoint's fields, read with CO-RE at run time
//! (syscalls: the named arguments). Integers go inline; char arrays,
//! `__data_loc` strings, string pointers and other arrays go to the data
//! pages. Every mistake names the entry and the attribute.

pub mod bpf;
pub mod btf;
pub mod format;
pub mod kernel;

use std::path::Path;

use serde::Deserialize;

use crate::decl::{CapDecl, DataDecl, FieldDecl, KindDecl};
use crate::registry::{Error, DATA_FIELDS_MAX, KIND_MAX};
use btf::{Btf, Shape, Type};
use format::FormatField;

/// Kind ids of user tracepoints start here (built-in kinds stay below).
pub const FIRST_ID: u16 = 32;
/// Bytes kept of a string pointed to, or stored as `__data_loc`.
pub const STRING_CAP: u32 = 4096;

/// The kernel a build types tracepoints from.
pub trait Kernel {
    fn btf(&self) -> Result<&Btf, String>;
    /// The format file of CATEGORY/NAME: None when there is no such event;
    /// an error when tracefs cannot be read (or mounted).
    fn format(&self, category: &str, name: &str) -> Result<Option<String>, String>;
}

/// One entry of the file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub tracepoint: String,
    pub attributes: Vec<String>,
}

/// How an attribute is read in the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// `ctx->args[i]` of a sys_enter tracepoint.
    SyscallArg(usize),
    /// `ctx->ret` of a sys_exit tracepoint.
    SyscallRet,
    /// A member of the tracepoint's record (its kernel name), with CO-RE.
    Member(String),
}

/// What an attribute holds, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Inline, in a field of this width (syscall arguments are cut to it).
    Int { bytes: u32, signed: bool },
    /// Inline: a pointer other than to char, as its address.
    Pointer,
    /// Inline: a 4-byte enum member (CO-RE matches it by the enum's name).
    Enum { name: String, signed: bool },
    /// A NUL-terminated string in the caller's memory (syscall arguments).
    UserString,
    /// A NUL-terminated string in kernel memory (a `char *` member).
    KernelString,
    /// A `char[N]` member.
    CharArray(u32),
    /// Any other fixed array member, as bytes.
    Bytes(u32),
    /// A `__data_loc` member: a string, or bytes, stored after the record.
    DataLoc { string: bool },
}

impl Value {
    fn is_data(&self) -> bool {
        !matches!(self, Value::Int { .. } | Value::Pointer | Value::Enum { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub name: String,
    pub read: Read,
    pub value: Value,
}

/// One resolved entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracepoint {
    pub category: String,
    pub event: String,
    /// The registry kind: its names (C, Rust) derive from it.
    pub kind: String,
    pub id: u16,
    /// The kernel struct of a non-syscall tracepoint's record.
    pub record: Option<String>,
    pub attrs: Vec<Attr>,
}

impl Tracepoint {
    /// "CATEGORY:NAME", as declared and as JSON's `type`.
    pub fn full_name(&self) -> String {
        format!("{}:{}", self.category, self.event)
    }

    pub fn program(&self) -> String {
        format!("pt_tp_{}", self.kind)
    }
}

/// Reads the file and types every entry from `kernel`.
pub fn load(path: &Path, kernel: &dyn Kernel) -> Result<Vec<Tracepoint>, Error> {
    let fail = |message: String| Error { file: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read PROCTAP_EVENTS: {e}")))?;
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| {
        fail(format!("not a list of {{\"tracepoint\": \"CATEGORY:NAME\", \"attributes\": [...]}} entries: {e}"))
    })?;
    resolve(&entries, kernel).map_err(fail)
}

/// Types each entry; the message names the entry (and the attribute).
pub fn resolve(entries: &[Entry], kernel: &dyn Kernel) -> Result<Vec<Tracepoint>, String> {
    let room = usize::from(KIND_MAX - FIRST_ID);
    if entries.len() > room {
        return Err(format!("{} tracepoints declared; at most {room}", entries.len()));
    }
    let mut out: Vec<Tracepoint> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("entry {} ({:?})", i + 1, entry.tracepoint);
        let tp = resolve_one(entry, FIRST_ID + i as u16, kernel).map_err(|e| format!("{at}: {e}"))?;
        if let Some(other) = out.iter().find(|o| o.kind == tp.kind) {
            return Err(format!("{at}: declared twice (as {:?} too)", other.full_name()));
        }
        out.push(tp);
    }
    Ok(out)
}

fn resolve_one(entry: &Entry, id: u16, kernel: &dyn Kernel) -> Result<Tracepoint, String> {
    let (category, event) = entry
        .tracepoint
        .split_once(':')
        .filter(|(c, n)| is_name(c) && is_name(n))
        .ok_or("write it as CATEGORY:NAME, as tracefs names it (events/CATEGORY/NAME)")?;
    if entry.attributes.is_empty() {
        return Err("no attributes listed".into());
    }
    for (i, a) in entry.attributes.iter().enumerate() {
        if entry.attributes[..i].contains(a) {
            return Err(format!("attribute {a:?} is listed twice"));
        }
    }
    let (record, attrs) = if category == "syscalls" {
        (None, syscall_attrs(event, &entry.attributes, kernel)?)
    } else {
        let (record, attrs) = record_attrs(category, event, &entry.attributes, kernel)?;
        (Some(record), attrs)
    };
    if attrs.iter().filter(|a| a.value.is_data()).count() > DATA_FIELDS_MAX {
        return Err(format!("at most {DATA_FIELDS_MAX} string or array attributes"));
    }
    Ok(Tracepoint {
        category: category.into(),
        event: event.into(),
        kind: kind_name(category, event),
        id,
        record,
        attrs,
    })
}

/// A tracefs category or event name.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The registry kind: snake_case of CATEGORY_NAME.
fn kind_name(category: &str, event: &str) -> String {
    let raw = format!("{category}_{event}").to_ascii_lowercase().replace('-', "_");
    let mut name = String::new();
    for part in raw.split('_').filter(|p| !p.is_empty()) {
        if !name.is_empty() {
            name.push('_');
        }
        name.push_str(part);
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "tp_");
    }
    name
}

/// Syscall arguments, named and typed by the format file (BTF sizes the
/// type names).
fn syscall_attrs(event: &str, wanted: &[String], kernel: &dyn Kernel) -> Result<Vec<Attr>, String> {
    let text = kernel.format("syscalls", event)?.ok_or("no such tracepoint (no events/syscalls/NAME in tracefs)")?;
    let fields = format::parse(&text)?;
    let exit = event.starts_with("sys_exit_");
    let args: Vec<&FormatField> = fields.iter().filter(|f| f.name != "__syscall_nr").collect();
    wanted
        .iter()
        .map(|name| {
            let at = args.iter().position(|f| &f.name == name).ok_or_else(|| {
                let have: Vec<&str> = args.iter().map(|f| f.name.as_str()).collect();
                format!("attribute {name:?}: no such attribute (it has: {})", have.join(", "))
            })?;
            let value = c_type_value(&args[at].ty, kernel.btf()?)
                .map_err(|e| format!("attribute {name:?}: unsupported type `{}`: {e}", args[at].ty))?;
            let read = if exit { Read::SyscallRet } else { Read::SyscallArg(at) };
            Ok(Attr { name: name.clone(), read, value })
        })
        .collect()
}

/// A syscall argument's type as the format file spells it.
fn c_type_value(ty: &str, btf: &Btf) -> Result<Value, String> {
    let pointers = ty.matches('*').count();
    let base: Vec<&str> = ty
        .split(|c: char| c == '*' || c.is_whitespace())
        .filter(|w| !w.is_empty() && !["const", "volatile", "__user", "struct", "union", "enum"].contains(w))
        .collect();
    let base = base.join(" ");
    if pointers == 1 && base == "char" {
        return Ok(Value::UserString);
    }
    if pointers > 0 {
        return Ok(Value::Pointer);
    }
    if let Some((bytes, signed)) = builtin_int(&base) {
        return Ok(Value::Int { bytes, signed });
    }
    // A syscall argument is a register: an enum or a typedef is its width.
    match btf.named_shape(&base) {
        Some(Shape::Int { bytes, signed } | Shape::Enum { bytes, signed, .. }) if [1, 2, 4, 8].contains(&bytes) => {
            Ok(Value::Int { bytes, signed })
        }
        Some(Shape::Ptr { char_target: true }) => Ok(Value::UserString),
        Some(Shape::Ptr { char_target: false }) => Ok(Value::Pointer),
        _ => Err(format!("`{base}` is not an integer or pointer type in the kernel's BTF")),
    }
}

/// A C integer type spelled with keywords ("unsigned long", "short int"):
/// its bytes (LP64) and signedness.
fn builtin_int(spelled: &str) -> Option<(u32, bool)> {
    let words: Vec<&str> = spelled.split_whitespace().collect();
    let known = ["unsigned", "signed", "char", "short", "int", "long", "_Bool", "bool"];
    if words.is_empty() || !words.iter().all(|w| known.contains(w)) {
        return None;
    }
    let has = |w: &str| words.contains(&w);
    let longs = words.iter().filter(|w| **w == "long").count();
    let bytes = if has("_Bool") || has("bool") || has("char") {
        1
    } else if has("short") {
        2
    } else if longs > 0 {
        8
    } else {
        4
    };
    // Plain char is signed on x86 and unsigned on arm64; show it unsigned.
    let plain_char = has("char") && !has("signed");
    let signed = !(has("unsigned") || has("_Bool") || has("bool") || plain_char);
    Some((bytes, signed))
}

/// Members of the tracepoint's record struct (trace_event_raw_NAME, or the
/// template's for an event defined from one), typed by BTF.
fn record_attrs(
    category: &str,
    event: &str,
    wanted: &[String],
    kernel: &dyn Kernel,
) -> Result<(String, Vec<Attr>), String> {
    let btf = kernel.btf()?;
    // tracefs, when it can be read, says whether the event exists at all.
    let format = match kernel.format(category, event) {
        Ok(Some(text)) => Some(format::parse(&text)?),
        Ok(None) => return Err("no such tracepoint (no events/CATEGORY/NAME in tracefs)".into()),
        Err(_) => None,
    };
    let own = format!("trace_event_raw_{event}");
    let record = match (btf.record(&own), &format) {
        (Some(_), _) => own,
        (None, Some(fields)) => template_of(btf, fields).ok_or(
            "no trace_event_raw_* struct in the kernel's BTF has this event's fields at their offsets \
                 (tracepoints of kernel modules are not supported: their types are in the module's BTF)",
        )?,
        (None, None) => {
            return Err(format!(
                "no such tracepoint: no struct {own} in the kernel's BTF (an event defined from a template needs \
                 its tracefs format file: mount tracefs and build as root; tracepoints of kernel modules are not \
                 supported)"
            ))
        }
    };
    let Some(Type::Record { members, .. }) = btf.record(&record) else { unreachable!("found above") };
    let attrs = wanted
        .iter()
        .map(|name| {
            let loc = format!("__data_loc_{name}");
            let fields = members.iter().filter(|m| !NOT_FIELDS.contains(&m.0.as_str()));
            let member = fields.clone().find(|m| &m.0 == name || m.0 == loc).ok_or_else(|| {
                let have: Vec<&str> = fields.map(|m| m.0.strip_prefix("__data_loc_").unwrap_or(&m.0)).collect();
                format!("attribute {name:?}: no such attribute (it has: {})", have.join(", "))
            })?;
            let value = if member.0 == loc {
                let string = format
                    .as_ref()
                    .and_then(|f| f.iter().find(|f| &f.name == name))
                    .is_none_or(|f| f.ty.contains("char"));
                Value::DataLoc { string }
            } else if member.3 != 0 || member.2 % 8 != 0 {
                return Err(format!("attribute {name:?}: unsupported type: a bitfield"));
            } else {
                member_value(&btf.shape(member.1)).map_err(|e| format!("attribute {name:?}: unsupported type: {e}"))?
            };
            Ok(Attr { name: name.clone(), read: Read::Member(member.0.clone()), value })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((record, attrs))
}

/// Members of a record struct that are not the event's fields.
const NOT_FIELDS: &[&str] = &["ent", "__data"];

/// The record struct whose members are the format file's fields: the same
/// names at the same offsets.
fn template_of(btf: &Btf, fields: &[FormatField]) -> Option<String> {
    let want: Vec<(String, u32)> = fields
        .iter()
        .map(|f| {
            let name = if f.ty.starts_with("__data_loc") { format!("__data_loc_{}", f.name) } else { f.name.clone() };
            (name, f.offset * 8)
        })
        .collect();
    btf.records_with_prefix("trace_event_raw_").find_map(|t| match t {
        Type::Record { name, members, .. } => {
            let have: Vec<(&String, u32)> =
                members.iter().filter(|m| !NOT_FIELDS.contains(&m.0.as_str())).map(|m| (&m.0, m.2)).collect();
            let same = have.len() == want.len() && have.iter().zip(&want).all(|(h, w)| *h.0 == w.0 && h.1 == w.1);
            same.then(|| name.clone())
        }
        _ => None,
    })
}

fn member_value(shape: &Shape) -> Result<Value, String> {
    Ok(match shape {
        Shape::Int { bytes, signed } if [1, 2, 4, 8].contains(bytes) => Value::Int { bytes: *bytes, signed: *signed },
        Shape::Enum { name, bytes: 4, signed } if !name.is_empty() => {
            Value::Enum { name: name.clone(), signed: *signed }
        }
        Shape::Enum { name, bytes, .. } => {
            return Err(format!("an enum of {bytes} bytes{}", if name.is_empty() { ", anonymous" } else { "" }))
        }
        Shape::Ptr { char_target: true } => Value::KernelString,
        Shape::Ptr { char_target: false } => Value::Pointer,
        Shape::Array { len: 0, .. } => return Err("an empty array".into()),
        Shape::Array { elem, len, chars } => match **elem {
            Shape::Int { .. } if *chars => Value::CharArray(*len),
            Shape::Int { bytes, .. } | Shape::Enum { bytes, .. } => Value::Bytes(bytes * len),
            _ => return Err("an array of structs or pointers".into()),
        },
        Shape::Int { bytes, .. } => return Err(format!("a {bytes}-byte integer")),
        Shape::Other => return Err("a struct, union, float or function".into()),
    })
}

/// The declaration file's name, as docs show it (not its directory: moving
/// the file must not change the generated code).
fn file_name(file: &Path) -> String {
    file.file_name().map_or_else(|| "PROCTAP_EVENTS".into(), |n| n.to_string_lossy().replace("*/", "*_/"))
}

/// The registry declaration of a tracepoint: the current task's comm, then
/// its attributes (under "args").
pub(crate) fn decl(tp: &Tracepoint, file: &Path) -> KindDecl {
    let mut fields = vec![FieldDecl {
        name: "comm".into(),
        ty: "comm".into(),
        doc: "The current task's command name.".into(),
        rust: None,
        json: true,
        since: None,
        values: Vec::new(),
        arg: false,
    }];
    let mut data = Vec::new();
    // Variable attributes show where they were listed: after the inline one before them.
    let mut after = "comm".to_string();
    for a in &tp.attrs {
        let doc = format!("The tracepoint's `{}`.", a.name);
        let (ty, cap) = match &a.value {
            Value::Pointer | Value::Int { .. } | Value::Enum { .. } => {
                let (bytes, signed) = match a.value {
                    Value::Int { bytes, signed } => (bytes, signed),
                    Value::Enum { signed, .. } => (4, signed),
                    _ => (8, false),
                };
                let ty = match (bytes, signed) {
                    (1, false) => "u8",
                    (2, false) => "u16",
                    (4, false) => "u32",
                    (8, false) => "u64",
                    (8, true) => "i64",
                    _ => "i32",
                };
                fields.push(FieldDecl {
                    name: a.name.clone(),
                    ty: ty.into(),
                    doc,
                    rust: None,
                    json: true,
                    since: None,
                    values: Vec::new(),
                    arg: true,
                });
                after = format!("a_{}", a.name);
                continue;
            }
            Value::UserString | Value::KernelString | Value::DataLoc { string: true } => ("string", STRING_CAP),
            Value::DataLoc { string: false } => ("bytes", STRING_CAP),
            Value::CharArray(n) => ("string", n + 1),
            Value::Bytes(n) => ("bytes", *n),
        };
        data.push(DataDecl {
            name: a.name.clone(),
            ty: ty.into(),
            doc,
            cap: CapDecl::Bytes(cap.min(1 << 20)),
            json: true,
            after: Some(after.clone()),
            pieces: false,
            arg: true,
        });
    }
    KindDecl {
        kind: tp.kind.clone(),
        id: tp.id,
        c_name: None,
        rust: None,
        family: "tracepoints".into(),
        doc: format!("The {} tracepoint (declared in {}).", tp.full_name(), file_name(file)),
        hidden: false,
        header: vec!["pid".into(), "tid".into(), "proc_start".into()],
        programs: vec![tp.program()],
        wake: None,
        source: None,
        filtered: true,
        fields,
        data,
        flags: Vec::new(),
        counters: Vec::new(),
        tracepoint: Some(tp.full_name()),
    }
}

#[cfg(test)]
mod tests;
