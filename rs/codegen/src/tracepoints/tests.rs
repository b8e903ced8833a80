//! User tracepoints typed from a made-up kernel: what each attribute
//! becomes, and that every mistake names the entry and the attribute.

use std::collections::HashMap;
use std::path::Path;

use super::btf::encode::Builder;
use super::*;

/// A kernel with signal_generate (BTF), sched_wakeup (a template's
/// record, found through its format file) and syscalls openat (format
/// files only).
struct FakeKernel {
    btf: Btf,
    formats: HashMap<String, String>,
    tracefs: bool,
}

const OPENAT: &str = "format:\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;\n\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n\
\tfield:struct open_how * how;\toffset:48;\tsize:8;\tsigned:0;\n\tfield:float f;\toffset:56;\tsize:8;\tsigned:0;\n";
const OPENAT_EXIT: &str = "format:\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n";
const WAKEUP: &str = "format:\n\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:__data_loc char[] name;\toffset:28;\tsize:4;\tsigned:0;\n";
/// Same names as WAKEUP, other offsets: not that template.
const SHIFTED: &str = "format:\n\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t pid;\toffset:28;\tsize:4;\tsigned:1;\n\tfield:__data_loc char[] name;\toffset:32;\tsize:4;\tsigned:0;\n";
const CAPGET: &str = "format:\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:cap_user_header_t header;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:int type;\toffset:24;\tsize:8;\tsigned:0;\n\
\tfield:int _flags;\toffset:32;\tsize:8;\tsigned:0;\n\tfield:__u8 addr[sizeof(struct sockaddr_in6)];\toffset:40;\tsize:16;\tsigned:0;\n";

impl FakeKernel {
    fn new(tracefs: bool) -> FakeKernel {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let ushort = b.int("unsigned short", 2, false);
        b.typedef("umode_t", ushort);
        let pid_t = b.typedef("pid_t", int);
        let ch = b.int("char", 1, true);
        let comm = b.array(ch, 16);
        let u32_ = b.int("unsigned int", 4, false);
        let ptr = b.ptr(int);
        let u64s = b.array(u32_, 4);
        let uchar = b.int("unsigned char", 1, false);
        let u8_ = b.typedef("__u8", uchar);
        let addr = b.array(u8_, 4);
        let reason = b.enumeration("skb_drop_reason", 4);
        let small = b.enumeration("tiny", 1);
        let header = b.ptr(int);
        b.typedef("cap_user_header_t", header);
        let entry = b.record("trace_entry", 8, &[]);
        b.record(
            "trace_event_raw_signal_generate",
            88,
            &[
                ("ent", entry, 0),
                ("sig", int, 8),
                ("comm", comm, 12),
                ("pid", pid_t, 28),
                ("where", ptr, 32),
                ("mask", u64s, 40),
                ("addr", addr, 56),
                ("reason", reason, 60),
                ("small", small, 64),
                ("type", int, 68),
                ("info", entry, 72),
            ],
        );
        b.record(
            "trace_event_raw_sched_wakeup_template",
            32,
            &[("ent", entry, 0), ("comm", comm, 8), ("pid", pid_t, 24), ("__data_loc_name", u32_, 28)],
        );
        let formats = [
            ("syscalls/sys_enter_openat", OPENAT),
            ("syscalls/sys_exit_openat", OPENAT_EXIT),
            ("sched/sched_wakeup", WAKEUP),
            ("sched/sched_wakeup_new", WAKEUP),
            ("sched/sched_shifted", SHIFTED),
            ("syscalls/sys_enter_capget", CAPGET),
            ("signal/signal_generate", "format:\n"),
        ];
        FakeKernel {
            btf: Btf::parse(&b.finish()).unwrap(),
            formats: formats.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tracefs,
        }
    }
}

impl Kernel for FakeKernel {
    fn btf(&self) -> Result<&Btf, String> {
        Ok(&self.btf)
    }

    fn format(&self, category: &str, name: &str) -> Result<Option<String>, String> {
        if !self.tracefs {
            return Err("tracefs is not mounted".into());
        }
        Ok(self.formats.get(&format!("{category}/{name}")).cloned())
    }
}

fn entry(tp: &str, attrs: &[&str]) -> Entry {
    Entry { tracepoint: tp.into(), attributes: attrs.iter().map(|a| a.to_string()).collect() }
}

fn values(tp: &Tracepoint) -> Vec<(&str, &Value)> {
    tp.attrs.iter().map(|a| (a.name.as_str(), &a.value)).collect()
}

