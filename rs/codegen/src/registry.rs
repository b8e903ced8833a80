//! The registry's rules: declarations (see `decl`) checked into the model
//! the emitters walk.
//!
//! Every rule a declaration must follow is checked here, with an error that
//! names the file, the kind and the field; the emitters then assume a valid
//! model.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::decl::*;
pub use crate::model::*;
use crate::names::*;

/// Highest kind id + 1 (record kinds are 1..63; 0 is the transport's doorbell).
pub const KIND_MAX: u16 = 64;
/// Per-kind limits of the loader's table (c/loader/kinds.h).
pub const DATA_FIELDS_MAX: usize = 4;
pub const CHECKS_MAX: usize = 4;
pub const PROGRAMS_MAX: usize = 32;
pub const FLAGS_MAX: usize = 15;
/// Counters one kind may declare (counted flags included).
pub const KIND_COUNTERS_MAX: usize = 8;
/// Counters and knobs over all kinds (sizes of the ABI arrays in proctap.h).
pub const COUNTERS_MAX: usize = 64;
pub const KNOBS_MAX: usize = 16;
/// The common record header (struct pt_hdr in proctap.h).
pub const HDR_SIZE: u32 = 56;

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

/// Reads every `*.toml` in `dir` (sorted by file name) and checks it.
pub fn load_dir(dir: &Path) -> Result<Registry, Error> {
    load_dir_with(dir, Vec::new())
}

/// [`load_dir`], plus declarations made elsewhere (user tracepoints), as
/// (file to name in errors, declaration).
pub(crate) fn load_dir_with(dir: &Path, extra: Vec<(PathBuf, KindDecl)>) -> Result<Registry, Error> {
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
    let mut decls = parse(&sources)?;
    decls.extend(extra);
    check_all(decls)
}

/// Checks declarations given as (file, TOML text) pairs.
pub fn load(sources: &[(PathBuf, String)]) -> Result<Registry, Error> {
    check_all(parse(sources)?)
}

fn parse(sources: &[(PathBuf, String)]) -> Result<Vec<(PathBuf, KindDecl)>, Error> {
    let mut decls = Vec::new();
    for (file, text) in sources {
        let decl: KindDecl = toml::from_str(text).map_err(|e| err(file, format!("not a valid declaration: {e}")))?;
        decls.push((file.clone(), decl));
    }
    Ok(decls)
}

fn check_all(mut decls: Vec<(PathBuf, KindDecl)>) -> Result<Registry, Error> {
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

/// Checks one declaration: names, fields (laid out with their padding),
/// variable fields, flags and counters. Knobs and counters get their global
/// indices in `reg`.
fn check_kind(file: &Path, d: KindDecl, reg: &mut Registry) -> Result<Kind, Error> {
    let mut c = Checker {
        file,
        kind: d.kind.clone(),
        names: RESERVED.iter().map(|s| s.to_string()).collect(),
        args: BTreeSet::new(),
    };
    let mut kind = check_identity(&c, &d)?;
    let mut offset = check_fields(&mut c, &mut kind, d.fields)?;
    offset = check_data(&mut c, &mut kind, d.data, offset, reg)?;
    check_flags(&mut c, &mut kind, d.flags, d.counters, reg)?;
    kind.size = pad_to(&mut kind.pads, offset, 8);
    check_generated_names(&c, &kind)?;
    Ok(kind)
}

/// The names the generators derive from the kind's (C macros, Rust enum
/// types) must not collide with each other or with hand-written types.
fn check_generated_names(c: &Checker, kind: &Kind) -> Result<(), Error> {
    let mut macros: BTreeMap<String, String> = BTreeMap::new();
    let mut take = |name: String, what: String| match macros.insert(name.clone(), what.clone()) {
        Some(other) => Err(c.err(format!("{what} and {other} would both define PT_{}_{name}", kind.upper()))),
        None => Ok(()),
    };
    take("SIZE".into(), "the record size".into())?;
    take("DATA_MAX".into(), "the data cap".into())?;
    for f in &kind.flags {
        take(format!("F_{}", f.name.to_uppercase()), format!("flag `{}`", f.name))?;
    }
    for d in &kind.data {
        take(format!("{}_UNIT", d.name.to_uppercase()), format!("variable field `{}`", d.name))?;
        take(format!("{}_CAP", d.name.to_uppercase()), format!("variable field `{}`", d.name))?;
    }
    for f in &kind.fields {
        if let FieldType::Enum(values) = &f.ty {
            let ty = format!("{}{}", kind.rust, camel(&f.name));
            if RESERVED_TYPES.contains(&ty.as_str()) {
                return Err(c.err(format!("enum field `{}` would define the type {ty}, which exists", f.name)));
            }
            for v in values {
                let name = format!("{}_{}", f.name.to_uppercase(), v.name.to_uppercase());
                take(name, format!("value `{}` of `{}`", v.name, f.name))?;
            }
        }
    }
    Ok(())
}

/// Errors and name checks of one declaration.
struct Checker<'a> {
    file: &'a Path,
    kind: String,
    /// Names taken in the generated Rust struct and JSON object.
    names: BTreeSet<String>,
    /// Tracepoint attributes: the `args` struct and object.
    args: BTreeSet<String>,
}

