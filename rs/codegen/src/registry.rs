//! The registry as declared (TOML), checked into a model the emitters walk.
//!
//! Every rule a declaration must follow is checked here, with an error that
//! names the file, the kind and the field; the emitters then assume a valid
//! model.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Highest kind id + 1 (record kinds are 1..63; 0 is the transport's doorbell).
pub const KIND_MAX: u16 = 64;
/// Per-kind limits of the loader's table (c/loader/kinds.h).
pub const DATA_FIELDS_MAX: usize = 4;
pub const CHECKS_MAX: usize = 4;
pub const PROGRAMS_MAX: usize = 4;
pub const FLAGS_MAX: usize = 15;
/// Counters and knobs over all kinds (sizes of the ABI arrays in proctap.h).
pub const COUNTERS_MAX: usize = 64;
pub const KNOBS_MAX: usize = 16;
/// The common record header (struct pt_hdr in proctap.h).
pub const HDR_SIZE: u32 = 48;

/// A registry error: which file, which kind, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub file: PathBuf,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for Error {}

fn err(file: &Path, message: impl Into<String>) -> Error {
    Error { file: file.to_path_buf(), message: message.into() }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindDecl {
    kind: String,
    id: u16,
    #[serde(default)]
    c_name: Option<String>,
    #[serde(default)]
    rust: Option<String>,
    family: String,
    doc: String,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    header: Vec<String>,
    #[serde(default)]
    programs: Vec<String>,
    #[serde(default)]
    wake: Option<String>,
    #[serde(default, rename = "field")]
    fields: Vec<FieldDecl>,
    #[serde(default, rename = "data")]
    data: Vec<DataDecl>,
    #[serde(default, rename = "flag")]
    flags: Vec<FlagDecl>,
    #[serde(default, rename = "counter")]
    counters: Vec<CounterDecl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldDecl {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    doc: String,
    #[serde(default)]
    rust: Option<String>,
    #[serde(default = "yes")]
    json: bool,
    #[serde(default)]
    since: Option<String>,
    #[serde(default, rename = "value")]
    values: Vec<ValueDecl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueDecl {
    name: String,
    value: u32,
    doc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataDecl {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    doc: String,
    cap: CapDecl,
    #[serde(default = "yes")]
    json: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CapDecl {
    Bytes(u32),
    Knob { knob: String, default: u32, min: u32, max: u32 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagDecl {
    name: String,
    doc: String,
    #[serde(default)]
    counter: bool,
    #[serde(default)]
    json: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterDecl {
    name: String,
    doc: String,
}

fn yes() -> bool {
    true
}

/// Type of a fixed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Int {
        bits: u32,
        signed: bool,
    },
    /// char[16]: a task's command name.
    Comm,
    /// u32 task->exit_code: exit_code, signal, core_dumped.
    ExitStatus,
    /// i32: 0, or a negative errno.
    Errno,
    /// u32: a record kind id.
    Kind,
    /// u32 with named values.
    Enum(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub name: String,
    pub value: u32,
    pub doc: String,
}

impl FieldType {
    fn parse(ty: &str) -> Option<FieldType> {
        Some(match ty {
            "u8" => FieldType::Int { bits: 8, signed: false },
            "u16" => FieldType::Int { bits: 16, signed: false },
            "u32" => FieldType::Int { bits: 32, signed: false },
            "u64" => FieldType::Int { bits: 64, signed: false },
            "i32" => FieldType::Int { bits: 32, signed: true },
            "i64" => FieldType::Int { bits: 64, signed: true },
            "comm" => FieldType::Comm,
            "exit_status" => FieldType::ExitStatus,
            "errno" => FieldType::Errno,
            "kind" => FieldType::Kind,
            "enum" => FieldType::Enum(Vec::new()),
            _ => return None,
        })
    }

    /// Size and alignment in the record.
    pub fn size_align(&self) -> (u32, u32) {
        match self {
            FieldType::Int { bits, .. } => (bits / 8, bits / 8),
            FieldType::Comm => (16, 1),
            FieldType::ExitStatus | FieldType::Errno | FieldType::Kind | FieldType::Enum(_) => (4, 4),
        }
    }
}

/// Type of a variable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// Bytes without NUL, shown as text (or hex when not UTF-8).
    String,
    /// NUL-separated arguments.
    Argv,
    /// Raw bytes, shown like a string.
    Bytes,
    /// Kernel return addresses, 8 bytes each.
    KStack,
    /// User frames, 32 bytes each (struct bpf_stack_build_id).
    UStack,
}

impl DataType {
    fn parse(ty: &str) -> Option<DataType> {
        Some(match ty {
            "string" => DataType::String,
            "argv" => DataType::Argv,
            "bytes" => DataType::Bytes,
            "kstack" => DataType::KStack,
            "ustack" => DataType::UStack,
            _ => return None,
        })
    }

    /// Lengths are multiples of this.
    pub fn unit(self) -> u32 {
        match self {
            DataType::KStack => 8,
            DataType::UStack => 32,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Name in C.
    pub name: String,
    /// Name in Rust and JSON.
    pub rust: String,
    pub ty: FieldType,
    pub doc: String,
    pub json: bool,
    /// Derived field: the event's ts_ns minus this one.
    pub since: Option<String>,
    /// Byte offset in the record.
    pub offset: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cap {
    Bytes(u32),
    Knob(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    pub name: String,
    pub ty: DataType,
    pub doc: String,
    pub cap: Cap,
    pub json: bool,
    /// Offset of its __u32 length in the record.
    pub len_offset: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagJson {
    Always,
    IfSet,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub doc: String,
    /// Bit in pt_hdr.flags (bit 0 is data_lost).
    pub bit: u32,
    /// Global counter index, when the flag is counted.
    pub counter: Option<usize>,
    pub json: FlagJson,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub name: String,
    pub doc: String,
    /// Index into the global counter array.
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knob {
    pub name: String,
    pub default: u32,
    pub min: u32,
    pub max: u32,
    /// The kind and data field it caps.
    pub kind: String,
    pub data: String,
}

/// A padding gap in the record (explicit in C, so no byte is uninitialized).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pad {
    pub offset: u32,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    pub file: PathBuf,
    pub name: String,
    pub id: u16,
    /// C suffix: struct pt_<c_name>, PT_KIND_<C_NAME>.
    pub c_name: String,
    /// Rust struct name.
    pub rust: String,
    pub family: String,
    pub doc: String,
    pub hidden: bool,
    pub pid: bool,
    pub tid: bool,
    pub cpu: bool,
    pub programs: Vec<String>,
    pub lazy_wake: bool,
    pub fields: Vec<Field>,
    pub data: Vec<Data>,
    pub flags: Vec<Flag>,
    pub counters: Vec<Counter>,
    pub pads: Vec<Pad>,
    /// Size of the fixed part (header, fields, lengths), a multiple of 8.
    pub size: u32,
}

impl Kind {
    /// The Rust enum variant and EventKind name.
    pub fn variant(&self) -> String {
        camel(&self.name)
    }

    pub fn upper(&self) -> String {
        self.c_name.to_uppercase()
    }

    /// Whether the Rust struct borrows bytes (has variable fields).
    pub fn generic(&self) -> bool {
        !self.data.is_empty()
    }

    /// Every counter of the kind, flag counters first, in index order.
    pub fn all_counters(&self) -> Vec<(String, usize)> {
        let mut all: Vec<(String, usize)> =
            self.flags.iter().filter_map(|f| f.counter.map(|i| (f.name.clone(), i))).collect();
        all.extend(self.counters.iter().map(|c| (c.name.clone(), c.index)));
        all.sort_by_key(|c| c.1);
        all
    }
}

/// All kinds, by id, and the knobs and counters they declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub kinds: Vec<Kind>,
    pub knobs: Vec<Knob>,
    /// (kind name, counter name), by global index.
    pub counters: Vec<(String, String)>,
    /// Family names, sorted.
    pub families: Vec<String>,
}

impl Registry {
    pub fn kind(&self, name: &str) -> Option<&Kind> {
        self.kinds.iter().find(|k| k.name == name)
    }
}

/// CamelCase of a snake_case name.
pub fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
}

/// Names a generated Rust struct uses for its own fields.
const RESERVED: &[&str] =
    &["ts_ns", "time", "pid", "tid", "cpu", "data_lost", "type", "kind_id", "exit_code", "signal", "core_dumped"];

/// Reads every `*.toml` in `dir` (sorted by file name) and checks it.
pub fn load_dir(dir: &Path) -> Result<Registry, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(dir, format!("cannot read the registry directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut sources = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| err(&file, format!("cannot read: {e}")))?;
        sources.push((file, text));
    }
    load(&sources)
}

/// Checks declarations given as (file, TOML text) pairs.
pub fn load(sources: &[(PathBuf, String)]) -> Result<Registry, Error> {
    let mut decls = Vec::new();
    for (file, text) in sources {
        let decl: KindDecl = toml::from_str(text).map_err(|e| err(file, format!("not a valid declaration: {e}")))?;
        decls.push((file.clone(), decl));
    }
    decls.sort_by_key(|(_, d)| d.id);
    let mut reg = Registry { kinds: Vec::new(), knobs: Vec::new(), counters: Vec::new(), families: Vec::new() };
    let mut seen_names = BTreeMap::new();
    let mut seen_programs = BTreeMap::new();
    for (file, decl) in decls {
        let kind = check_kind(&file, decl, &mut reg)?;
        if let Some(other) = reg.kinds.iter().find(|k| k.id == kind.id) {
            return Err(err(
                &file,
                format!("kind `{}` has id {}, already taken by `{}`", kind.name, kind.id, other.name),
            ));
        }
        for name in [&kind.name, &kind.c_name, &kind.rust] {
            if let Some(other) = seen_names.insert(name.clone(), kind.name.clone()) {
                if other != kind.name {
                    return Err(err(
                        &file,
                        format!("name `{name}` of kind `{}` is already used by kind `{other}`", kind.name),
                    ));
                }
            }
        }
        for prog in &kind.programs {
            if let Some(other) = seen_programs.insert(prog.clone(), kind.name.clone()) {
                return Err(err(
                    &file,
                    format!("program `{prog}` of kind `{}` already belongs to kind `{other}`", kind.name),
                ));
            }
        }
        reg.kinds.push(kind);
    }
    if reg.counters.len() > COUNTERS_MAX {
        return Err(err(
            Path::new("c/events"),
            format!("{} counters declared; at most {COUNTERS_MAX}", reg.counters.len()),
        ));
    }
    if reg.knobs.len() > KNOBS_MAX {
        return Err(err(Path::new("c/events"), format!("{} knobs declared; at most {KNOBS_MAX}", reg.knobs.len())));
    }
    let families: BTreeSet<String> = reg.kinds.iter().map(|k| k.family.clone()).collect();
    reg.families = families.into_iter().collect();
    Ok(reg)
}

fn check_kind(file: &Path, d: KindDecl, reg: &mut Registry) -> Result<Kind, Error> {
    let name = d.kind.clone();
    let at = |what: &str| format!("kind `{name}`: {what}");
    if !is_ident(&name) {
        return Err(err(file, at("the kind name must be snake_case (a-z, 0-9, _)")));
    }
    if d.id == 0 || d.id >= KIND_MAX {
        return Err(err(
            file,
            at(&format!("id {} is outside 1..{} (0 is the transport's doorbell)", d.id, KIND_MAX - 1)),
        ));
    }
    let c_name = d.c_name.clone().unwrap_or_else(|| name.clone());
    if !is_ident(&c_name) || !is_ident(&d.family) {
        return Err(err(file, at("c_name and family must be snake_case")));
    }
    let rust = d.rust.clone().unwrap_or_else(|| camel(&name));
    if !rust.chars().next().is_some_and(|c| c.is_ascii_uppercase()) || !rust.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(err(file, at(&format!("rust name `{rust}` must be CamelCase"))));
    }
    let (mut pid, mut tid, mut cpu) = (false, false, false);
    for h in &d.header {
        match h.as_str() {
            "pid" => pid = true,
            "tid" => tid = true,
            "cpu" => cpu = true,
            other => return Err(err(file, at(&format!("header field `{other}` does not exist (pid, tid, cpu)")))),
        }
    }
    let lazy_wake = match d.wake.as_deref() {
        None | Some("prompt") => false,
        Some("lazy") => true,
        Some(other) => return Err(err(file, at(&format!("wake `{other}`: use prompt or lazy")))),
    };
    if d.programs.len() > PROGRAMS_MAX {
        return Err(err(file, at(&format!("{} programs; at most {PROGRAMS_MAX}", d.programs.len()))));
    }
    if let Some(p) = d.programs.iter().find(|p| !is_ident(p)) {
        return Err(err(file, at(&format!("program `{p}` is not a C identifier in snake_case"))));
    }
    let mut kind = Kind {
        file: file.to_path_buf(),
        name: name.clone(),
        id: d.id,
        c_name,
        rust,
        family: d.family,
        doc: d.doc,
        hidden: d.hidden,
        pid,
        tid,
        cpu,
        programs: d.programs,
        lazy_wake,
        fields: Vec::new(),
        data: Vec::new(),
        flags: Vec::new(),
        counters: Vec::new(),
        pads: Vec::new(),
        size: 0,
    };
    let mut names: BTreeSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    let mut claim = |n: &str, what: &str| -> Result<(), Error> {
        if !is_ident(n) {
            return Err(err(file, at(&format!("{what} `{n}` must be snake_case"))));
        }
        if !names.insert(n.to_string()) {
            return Err(err(
                file,
                at(&format!("{what} `{n}` clashes with another name of the kind (or a reserved one)")),
            ));
        }
        Ok(())
    };
    let mut offset = HDR_SIZE;
    for f in d.fields {
        let mut ty = FieldType::parse(&f.ty).ok_or_else(|| {
            err(
                file,
                at(&format!(
                    "field `{}`: unsupported type `{}` (u8 u16 u32 u64 i32 i64 comm exit_status errno kind enum)",
                    f.name, f.ty
                )),
            )
        })?;
        if let FieldType::Enum(values) = &mut ty {
            if f.values.is_empty() {
                return Err(err(file, at(&format!("enum field `{}` lists no [[field.value]]", f.name))));
            }
            for v in f.values {
                if !is_ident(&v.name)
                    || v.value >= 64
                    || values.iter().any(|o: &Value| o.name == v.name || o.value == v.value)
                {
                    return Err(err(
                        file,
                        at(&format!(
                            "enum field `{}`: value `{}` = {} must be a new snake_case name and a new number below 64",
                            f.name, v.name, v.value
                        )),
                    ));
                }
                values.push(Value { name: v.name, value: v.value, doc: v.doc });
            }
        } else if !f.values.is_empty() {
            return Err(err(file, at(&format!("field `{}` lists values but is not an enum", f.name))));
        }
        let rust_name = f.rust.clone().unwrap_or_else(|| f.name.clone());
        claim(&rust_name, "field")?;
        if rust_name != f.name {
            claim(&f.name, "field")?;
        }
        if let Some(since) = &f.since {
            if ty != (FieldType::Int { bits: 64, signed: false }) {
                return Err(err(
                    file,
                    at(&format!("field `{}`: `since` needs a u64 (a CLOCK_MONOTONIC time)", f.name)),
                ));
            }
            claim(since, "derived field")?;
        }
        let (size, align) = ty.size_align();
        offset = pad_to(&mut kind.pads, offset, align);
        kind.fields.push(Field { name: f.name, rust: rust_name, ty, doc: f.doc, json: f.json, since: f.since, offset });
        offset += size;
    }
    if d.data.len() > DATA_FIELDS_MAX {
        return Err(err(file, at(&format!("{} variable fields; at most {DATA_FIELDS_MAX}", d.data.len()))));
    }
    if kind.fields.iter().filter(|f| matches!(f.ty, FieldType::Enum(_) | FieldType::Kind)).count() > CHECKS_MAX {
        return Err(err(file, at(&format!("at most {CHECKS_MAX} enum or kind fields"))));
    }
    offset = pad_to(&mut kind.pads, offset, 4);
    for dd in d.data {
        let ty = DataType::parse(&dd.ty).ok_or_else(|| {
            err(
                file,
                at(&format!(
                    "variable field `{}`: unsupported type `{}` (string argv bytes kstack ustack)",
                    dd.name, dd.ty
                )),
            )
        })?;
        claim(&dd.name, "variable field")?;
        claim(&format!("{}_len", dd.name), "length field")?;
        let cap = match dd.cap {
            CapDecl::Bytes(0) => return Err(err(file, at(&format!("variable field `{}`: cap 0", dd.name)))),
            CapDecl::Bytes(n) if n > 1 << 20 => {
                return Err(err(file, at(&format!("variable field `{}`: cap {n} is above 1 MiB", dd.name))))
            }
            CapDecl::Bytes(n) if n % ty.unit() != 0 => {
                return Err(err(
                    file,
                    at(&format!("variable field `{}`: cap {n} is not a multiple of {}", dd.name, ty.unit())),
                ))
            }
            CapDecl::Bytes(n) => Cap::Bytes(n),
            CapDecl::Knob { knob, default, min, max } => {
                if !is_ident(&knob) || reg.knobs.iter().any(|k| k.name == knob) {
                    return Err(err(file, at(&format!("knob `{knob}` must be a new snake_case name"))));
                }
                if !(min <= default && default <= max && max <= 1 << 20 && max > 0) || ty.unit() != 1 {
                    return Err(err(
                        file,
                        at(&format!(
                            "knob `{knob}`: need min <= default <= max <= 1 MiB, max > 0, on a byte-unit type"
                        )),
                    ));
                }
                reg.knobs.push(Knob { name: knob, default, min, max, kind: name.clone(), data: dd.name.clone() });
                Cap::Knob(reg.knobs.len() - 1)
            }
        };
        kind.data.push(Data { name: dd.name, ty, doc: dd.doc, cap, json: dd.json, len_offset: offset });
        offset += 4;
    }
    if d.flags.len() > FLAGS_MAX {
        return Err(err(file, at(&format!("{} flags; at most {FLAGS_MAX}", d.flags.len()))));
    }
    for (i, fl) in d.flags.into_iter().enumerate() {
        claim(&fl.name, "flag")?;
        let json = match fl.json.as_deref() {
            None | Some("always") => FlagJson::Always,
            Some("if_set") => FlagJson::IfSet,
            Some("never") => FlagJson::Never,
            Some(other) => {
                return Err(err(file, at(&format!("flag `{}`: json `{other}` (always, if_set, never)", fl.name))))
            }
        };
        let counter = fl.counter.then(|| {
            reg.counters.push((name.clone(), fl.name.clone()));
            reg.counters.len() - 1
        });
        kind.flags.push(Flag { name: fl.name, doc: fl.doc, bit: i as u32 + 1, counter, json });
    }
    for c in d.counters {
        claim(&c.name, "counter")?;
        reg.counters.push((name.clone(), c.name.clone()));
        kind.counters.push(Counter { name: c.name, doc: c.doc, index: reg.counters.len() - 1 });
    }
    kind.size = pad_to(&mut kind.pads, offset, 8);
    Ok(kind)
}

/// Pads `offset` up to `align`, recording the gap.
fn pad_to(pads: &mut Vec<Pad>, offset: u32, align: u32) -> u32 {
    let aligned = offset.div_ceil(align) * align;
    if aligned > offset {
        pads.push(Pad { offset, len: aligned - offset });
    }
    aligned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Registry, Error> {
        load(&[(PathBuf::from("t.toml"), text.to_string())])
    }

    const BASE: &str = "kind = \"k\"\nid = 9\nfamily = \"f\"\ndoc = \"d\"\nheader = [\"pid\"]\n";

    #[test]
    fn fields_are_aligned_with_explicit_padding_and_the_size_is_a_multiple_of_8() {
        let reg = one(&format!(
            "{BASE}[[field]]\nname = \"a\"\ntype = \"u8\"\ndoc = \"\"\n[[field]]\nname = \"b\"\ntype = \"u64\"\ndoc = \"\"\n\
             [[field]]\nname = \"c\"\ntype = \"comm\"\ndoc = \"\"\n[[data]]\nname = \"s\"\ntype = \"string\"\ncap = 64\ndoc = \"\"\n"
        ))
        .unwrap();
        let k = &reg.kinds[0];
        let offsets: Vec<u32> = k.fields.iter().map(|f| f.offset).collect();
        assert_eq!(offsets, vec![48, 56, 64]);
        assert_eq!(k.data[0].len_offset, 80);
        assert_eq!(k.size, 88);
        assert_eq!(k.pads, vec![Pad { offset: 49, len: 7 }, Pad { offset: 84, len: 4 }]);
    }

    #[test]
    fn every_mistake_names_the_kind_and_the_field() {
        let cases = [
            ("[[field]]\nname = \"a\"\ntype = \"float\"\ndoc = \"\"\n", "field `a`: unsupported type `float`"),
            ("[[field]]\nname = \"pid\"\ntype = \"u32\"\ndoc = \"\"\n", "field `pid` clashes"),
            ("[[data]]\nname = \"s\"\ntype = \"kstack\"\ncap = 12\ndoc = \"\"\n", "cap 12 is not a multiple of 8"),
            ("[[field]]\nname = \"e\"\ntype = \"enum\"\ndoc = \"\"\n", "enum field `e` lists no"),
            ("[[flag]]\nname = \"x\"\ndoc = \"\"\njson = \"maybe\"\n", "flag `x`: json `maybe`"),
        ];
        for (extra, want) in cases {
            let e = one(&format!("{BASE}{extra}")).unwrap_err();
            assert!(e.message.contains("kind `k`") && e.message.contains(want), "{want}: got {e}");
        }
    }

    #[test]
    fn ids_names_and_programs_are_unique_across_files() {
        let a = (PathBuf::from("a.toml"), format!("{BASE}programs = [\"p\"]\n"));
        let b = (PathBuf::from("b.toml"), BASE.replace("\"k\"", "\"j\""));
        assert!(load(&[a.clone(), b]).unwrap_err().message.contains("already taken"));
        let c = (
            PathBuf::from("c.toml"),
            format!("{}programs = [\"p\"]\n", BASE.replace("id = 9", "id = 10").replace("\"k\"", "\"j\"")),
        );
        assert!(load(&[a, c]).unwrap_err().message.contains("program `p`"));
    }

    #[test]
    fn counted_flags_and_counters_get_global_indices_in_id_order() {
        let second = "kind = \"b\"\nid = 3\nfamily = \"f\"\ndoc = \"d\"\n[[counter]]\nname = \"x\"\ndoc = \"\"\n";
        let first =
            "kind = \"a\"\nid = 2\nfamily = \"f\"\ndoc = \"d\"\n[[flag]]\nname = \"y\"\ndoc = \"\"\ncounter = true\n";
        let reg = load(&[(PathBuf::from("b.toml"), second.into()), (PathBuf::from("a.toml"), first.into())]).unwrap();
        assert_eq!(reg.counters, vec![("a".to_string(), "y".to_string()), ("b".to_string(), "x".to_string())]);
        assert_eq!(reg.kinds[0].flags[0].bit, 1);
    }
}
