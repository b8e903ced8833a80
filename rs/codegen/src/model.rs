//! The checked registry: kinds with their fields laid out, as the emitters
//! walk them ([`crate::registry`] builds it from the declarations).

use std::path::PathBuf;

use crate::names::camel;

/// Type of a fixed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Int {
        bits: u32,
        signed: bool,
    },
    /// `char[16]`: a task's command name.
    Comm,
    /// u32 task->exit_code: exit_code, signal, core_dumped.
    ExitStatus,
    /// i32: 0, or a negative errno.
    Errno,
    /// u32: a record kind id.
    Kind,
    /// u32 with named values.
    Enum(Vec<Value>),
    /// i64: a syscall's return, a value (>= 0, the field) or -errno (errno).
    Result,
    /// struct pt_sockaddr: an IPv4 or IPv6 address and port (JSON
    /// `"ADDR:PORT"`, `"[ADDR]:PORT"`; null when absent).
    SockAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub name: String,
    pub value: u32,
    pub doc: String,
}

impl FieldType {
    pub(crate) fn parse(ty: &str) -> Option<FieldType> {
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
            "result" => FieldType::Result,
            "sockaddr" => FieldType::SockAddr,
            _ => return None,
        })
    }

    /// Size and alignment in the record.
    pub fn size_align(&self) -> (u32, u32) {
        match self {
            FieldType::Int { bits, .. } => (bits / 8, bits / 8),
            FieldType::Comm => (16, 1),
            FieldType::Result => (8, 8),
            FieldType::SockAddr => (20, 4),
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
    /// User return addresses, 8 bytes each.
    UStack,
}

impl DataType {
    pub(crate) fn parse(ty: &str) -> Option<DataType> {
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
            DataType::KStack | DataType::UStack => 8,
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
    /// A tracepoint attribute: in the `args` struct and JSON object.
    pub arg: bool,
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
    /// Name in C (its length field is `<name>_len`).
    pub name: String,
    /// Name in Rust and JSON.
    pub key: String,
    pub ty: DataType,
    pub doc: String,
    pub cap: Cap,
    pub json: bool,
    /// Shown (JSON, Rust struct) right after this fixed field (its C name);
    /// else after all of them.
    pub after: Option<String>,
    /// Appended in pieces of any size (a writev's iovecs): the verifier
    /// then needs a second cap of slack (see emit.bpf.h).
    pub pieces: bool,
    /// A tracepoint attribute: in the `args` struct and JSON object.
    pub arg: bool,
    /// Offset of its __u32 length in the record.
    pub len_offset: u32,
}

/// A field of the event as shown (Rust struct, JSON), in order.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    Field(&'a Field),
    Data(&'a Data),
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
    /// Shows the header's process start (`proc_start_ns`).
    pub proc_start: bool,
    pub programs: Vec<String>,
    /// Its records are made by the loader (`source = "loader"`, or the
    /// loader family's loss reports), not by kernel programs.
    pub loader_made: bool,
    pub lazy_wake: bool,
    /// Its events follow the process filter (pids, comm prefix).
    pub filtered: bool,
    pub fields: Vec<Field>,
    pub data: Vec<Data>,
    pub flags: Vec<Flag>,
    pub counters: Vec<Counter>,
    pub pads: Vec<Pad>,
    /// Size of the fixed part (header, fields, lengths), a multiple of 8.
    pub size: u32,
    /// A user-declared tracepoint's "CATEGORY:NAME".
    pub tracepoint: Option<String>,
}

/// A field of the common header a kind may show.
pub struct HeaderField {
    /// Its name in struct pt_hdr, Rust and JSON.
    pub name: &'static str,
    pub rust_type: &'static str,
    pub doc: &'static str,
}

impl Kind {
    /// The header fields the kind shows, in the order Rust, JSON and the C
    /// printer give them.
    pub fn header_fields(&self) -> Vec<HeaderField> {
        let all = [
            (self.pid, "pid", "u32", "Process id (tgid)."),
            (self.tid, "tid", "u32", "Thread id."),
            (self.cpu, "cpu", "u16", "CPU that produced the record."),
            (
                self.proc_start,
                "proc_start_ns",
                "u64",
                "The process' start, CLOCK_BOOTTIME nanoseconds (its group leader's): with the pid, an identity pid reuse cannot confuse (see `Event::process_key`).",
            ),
        ];
        all.into_iter()
            .filter(|(on, ..)| *on)
            .map(|(_, name, rust_type, doc)| HeaderField { name, rust_type, doc })
            .collect()
    }

    /// A config can enable it (every kind but the loader family's).
    pub fn selectable(&self) -> bool {
        self.family != "loader"
    }

    /// Kernel programs emit its records (through the rings).
    pub fn from_kernel(&self) -> bool {
        !self.loader_made
    }

    /// The Rust enum variant and EventKind name.
    pub fn variant(&self) -> String {
        camel(&self.name)
    }

    pub fn upper(&self) -> String {
        self.c_name.to_uppercase()
    }

    /// The name JSON shows as `type`: the kind's, or its tracepoint's.
    pub fn json_type(&self) -> &str {
        self.tracepoint.as_deref().unwrap_or(&self.name)
    }

    /// Whether some items are tracepoint attributes (an `args` object).
    pub fn has_args(&self) -> bool {
        self.fields.iter().any(|f| f.arg) || self.data.iter().any(|d| d.arg)
    }

    /// The Rust struct of its attributes.
    pub fn args_rust(&self) -> String {
        format!("{}Args", self.rust)
    }

    /// Whether the Rust struct borrows bytes (has variable fields).
    pub fn generic(&self) -> bool {
        !self.data.is_empty()
    }

    /// Fixed and variable fields in the order the event shows them.
    pub fn items(&self) -> Vec<Item<'_>> {
        let mut items = Vec::new();
        for f in &self.fields {
            items.push(Item::Field(f));
            items.extend(self.data.iter().filter(|d| d.after.as_deref() == Some(f.name.as_str())).map(Item::Data));
        }
        items.extend(self.data.iter().filter(|d| d.after.is_none()).map(Item::Data));
        items
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
