//! Both dumpers end to end: the C ./example (built by `make`) and the Rust
//! `dump` example print one JSON object per event and final stats on stderr.

mod common;

use std::path::Path;
use std::process::Command;

use common::tools::{ci, dump_while, dumpers, example, net_unsupported, top_level_keys, Dump};

/// The exec and exit of one shell, as the README documents them.
fn check(dumper: &Path) {
    let tag = format!("dumper-{}", std::process::id());
    let mut pid = 0;
    let Dump { out, stats, .. } = dump_while(dumper, &["--comm", "sh"], || {
        let mut child =
            Command::new("/bin/sh").args(["-c", "exit 7", "sh", &tag, "", "\u{e9}t\u{e9}"]).spawn().unwrap();
        pid = child.id();
        child.wait().unwrap();
    });
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
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
fn both_dumpers_print_the_documented_json() {
    for dumper in dumpers() {
        check(&dumper);
    }
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
    let dump = example("dump");
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

/// The first line of `kind` holding `needle`.
fn line_of<'a>(out: &'a str, kind: &str, needle: &str) -> &'a str {
    let start = format!("{{\"type\":\"{kind}\"");
    out.lines()
        .find(|l| l.starts_with(&start) && l.contains(needle))
        .unwrap_or_else(|| panic!("no {kind} event with {needle:?} in {out}"))
}

#[test]
fn fork_events_in_both_dumpers() {
    let exe = common::fixture::build_c("forker.c", "ptforkdump");
    for dumper in dumpers() {
        let Dump { out, .. } = dump_while(&dumper, &["--fork", "--comm", "ptforkdump"], || {
            assert!(Command::new(&exe).output().unwrap().status.success());
        });
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("{\"type\":\"fork\"")).collect();
        let forks: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let keys = top_level_keys(lines[0]);
        assert_eq!(
            keys,
            [
                "type",
                "ts_ns",
                "time",
                "pid",
                "tid",
                "proc_start_ns",
                "ppid",
                "comm",
                "child_pid",
                "child_tid",
                "child_start_ns",
                "thread"
            ],
            "{}",
            dumper.display()
        );
        assert_eq!(forks.iter().filter(|f| f["thread"] == true).count(), 3, "{}: {forks:?}", dumper.display());
        assert_eq!(forks.iter().filter(|f| f["thread"] == false).count(), 2, "{}: {forks:?}", dumper.display());
        // Exec and exit stay on.
        assert!(out.lines().any(|l| l.contains("\"type\":\"exec\"")), "{}", dumper.display());
    }
}

#[test]
fn failed_execs_in_both_dumpers() {
    for dumper in dumpers() {
        let Dump { out, .. } = dump_while(&dumper, &["--failed-execs"], || {
            assert!(Command::new("/nonexistent-proctap/ptdumpfail").args(["one", "two"]).spawn().is_err());
        });
        let line = line_of(&out, "exec_failed", "ptdumpfail");
        let keys = top_level_keys(line);
        assert_eq!(
            keys,
            [
                "type",
                "ts_ns",
                "time",
                "pid",
                "tid",
                "proc_start_ns",
                "ppid",
                "comm",
                "errno",
                "filename",
                "argv",
                "argv_truncated",
                "data_lost"
            ],
            "{}",
            dumper.display()
        );
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["errno"], 2);
        assert_eq!(e["argv"], serde_json::json!(["/nonexistent-proctap/ptdumpfail", "one", "two"]));
    }
}