impl Checker<'_> {
    fn err(&self, what: impl fmt::Display) -> Error {
        err(self.file, format!("kind `{}`: {what}", self.kind))
    }

    /// Takes `name` for a field of the kind: snake_case and not taken.
    fn claim(&mut self, name: &str, what: &str) -> Result<(), Error> {
        if !is_ident(name) {
            return Err(self.err(format!("{what} `{name}` must be snake_case")));
        }
        if is_keyword(name) || is_pad_name(name) {
            return Err(self.err(format!("{what} `{name}` is a keyword or a name the generated code uses")));
        }
        if !self.names.insert(name.to_string()) {
            return Err(self.err(format!("{what} `{name}` clashes with another name of the kind (or a reserved one)")));
        }
        Ok(())
    }

    /// Takes a tracepoint attribute: its own namespace (the `args` struct
    /// and object); C and Rust keywords are fine there (C names it `a_NAME`,
    /// Rust `r#NAME`). Returns its C name.
    fn claim_arg(&mut self, name: &str) -> Result<String, Error> {
        let c_ident = name.chars().next().is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            && name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !c_ident || ["self", "Self", "super", "crate", "_"].contains(&name) {
            return Err(self.err(format!("attribute `{name}` cannot be a Rust field name")));
        }
        if !self.args.insert(name.to_string()) {
            return Err(self.err(format!("attribute `{name}` is listed twice")));
        }
        // Only collisions matter for the C name: a_NAME is a C identifier.
        let c_name = format!("a_{name}");
        if !self.names.insert(c_name.to_ascii_lowercase()) {
            return Err(self.err(format!("attribute `{name}` clashes with another attribute in C (as {c_name})")));
        }
        Ok(c_name)
    }
}

/// The kind's names, id, header fields, programs and wake mode.
fn check_identity(c: &Checker, d: &KindDecl) -> Result<Kind, Error> {
    if !is_ident(&d.kind) {
        return Err(c.err("the kind name must be snake_case (a-z, 0-9, _)"));
    }
    if is_keyword(&d.kind) || (RESERVED_KINDS.contains(&d.kind.as_str()) && d.family != "loader") {
        return Err(c.err("the kind name is a keyword or a method of Stats"));
    }
    if d.id == 0 || d.id >= KIND_MAX {
        return Err(c.err(format!("id {} is outside 1..{} (0 is the transport's doorbell)", d.id, KIND_MAX - 1)));
    }
    let c_name = d.c_name.clone().unwrap_or_else(|| d.kind.clone());
    if !is_ident(&c_name) || !is_ident(&d.family) {
        return Err(c.err("c_name and family must be snake_case"));
    }
    let rust = d.rust.clone().unwrap_or_else(|| camel(&d.kind));
    if !rust.chars().next().is_some_and(|ch| ch.is_ascii_uppercase())
        || !rust.chars().all(|ch| ch.is_ascii_alphanumeric())
    {
        return Err(c.err(format!("rust name `{rust}` must be CamelCase")));
    }
    if RESERVED_TYPES.contains(&rust.as_str()) {
        return Err(c.err(format!("rust name `{rust}` is a type the event module defines")));
    }
    let (mut pid, mut tid, mut cpu, mut proc_start) = (false, false, false, false);
    for h in &d.header {
        match h.as_str() {
            "pid" => pid = true,
            "tid" => tid = true,
            "cpu" => cpu = true,
            "proc_start" => proc_start = true,
            other => return Err(c.err(format!("header field `{other}` does not exist (pid, tid, cpu, proc_start)"))),
        }
    }
    if proc_start && !pid {
        return Err(c.err("header proc_start needs pid: together they name the process"));
    }
    let lazy_wake = match d.wake.as_deref() {
        None | Some("prompt") => false,
        Some("lazy") => true,
        Some(other) => return Err(c.err(format!("wake `{other}`: use prompt or lazy"))),
    };
    let loader_made = match d.source.as_deref() {
        None | Some("kernel") => d.family == "loader",
        Some("loader") if !d.programs.is_empty() => {
            return Err(c.err("source = \"loader\": the loader makes its records, so it has no programs"))
        }
        Some("loader") => true,
        Some(other) => return Err(c.err(format!("source `{other}`: use kernel or loader"))),
    };
    if proc_start && loader_made {
        return Err(c.err("header proc_start: the loader makes this kind's records and knows no process start"));
    }
    if d.programs.len() > PROGRAMS_MAX {
        return Err(c.err(format!("{} programs; at most {PROGRAMS_MAX}", d.programs.len())));
    }
    if let Some(p) = d.programs.iter().find(|p| !is_ident(p)) {
        return Err(c.err(format!("program `{p}` is not a C identifier in snake_case")));
    }
    Ok(Kind {
        file: c.file.to_path_buf(),
        name: d.kind.clone(),
        id: d.id,
        c_name,
        rust,
        family: d.family.clone(),
        doc: d.doc.clone(),
        hidden: d.hidden,
        pid,
        tid,
        cpu,
        proc_start,
        programs: d.programs.clone(),
        loader_made,
        lazy_wake,
        filtered: d.filtered,
        fields: Vec::new(),
        data: Vec::new(),
        flags: Vec::new(),
        counters: Vec::new(),
        pads: Vec::new(),
        size: 0,
        tracepoint: d.tracepoint.clone(),
    })
}

