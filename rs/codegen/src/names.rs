//! Rules for the names a declaration may use: identifiers, and the names the
//! generated code takes for itself.

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

pub(crate) fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
}

/// Names a generated Rust struct uses for its own fields, the locals of the
/// generated decoders and printers, and the C record's header.
pub(crate) const RESERVED: &[&str] = &[
    "ts_ns",
    "time",
    "pid",
    "tid",
    "cpu",
    "proc_start_ns",
    "data_lost",
    "type",
    "kind_id",
    "exit_code",
    "signal",
    "core_dumped",
    "hdr",
    "r",
    "h",
    "d",
    "var_bytes",
    "realtime_offset",
    "m",
    "s",
    "w",
    "out",
    "e",
    "j",
];

/// Keywords of Rust (strict and reserved).
pub(crate) const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
    "final", "gen", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Keywords of C that are not Rust's.
const C_KEYWORDS: &[&str] = &[
    "auto", "bool", "case", "char", "default", "double", "float", "goto", "inline", "int", "long", "register",
    "restrict", "short", "signed", "sizeof", "switch", "typedef", "union", "unsigned", "void", "volatile",
];

/// Kind names that are methods of `Stats` already (each kind gets one).
pub(crate) const RESERVED_KINDS: &[&str] = &["kind", "kinds", "events", "dropped_data", "reserve_failures", "lost"];

/// Type names the event module defines by hand (a kind's Rust struct or
/// enum must not take one).
pub(crate) const RESERVED_TYPES: &[&str] = &[
    "Args",
    "Argv",
    "BuildId",
    "ByteStr",
    "Comm",
    "Data",
    "Errno",
    "Event",
    "EventKind",
    "Events",
    "Fixed",
    "Hdr",
    "Hex",
    "KernelStack",
    "RecordEncoder",
    "Stats",
    "KindStats",
    "UserFrame",
    "UserStack",
    "WallTime",
];

/// A keyword of Rust or C: no field, kind or value may be one.
pub(crate) fn is_keyword(name: &str) -> bool {
    RUST_KEYWORDS.contains(&name) || C_KEYWORDS.contains(&name)
}

/// padN names the generated C struct's padding.
pub(crate) fn is_pad_name(name: &str) -> bool {
    name.strip_prefix("pad").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