#[test]
fn syscall_arguments_are_named_by_tracefs_and_sized_by_their_c_type() {
    let k = FakeKernel::new(true);
    let got = resolve(
        &[
            entry("syscalls:sys_enter_openat", &["filename", "flags", "mode", "dfd", "how"]),
            entry("syscalls:sys_exit_openat", &["ret"]),
        ],
        &k,
    )
    .unwrap();
    assert_eq!(
        values(&got[0]),
        [
            ("filename", &Value::UserString),
            ("flags", &Value::Int { bytes: 4, signed: true }),
            ("mode", &Value::Int { bytes: 2, signed: false }),
            ("dfd", &Value::Int { bytes: 4, signed: true }),
            ("how", &Value::Pointer),
        ]
    );
    assert_eq!(got[0].attrs[0].read, Read::SyscallArg(1));
    assert_eq!(
        (got[0].kind.as_str(), got[0].id, got[0].record.as_deref()),
        ("syscalls_sys_enter_openat", FIRST_ID, None)
    );
    assert_eq!(
        (got[1].attrs[0].read.clone(), &got[1].attrs[0].value),
        (Read::SyscallRet, &Value::Int { bytes: 8, signed: true })
    );
}

#[test]
fn record_members_are_typed_from_btf_even_without_tracefs() {
    let k = FakeKernel::new(false);
    let got = resolve(&[entry("signal:signal_generate", &["sig", "comm", "pid", "where", "mask"])], &k).unwrap();
    assert_eq!(got[0].record.as_deref(), Some("trace_event_raw_signal_generate"));
    assert_eq!(
        values(&got[0]),
        [
            ("sig", &Value::Int { bytes: 4, signed: true }),
            ("comm", &Value::CharArray(16)),
            ("pid", &Value::Int { bytes: 4, signed: true }),
            ("where", &Value::Pointer),
            ("mask", &Value::Bytes(16)),
        ]
    );
}

#[test]
fn an_event_made_from_a_template_finds_the_templates_record() {
    let k = FakeKernel::new(true);
    let got = resolve(&[entry("sched:sched_wakeup", &["name", "pid"])], &k).unwrap();
    assert_eq!(got[0].record.as_deref(), Some("trace_event_raw_sched_wakeup_template"));
    assert_eq!(got[0].attrs[0].value, Value::DataLoc { string: true });
    assert_eq!(got[0].attrs[0].read, Read::Member("__data_loc_name".into()));
}

#[test]
fn every_mistake_names_the_entry_and_the_attribute() {
    let k = FakeKernel::new(true);
    let cases: [(Entry, &str); 8] = [
        (entry("syscalls:sys_enter_nope", &["x"]), "entry 2 (\"syscalls:sys_enter_nope\"): no such tracepoint"),
        (entry("signal:nope", &["x"]), "entry 2 (\"signal:nope\"): no such tracepoint"),
        (
            entry("syscalls:sys_enter_openat", &["flags", "flagz"]),
            "attribute \"flagz\": no such attribute (it has: dfd, filename, flags, mode, how, f)",
        ),
        (entry("syscalls:sys_enter_openat", &["f"]), "attribute \"f\": unsupported type `float`"),
        (entry("signal:signal_generate", &["info"]), "attribute \"info\": unsupported type: a struct"),
        (entry("openat", &["x"]), "write it as CATEGORY:NAME"),
        (entry("signal:signal_generate", &[]), "no attributes listed"),
        (entry("signal:signal_generate", &["sig", "sig"]), "attribute \"sig\" is listed twice"),
    ];
    for (bad, want) in cases {
        let err = resolve(&[entry("signal:signal_generate", &["sig"]), bad], &k).unwrap_err();
        assert!(err.contains(want), "want {want:?} in {err:?}");
    }
}

