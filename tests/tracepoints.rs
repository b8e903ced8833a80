//! Tracepoints declared by a user of the crate (PROCTAP_EVENTS), end to end:
//! the crate built with a declaration file (its own target directory), both
//! dumpers of that build tracing a real open and a real signal; and a bad
//! declaration failing the build with a message that names the entry and
//! the attribute.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tools::{ci, dump_while, top_level_keys, Dump};

const EVENTS: &str = r#"[
  {"tracepoint": "syscalls:sys_enter_openat", "attributes": ["filename", "flags", "dfd"]},
  {"tracepoint": "syscalls:sys_exit_openat", "attributes": ["ret"]},
  {"tracepoint": "signal:signal_generate", "attributes": ["sig", "comm", "pid", "code", "group", "result"]},
  {"tracepoint": "skb:kfree_skb", "attributes": ["reason", "protocol", "location"]},
  {"tracepoint": "sock:inet_sock_set_state", "attributes": ["saddr", "sport", "newstate"]},
  {"tracepoint": "sched:sched_wakeup", "attributes": ["pid", "comm"]},
  {"tracepoint": "sched:sched_wakeup_new", "attributes": ["pid", "comm"]}
]"#;

/// Declared to be loaded too: an enum member (CO-RE matches enums by
/// name), u8 arrays (bytes), two events of one template (each its own
/// struct flavor).
const ALSO_LOADED: [&str; 4] =
    ["skb:kfree_skb", "sock:inet_sock_set_state", "sched:sched_wakeup", "sched:sched_wakeup_new"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The build's own target directory (kept between runs: only the first
/// builds the dependencies).
fn target_dir() -> PathBuf {
    root().join("target/tracepoints-build")
}

/// The declaration file `name`.json, beside that build, rewritten only when
/// its text changes: a path and a file that stay the same keep a finished
/// build fresh, so a run after the first does not compile again. The kernel
/// matrix relies on that: the host builds, the emulated guest only runs.
fn declaration(name: &str, text: &str) -> PathBuf {
    let file = target_dir().join(format!("{name}.json"));
    std::fs::create_dir_all(target_dir()).unwrap();
    if std::fs::read_to_string(&file).ok().as_deref() != Some(text) {
        std::fs::write(&file, text).unwrap();
    }
    file
}

/// `cargo build --release --features bpf-rebuild,arrow --example dump` with
/// PROCTAP_EVENTS = `events` (declared tracepoints are compiled into the
/// BPF object, so they need the feature):
/// its output (JSON messages on stdout, diagnostics on stderr), and success.
fn cargo_build(events: &Path) -> (String, String, bool) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        // arrow: the declared kinds' generated Arrow tables must compile too.
        .args(["build", "--release", "--features", "bpf-rebuild,arrow", "--example", "dump"])
        .arg("--message-format=json-render-diagnostics")
        .arg("--target-dir")
        .arg(target_dir())
        .env("PROCTAP_EVENTS", events)
        .output()
        .expect("running cargo");
    (String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into(), out.status.success())
}