/// The type of a field, with an enum's values checked.
fn check_field_type(c: &Checker, f: &mut FieldDecl) -> Result<FieldType, Error> {
    let mut ty = FieldType::parse(&f.ty).ok_or_else(|| {
        c.err(format!(
            "field `{}`: unsupported type `{}` (u8 u16 u32 u64 i32 i64 comm exit_status errno kind enum result)",
            f.name, f.ty
        ))
    })?;
    if let FieldType::Enum(values) = &mut ty {
        if f.values.is_empty() {
            return Err(c.err(format!("enum field `{}` lists no [[field.value]]", f.name)));
        }
        for v in std::mem::take(&mut f.values) {
            let clash = |o: &Value| o.name == v.name || o.value == v.value || camel(&o.name) == camel(&v.name);
            if !is_ident(&v.name) || is_keyword(&v.name) || v.value >= 64 || values.iter().any(clash) {
                return Err(c.err(format!(
                    "enum field `{}`: value `{}` = {} must be a new snake_case name and a new number below 64",
                    f.name, v.name, v.value
                )));
            }
            values.push(Value { name: v.name, value: v.value, doc: v.doc });
        }
    } else if !f.values.is_empty() {
        return Err(c.err(format!("field `{}` lists values but is not an enum", f.name)));
    }
    Ok(ty)
}

/// Fixed fields, laid out after the header; returns the offset after them.
fn check_fields(c: &mut Checker, kind: &mut Kind, fields: Vec<FieldDecl>) -> Result<u32, Error> {
    let mut offset = HDR_SIZE;
    for mut f in fields {
        let ty = check_field_type(c, &mut f)?;
        let rust_name = f.rust.clone().unwrap_or_else(|| f.name.clone());
        if f.arg {
            f.name = c.claim_arg(&rust_name)?;
        } else {
            c.claim(&rust_name, "field")?;
        }
        if rust_name != f.name && !f.arg {
            c.claim(&f.name, "field")?;
        }
        if ty == FieldType::Result {
            c.claim("errno", "the errno of a result field")?;
        }
        if let Some(since) = &f.since {
            if ty != (FieldType::Int { bits: 64, signed: false }) {
                return Err(c.err(format!("field `{}`: `since` needs a u64 (a CLOCK_MONOTONIC time)", f.name)));
            }
            c.claim(since, "derived field")?;
        }
        let (size, align) = ty.size_align();
        offset = pad_to(&mut kind.pads, offset, align);
        kind.fields.push(Field {
            name: f.name,
            rust: rust_name,
            ty,
            doc: f.doc,
            json: f.json,
            since: f.since,
            arg: f.arg,
            offset,
        });
        offset += size;
    }
    if kind.fields.iter().filter(|f| matches!(f.ty, FieldType::Enum(_) | FieldType::Kind)).count() > CHECKS_MAX {
        return Err(c.err(format!("at most {CHECKS_MAX} enum or kind fields")));
    }
    Ok(offset)
}