#[test]
fn opens_in_both_dumpers() {
    let scratch = std::env::temp_dir().join(format!("proctap-dumper-opens-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let exe = common::fixture::build_c("opener.c", "ptopendump");
    for dumper in dumpers() {
        let Dump { out, .. } = dump_while(&dumper, &["--files", "--comm", "ptopendump"], || {
            assert!(Command::new(&exe).arg(&scratch).output().unwrap().status.success());
        });
        let line = line_of(&out, "open", "/nonexistent-proctap/x");
        assert_eq!(
            top_level_keys(line),
            [
                "type",
                "ts_ns",
                "time",
                "pid",
                "tid",
                "proc_start_ns",
                "comm",
                "dfd",
                "path",
                "flags",
                "mode",
                "fd",
                "errno",
                "data_lost"
            ],
            "{}",
            dumper.display()
        );
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (&e["dfd"], &e["fd"], &e["errno"]),
            (&serde_json::json!(-100), &serde_json::Value::Null, &serde_json::json!(2))
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The bytes of a JSON `data` value: a string, or `{"hex": ...}`.
fn data_bytes(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => {
            let hex = other["hex"].as_str().unwrap_or_else(|| panic!("data is neither a string nor hex: {other}"));
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
        }
    }
}

#[test]
fn writes_in_both_dumpers_without_their_own() {
    let exe = common::fixture::build_c("writer.c", "ptwritedump");
    let file = std::env::temp_dir().join(format!("proctap-dumper-writes-{}", std::process::id()));
    for dumper in dumpers() {
        // No process filter: the dumper's own stdout must not come back.
        let Dump { out, stats, pid } =
            dump_while(&dumper, &["--stdio", "--capture-fd", "7", "--write-max", "16"], || {
                let run = Command::new(&exe).arg(&file).stdout(std::process::Stdio::null()).status().unwrap();
                assert!(run.success());
            });
        let name = dumper.display();
        let writes: Vec<serde_json::Value> = out
            .lines()
            .filter(|l| l.starts_with("{\"type\":\"write\""))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let own: Vec<_> = writes.iter().filter(|w| w["pid"] == pid).collect();
        assert!(own.is_empty(), "{name}: the dumper's own output came back: {own:?}");
        let mine: Vec<_> = writes.iter().filter(|w| w["comm"] == "ptwritedump").collect();
        let line = line_of(&out, "write", "\"comm\":\"ptwritedump\"");
        assert_eq!(
            top_level_keys(line),
            [
                "type",
                "ts_ns",
                "time",
                "pid",
                "tid",
                "proc_start_ns",
                "comm",
                "fd",
                "len",
                "offset",
                "data",
                "truncated",
                "data_lost"
            ],
            "{name}"
        );
        let summary: Vec<(i64, u64, u64, bool)> = mine
            .iter()
            .map(|w| {
                (
                    w["fd"].as_i64().unwrap(),
                    w["len"].as_u64().unwrap(),
                    w["offset"].as_u64().unwrap(),
                    w["truncated"] == true,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, 65536, 0, true),
                (1, 34464, 65536, true),
                (2, 4, 0, false),
                (7, 3, 0, false),
                (7, 3, 3, false),
                (7, 2, 6, false)
            ],
            "{name}"
        );
        // The writev's first 16 bytes: the pattern at 65536 (not UTF-8: hex).
        let want: Vec<u8> = (65536..65536 + 16).map(|i: u32| (i * 7 % 251) as u8).collect();
        assert!(mine[1]["data"]["hex"].is_string(), "{name}: {}", mine[1]);
        assert_eq!(data_bytes(&mine[1]["data"]), want, "{name}");
        assert_eq!(data_bytes(&mine[5]["data"]), b"gh", "{name}");
        // Only the Rust dumper's stats have per-kind detail.
        if let Some(detail) = stats.get("detail") {
            assert!(detail["write"]["truncated"].as_u64().unwrap() >= 2, "{name}: {stats}");
        }
    }
    let _ = std::fs::remove_file(&file);
}

#[test]
fn oom_kills_in_both_dumpers() {
    use std::os::unix::process::ExitStatusExt;
    let exe = common::fixture::build_c("oomer.c", "ptoomdump");
    let cgroup = common::cgroup::MemoryCgroup::new("proctap-oom-dump", 16 << 20);
    for dumper in dumpers() {
        let mut pid = 0;
        let Dump { out, .. } = dump_while(&dumper, &["--oom", "--comm", "ptoomdump"], || {
            let script = format!("echo $$ > {} && exec {}", cgroup.procs().display(), exe.display());
            let mut child = Command::new("/bin/sh").arg("-c").arg(&script).spawn().unwrap();
            pid = child.id();
            assert_eq!(child.wait().unwrap().signal(), Some(9), "the OOM killer ends it");
        });
        let line = line_of(&out, "oom_kill", &format!("\"pid\":{pid},"));
        assert_eq!(
            top_level_keys(line),
            [
                "type",
                "ts_ns",
                "time",
                "pid",
                "proc_start_ns",
                "comm",
                "cgroup_id",
                "total_vm_kb",
                "anon_rss_kb",
                "file_rss_kb",
                "oom_score_adj",
                "shmem_rss_kb",
                "memcg_id",
                "uid",
                "trigger_pid",
                "trigger_tid",
                "trigger_comm"
            ],
            "{}",
            dumper.display()
        );
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!((&e["comm"], &e["memcg_id"]), (&serde_json::json!("ptoomdump"), &serde_json::json!(cgroup.id())));
    }
}

#[test]
fn connections_in_both_dumpers() {
    let exe = common::fixture::build_c("netpair.c", "ptnetdump");
    let dumpers = dumpers();
    if net_unsupported(&dumpers, &["--net-raw", "--comm", "ptnetdump"]) {
        return;
    }
    for dumper in dumpers {
        let name = dumper.display();
        let mut printed = String::new();
        let Dump { out, .. } = dump_while(&dumper, &["--net-raw", "--comm", "ptnetdump"], || {
            printed = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();
        });
        let v6 = printed.lines().find(|l| l.starts_with("tcp ipv6 ")).unwrap();
        let client_port = v6.split(' ').nth(2).unwrap();
        let line = line_of(&out, "conn_close", &format!("\"local\":\"[::1]:{client_port}\""));
        assert_eq!(
            top_level_keys(line),
            [
                "type",
                "ts_ns",
                "time",
                "pid",
                "tid",
                "proc_start_ns",
                "comm",
                "fd",
                "conn_id",
                "role",
                "protocol",
                "family",
                "local",
                "remote",
                "sent_bytes",
                "received_bytes"
            ],
            "{name}"
        );
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (&e["role"], &e["family"], &e["sent_bytes"]),
            (&"client".into(), &"ipv6".into(), &5.into()),
            "{name}"
        );
        // A connection with no peer prints null: none here; a UDP one has its peer.
        let udp = line_of(&out, "conn_open", "\"protocol\":\"udp\"");
        assert!(udp.contains("\"remote\":\"127.0.0.1:"), "{name}: {udp}");
        // Raw mode: the bytes, at their position.
        let data = line_of(&out, "net_data", "\"data\":\"world!\"");
        assert_eq!(
            top_level_keys(data),
            [
                "type",
                "ts_ns",
                "time",
                "pid",
                "tid",
                "proc_start_ns",
                "comm",
                "fd",
                "conn_id",
                "direction",
                "pos",
                "len",
                "data",
                "truncated",
                "data_lost"
            ],
            "{name}"
        );
    }
}

/// `--cgroup DIR` in both dumpers: a process that joined the cgroup is
/// printed, one outside is not; a directory that is not cgroup v2 is a
/// usage mistake (exit status 2).
#[test]
fn cgroup_filter_in_both_dumpers() {
    let cgroup = common::cgroup::V2Cgroup::new("proctap-dumpcg");
    let dir: &'static str = Box::leak(cgroup.dir.display().to_string().into_boxed_str());
    for dumper in dumpers() {
        let (mut inside, mut outside) = (0, 0);
        let Dump { out, .. } = dump_while(&dumper, &["--cgroup", dir], || {
            let script = format!("echo $$ > {dir}/cgroup.procs && exec /bin/true in-cgroup");
            let mut child = Command::new("/bin/sh").arg("-c").arg(script).spawn().unwrap();
            let mut other = Command::new("/bin/true").arg("outside").spawn().unwrap();
            (inside, outside) = (child.id(), other.id());
            assert!(child.wait().unwrap().success() && other.wait().unwrap().success());
        });
        let exec = line_of(&out, "exec", "in-cgroup");
        assert!(exec.contains(&format!("\"pid\":{inside}")), "{}: {exec}", dumper.display());
        assert!(!out.contains(&format!("\"pid\":{outside},")), "{}: {out}", dumper.display());
        let bad = Command::new(&dumper).args(["--cgroup", "/proc", "--duration", "0"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{}: {stderr}", dumper.display());
        assert!(stderr.contains("cgroup"), "{}: {stderr}", dumper.display());
    }
}