/// The out_dir cargo reports for a build script of `package`.
fn out_dir(messages: &str, package: &str) -> PathBuf {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "build-script-executed")
        .find(|m| {
            m["package_id"]
                .as_str()
                .is_some_and(|id| id.contains(&format!("/{package}#")) || id.contains(&format!("#{package}@")))
        })
        .and_then(|m| m["out_dir"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no out_dir for {package}"))
}

/// The C dumper, linked against that build's libproctap.a.
fn link_c_example(messages: &str, dir: &Path) -> PathBuf {
    let (proctap, libbpf) = (out_dir(messages, "proctap"), out_dir(messages, "libbpf-sys"));
    let exe = dir.join("example");
    let status = Command::new("cc")
        .args(["-O2", "-Ic"])
        .arg(format!("-I{}", proctap.join("gen").display()))
        .arg(format!("-I{}", libbpf.join("include").display()))
        .arg("c/example.c")
        .arg(proctap.join("libproctap.a"))
        .arg(libbpf.join("libbpf.a"))
        .arg("-lelf")
        .arg(libbpf.join("libz.a"))
        .arg("-o")
        .arg(&exe)
        .current_dir(root())
        .status()
        .expect("running cc");
    assert!(status.success(), "linking the C dumper");
    exe
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proctap-tracepoints-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn declared_tracepoints_trace_a_real_open_and_a_real_signal_in_both_dumpers() {
    if !ci() && !Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("SKIPPED: the build types tracepoints from the kernel's BTF, which this machine lacks");
        return;
    }
    // The build first: it needs no privilege, so a run that cannot trace
    // still leaves it fresh (the kernel matrix's host run does that).
    let dir = scratch("ok");
    let events = declaration("declared", EVENTS);
    let (messages, diagnostics, ok) = cargo_build(&events);
    assert!(ok, "the build with PROCTAP_EVENTS failed:\n{diagnostics}");
    if common::start(&proctap::Config::new()).is_none() {
        return; // said why (and fails under CI=true)
    }
    let dumpers = [target_dir().join("release/examples/dump"), link_c_example(&messages, &dir)];
    let exe = common::fixture::build_c("tpsignal.c", "pttpsig");
    let opened = dir.join("opened-by-pttpsig");
    std::fs::write(&opened, "x").unwrap();
    let mut args = vec![
        "--tracepoint",
        "syscalls:sys_enter_openat",
        "--tracepoint",
        "syscalls:sys_exit_openat",
        "--tracepoint",
        "signal:signal_generate",
        "--comm",
        "pttp",
    ];
    for tp in ALSO_LOADED {
        args.extend(["--tracepoint", tp]);
    }
    for dumper in &dumpers {
        let name = dumper.display();
        let mut printed = String::new();
        let Dump { out, .. } = dump_while(dumper, &args, || {
            let run = Command::new(&exe).arg(&opened).output().unwrap();
            assert!(run.status.success(), "{run:?}");
            printed = String::from_utf8(run.stdout).unwrap();
        });
        let value =
            |what: &str| -> i64 { printed.lines().find_map(|l| l.strip_prefix(what)?.trim().parse().ok()).unwrap() };
        let (fd, child) = (value("open "), value("child "));
        let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // The open: its entry with the path and flags as passed, its exit with the fd.
        let path = opened.to_str().unwrap();
        let enter = events
            .iter()
            .find(|e| e["type"] == "syscalls:sys_enter_openat" && e["args"]["filename"] == path)
            .unwrap_or_else(|| panic!("{name}: no openat of {path} in {out}"));
        let line = out.lines().find(|l| l.contains("sys_enter_openat") && l.contains(path)).unwrap();
        assert_eq!(
            top_level_keys(line),
            ["type", "ts_ns", "time", "pid", "tid", "proc_start_ns", "comm", "args", "data_lost"],
            "{name}"
        );
        assert_eq!(enter["comm"], "pttpsig", "{name}");
        assert_eq!(
            enter["args"],
            serde_json::json!({"filename": path, "flags": 0o2000000, "dfd": -100}),
            "{name}: O_RDONLY|O_CLOEXEC from AT_FDCWD"
        );
        let exit = events
            .iter()
            .filter(|e| e["type"] == "syscalls:sys_exit_openat" && e["tid"] == enter["tid"])
            .filter(|e| e["ts_ns"].as_u64() > enter["ts_ns"].as_u64())
            .min_by_key(|e| e["ts_ns"].as_u64())
            .unwrap_or_else(|| panic!("{name}: no openat exit after the entry"));
        assert_eq!(exit["args"], serde_json::json!({"ret": fd}), "{name}");
        // The signal: sent by the fixture (current task) to its child.
        let signal = events
            .iter()
            .find(|e| e["type"] == "signal:signal_generate" && e["args"]["sig"] == 10)
            .unwrap_or_else(|| panic!("{name}: no SIGUSR1 in {out}"));
        assert_eq!((&signal["comm"], &signal["pid"]), (&enter["comm"], &enter["pid"]), "{name}: the sender");
        let args = &signal["args"];
        assert_eq!(
            (&args["comm"], &args["pid"], &args["code"]),
            (&"pttpchild".into(), &child.into(), &0.into()),
            "{name}"
        );
        assert!(args["group"].is_i64() && args["result"].is_i64(), "{name}: {args}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_declaration_fails_the_build_naming_the_entry_and_the_attribute() {
    if !ci() && !Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("SKIPPED: the build types tracepoints from the kernel's BTF, which this machine lacks");
        return;
    }
    let cases = [
        (
            r#"[{"tracepoint": "signal:signal_generate", "attributes": ["sig", "sgi"]}]"#,
            "entry 1 (\"signal:signal_generate\"): attribute \"sgi\": no such attribute",
        ),
        (
            r#"[{"tracepoint": "signal:signal_generate", "attributes": ["sig"]}, {"tracepoint": "nope:nothing_here", "attributes": ["x"]}]"#,
            "entry 2 (\"nope:nothing_here\"): no such tracepoint",
        ),
    ];
    for (text, want) in cases {
        let events = declaration("bad", text);
        let (_, diagnostics, ok) = cargo_build(&events);
        assert!(!ok, "accepted: {text}");
        assert!(diagnostics.contains(want), "want {want:?} in:\n{diagnostics}");
    }
}