/// Variable fields: their caps (knobs get a global index) and the offsets
/// of their lengths; returns the offset after those.
fn check_data(
    c: &mut Checker,
    kind: &mut Kind,
    data: Vec<DataDecl>,
    offset: u32,
    reg: &mut Registry,
) -> Result<u32, Error> {
    if data.len() > DATA_FIELDS_MAX {
        return Err(c.err(format!("{} variable fields; at most {DATA_FIELDS_MAX}", data.len())));
    }
    let mut offset = pad_to(&mut kind.pads, offset, 4);
    for dd in data {
        let ty = DataType::parse(&dd.ty).ok_or_else(|| {
            c.err(format!(
                "variable field `{}`: unsupported type `{}` (string argv bytes kstack ustack)",
                dd.name, dd.ty
            ))
        })?;
        let key = dd.name.clone();
        let name = if dd.arg { c.claim_arg(&dd.name)? } else { dd.name.clone() };
        if !dd.arg {
            c.claim(&dd.name, "variable field")?;
        }
        c.claim(&format!("{name}_len").to_ascii_lowercase(), "length field")?;
        let cap = check_cap(c, &dd.name, ty, dd.cap, reg)?;
        if let Some(after) = &dd.after {
            if !kind.fields.iter().any(|f| &f.name == after) {
                return Err(c.err(format!("variable field `{}`: `after` names no fixed field `{after}`", dd.name)));
            }
        }
        if dd.pieces && ty != DataType::Bytes {
            return Err(c.err(format!("variable field `{}`: only bytes are appended in pieces", dd.name)));
        }
        kind.data.push(Data {
            name,
            key,
            ty,
            doc: dd.doc,
            cap,
            json: dd.json,
            after: dd.after,
            pieces: dd.pieces,
            arg: dd.arg,
            len_offset: offset,
        });
        offset += 4;
    }
    Ok(offset)
}

fn check_cap(c: &Checker, name: &str, ty: DataType, cap: CapDecl, reg: &mut Registry) -> Result<Cap, Error> {
    match cap {
        CapDecl::Bytes(0) => Err(c.err(format!("variable field `{name}`: cap 0"))),
        CapDecl::Bytes(n) if n > 1 << 20 => Err(c.err(format!("variable field `{name}`: cap {n} is above 1 MiB"))),
        CapDecl::Bytes(n) if n % ty.unit() != 0 => {
            Err(c.err(format!("variable field `{name}`: cap {n} is not a multiple of {}", ty.unit())))
        }
        CapDecl::Bytes(n) => Ok(Cap::Bytes(n)),
        CapDecl::Knob { knob, default, min, max } => {
            if !is_ident(&knob) || reg.knobs.iter().any(|k| k.name == knob) {
                return Err(c.err(format!("knob `{knob}` must be a new snake_case name")));
            }
            if !(min <= default && default <= max && max <= 1 << 20 && max > 0) || ty.unit() != 1 {
                return Err(
                    c.err(format!("knob `{knob}`: need min <= default <= max <= 1 MiB, max > 0, on a byte-unit type"))
                );
            }
            reg.knobs.push(Knob { name: knob, default, min, max, kind: c.kind.clone(), data: name.to_string() });
            Ok(Cap::Knob(reg.knobs.len() - 1))
        }
    }
}

/// Flags (bits from 1; counted ones get a counter) and counters.
fn check_flags(
    c: &mut Checker,
    kind: &mut Kind,
    flags: Vec<FlagDecl>,
    counters: Vec<CounterDecl>,
    reg: &mut Registry,
) -> Result<(), Error> {
    if flags.len() > FLAGS_MAX {
        return Err(c.err(format!("{} flags; at most {FLAGS_MAX}", flags.len())));
    }
    for (i, fl) in flags.into_iter().enumerate() {
        c.claim(&fl.name, "flag")?;
        let json = match fl.json.as_deref() {
            None | Some("always") => FlagJson::Always,
            Some("if_set") => FlagJson::IfSet,
            Some("never") => FlagJson::Never,
            Some(other) => return Err(c.err(format!("flag `{}`: json `{other}` (always, if_set, never)", fl.name))),
        };
        let counter = fl.counter.then(|| {
            reg.counters.push((c.kind.clone(), fl.name.clone()));
            reg.counters.len() - 1
        });
        kind.flags.push(Flag { name: fl.name, doc: fl.doc, bit: i as u32 + 1, counter, json });
    }
    for counter in counters {
        c.claim(&counter.name, "counter")?;
        reg.counters.push((c.kind.clone(), counter.name.clone()));
        kind.counters.push(Counter { name: counter.name, doc: counter.doc, index: reg.counters.len() - 1 });
    }
    if kind.all_counters().len() > KIND_COUNTERS_MAX {
        return Err(c.err(format!(
            "{} counters (counted flags included); at most {KIND_COUNTERS_MAX}",
            kind.all_counters().len()
        )));
    }
    Ok(())
}

/// Pads `offset` up to `align`, recording the gap.
fn pad_to(pads: &mut Vec<Pad>, offset: u32, align: u32) -> u32 {
    let aligned = offset.div_ceil(align) * align;
    if aligned > offset {
        pads.push(Pad { offset, len: aligned - offset });
    }
    aligned
}