#[test]
fn declared_tracepoints_join_the_registry_and_get_programs() {
    let k = FakeKernel::new(true);
    let tps = resolve(
        &[
            entry("syscalls:sys_enter_openat", &["filename", "flags"]),
            entry("signal:signal_generate", &["comm", "sig"]),
        ],
        &k,
    )
    .unwrap();
    let file = Path::new("events.json");
    let decls = tps.iter().map(|tp| (file.to_path_buf(), decl(tp, file))).collect();
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../c/events");
    let reg = crate::registry::load_dir_with(&events, decls).unwrap();
    let open = reg.kind("syscalls_sys_enter_openat").unwrap();
    assert_eq!((open.json_type(), open.id, open.has_args()), ("syscalls:sys_enter_openat", FIRST_ID, true));
    let names: Vec<(&str, bool)> = open
        .items()
        .iter()
        .map(|i| match i {
            crate::model::Item::Field(f) => (f.rust.as_str(), f.arg),
            crate::model::Item::Data(d) => (d.key.as_str(), d.arg),
        })
        .collect();
    assert_eq!(names, [("comm", false), ("filename", true), ("flags", true)], "listed order");
    let source = bpf::source(&tps);
    assert!(source.contains("SEC(\"tracepoint/syscalls/sys_enter_openat\")"));
    assert!(source.contains("pt_syscalls_sys_enter_openat_a_filename_ustr(&e, (const void *)ctx->args[1]);"));
    assert!(source.contains("r->a_flags = (__s32)ctx->args[2];"));
    assert!(
        source.contains(
            "struct trace_event_raw_signal_generate___pt_signal_signal_generate {\n\tchar comm[16];\n\t__s32 sig;"
        ),
        "{source}"
    );
    assert!(crate::rust::module(&reg).contains("pub struct SignalSignalGenerateArgs<B = Vec<u8>>"));
    // Their Arrow tables: the attributes as a struct column `args`.
    let arrow = crate::arrow::module(&reg);
    assert!(arrow.contains("field(\"args\", ArrowType::Struct(SyscallsSysEnterOpenatColumns::args_fields())"));
    assert!(arrow.contains("self.args_filename.append_value(e.args.filename.as_ref());"), "{arrow}");
    assert!(arrow.contains("EventKind::SignalSignalGenerate => \"signal_signal_generate\","), "{arrow}");
}

#[test]
fn enums_bytes_keywords_and_pointer_typedefs_are_typed_right() {
    let k = FakeKernel::new(true);
    let got = resolve(
        &[
            entry("signal:signal_generate", &["reason", "addr", "type", "comm"]),
            entry("syscalls:sys_enter_capget", &["header", "type", "_flags"]),
        ],
        &k,
    )
    .unwrap();
    assert_eq!(
        values(&got[0]),
        [
            ("reason", &Value::Enum { name: "skb_drop_reason".into(), signed: false }),
            ("addr", &Value::Bytes(4)),
            ("type", &Value::Int { bytes: 4, signed: true }),
            ("comm", &Value::CharArray(16)),
        ],
        "u8 arrays are bytes; char arrays are text"
    );
    assert_eq!(
        values(&got[1]),
        [
            ("header", &Value::Pointer),
            ("type", &Value::Int { bytes: 4, signed: true }),
            ("_flags", &Value::Int { bytes: 4, signed: true })
        ]
    );
    let err = resolve(&[entry("signal:signal_generate", &["small"])], &k).unwrap_err();
    assert!(err.contains("attribute \"small\": unsupported type: an enum of 1 bytes"), "{err}");
    // The generated code takes them: an enum flavor CO-RE matches by name,
    // a raw identifier for Rust's keyword, a_ for C.
    let file = Path::new("events.json");
    let decls = got.iter().map(|tp| (file.to_path_buf(), decl(tp, file))).collect();
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../c/events");
    let reg = crate::registry::load_dir_with(&events, decls).unwrap();
    let source = bpf::source(&got);
    assert!(
        source.contains("enum skb_drop_reason___pt_signal_signal_generate { pt_signal_signal_generate_a_reason_any };"),
        "{source}"
    );
    assert!(source.contains("\tenum skb_drop_reason___pt_signal_signal_generate reason;"), "{source}");
    assert!(source.contains("r->a__flags = (__s32)ctx->args[2];"), "{source}");
    let rust = crate::rust::module(&reg);
    assert!(rust.contains("pub r#type: i32,") && rust.contains("pub _flags: i32,"), "{rust}");
    let arrow = crate::arrow::module(&reg);
    assert!(arrow.contains("self.args_type.append_value(e.args.r#type);"), "{arrow}");
    assert!(arrow.contains("field(\"type\", ArrowType::Int32, false, Shown::Always)"), "{arrow}");
}

#[test]
fn events_of_one_template_get_their_own_struct_flavor_and_offsets_must_match() {
    let k = FakeKernel::new(true);
    let got = resolve(&[entry("sched:sched_wakeup", &["pid"]), entry("sched:sched_wakeup_new", &["pid"])], &k).unwrap();
    let source = bpf::source(&got);
    assert!(source.contains("struct trace_event_raw_sched_wakeup_template___pt_sched_sched_wakeup {"));
    assert!(source.contains("struct trace_event_raw_sched_wakeup_template___pt_sched_sched_wakeup_new {"));
    let err = resolve(&[entry("sched:sched_shifted", &["pid"])], &k).unwrap_err();
    assert!(err.contains("has this event's fields at their offsets"), "{err}");
}
