//! Both dumpers end to end: the C ./example (built by `make`) and the Rust
//! `dump` example print one JSON object per event and final stats on stderr.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn rust_dump() -> PathBuf {
    // target/<profile>/deps/dumpers-* -> target/<profile>/examples/dump
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples").join("dump")
}

fn c_example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("example")
}

/// Runs a dumper for 3 s while a process with a known argv runs; returns
/// its stdout lines parsed as JSON and the stats line.
fn run_dumper(path: &PathBuf, tag: &str) -> Option<(Vec<serde_json::Value>, serde_json::Value, u32)> {
    if !path.exists() {
        assert!(!ci(), "CI=true: {} was not built (./dev.sh test runs make first)", path.display());
        eprintln!("SKIPPED: {} not built; run make", path.display());
        return None;
    }
    // Kernel access: the dumper reports it itself; probe with a tracer.
    drop(common::start(&proctap::Config::new())?);
    let dumper = Command::new(path)
        .args(["--duration", "3", "--comm", "sh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000)); // attached well before
    let mut child = Command::new("/bin/sh").args(["-c", "exit 7", "sh", tag, "", "\u{e9}t\u{e9}"]).spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let out = dumper.wait_with_output().unwrap();
    assert!(out.status.success(), "{} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let stats_line = String::from_utf8(out.stderr).unwrap().lines().last().unwrap_or_default().to_string();
    let stats: serde_json::Value =
        serde_json::from_str(&stats_line).unwrap_or_else(|e| panic!("stats ({e}): {stats_line}"));
    Some((lines, stats, pid))
}

fn check(path: PathBuf) {
    let tag = format!("dumper-{}", std::process::id());
    let Some((lines, stats, pid)) = run_dumper(&path, &tag) else { return };
    let of_pid: Vec<&serde_json::Value> = lines.iter().filter(|l| l["pid"] == pid).collect();
    let exec = of_pid.iter().find(|l| l["type"] == "exec").unwrap_or_else(|| panic!("no exec for {pid}: {lines:?}"));
    let exit = of_pid.iter().find(|l| l["type"] == "exit").unwrap_or_else(|| panic!("no exit for {pid}: {lines:?}"));
    assert_eq!(exec["argv"], serde_json::json!(["/bin/sh", "-c", "exit 7", "sh", tag, "", "été"]));
    assert_eq!(exec["filename"], "/bin/sh");
    assert_eq!(exec["comm"], "sh");
    assert_eq!(exec["argv_truncated"], false);
    for key in ["ts_ns", "time", "tid", "ppid", "uid", "gid", "ns_pid", "cgroup_id"] {
        assert!(!exec[key].is_null(), "exec lacks {key}: {exec}");
    }
    assert!(exec["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        (&exit["exit_code"], &exit["signal"], &exit["core_dumped"]),
        (&serde_json::json!(7), &serde_json::Value::Null, &serde_json::json!(false))
    );
    assert!(exit["duration_ns"].as_u64().unwrap() > 0);
    assert!(lines.iter().all(|l| l["comm"] == "sh"), "--comm sh filters");
    assert_eq!(stats["type"], "stats");
    assert!(stats["events"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(stats["reserve_failures"], 0);
    assert_eq!(stats["dropped_data"], 0);
}

#[test]
fn rust_dumper_prints_the_documented_json() {
    check(rust_dump());
}

#[test]
fn c_example_prints_the_documented_json() {
    check(c_example());
}

#[test]
fn an_unprivileged_start_reports_missing_privilege() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !is_root {
        assert!(!ci(), "CI=true: tests run as root");
        eprintln!("SKIPPED: needs root to drop to an unprivileged user");
        return;
    }
    let dump = rust_dump();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(&dump)
        .args(["--duration", "1"])
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("dump: missing privilege:") && stderr.contains("CAP_BPF"), "{stderr}");
}
