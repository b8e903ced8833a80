//! The `proctap` command's outputs besides JSON lines, end to end:
//! `trace --format arrow --out DIR` writes Arrow IPC files that pyarrow
//! reads, and `export --otlp URL` delivers a process' exec and exit, with
//! its exec_id, to a collector that decodes them with the official Python
//! definitions (tests/fixtures/otlp_receiver.py).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tools::{stats_of, wait_for};

/// A copy of /bin/sleep named `comm`, so its process has that comm.
fn marker(comm: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proctap-cli-{comm}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(comm);
    std::fs::copy("/bin/sleep", &path).unwrap();
    path
}

/// Runs `proctap ARGS -d 3s`, runs `marker 0.1` once it attached, and
/// returns the stats line and the marker's pid.
fn proctap_while_marker_runs(args: &[&str], marker: &Path) -> Option<(serde_json::Value, u32)> {
    common::start(&proctap::Config::new())?; // skips, or fails under CI, without a kernel
    let mut child = Command::new(env!("CARGO_BIN_EXE_proctap"))
        .args(args)
        .args(["-d", "3s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut run = Command::new(marker).arg("0.1").spawn().unwrap();
    let pid = run.id();
    run.wait().unwrap();
    let status = wait_for(&mut child, Duration::from_secs(30));
    let (err, stats) = stats_of(&mut child);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "proctap {args:?}: {err}");
    Some((stats, pid))
}

#[test]
fn trace_writes_arrow_files_that_pyarrow_reads() {
    let exe = marker("ptarrowcli");
    let dir = std::env::temp_dir().join(format!("proctap-cli-arrow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = ["trace", "-c", "ptarrowcli", "--format", "arrow", "--out", dir.to_str().unwrap()];
    let Some((stats, pid)) = proctap_while_marker_runs(&args, &exe) else { return };
    let files = stats["arrow_files"].as_array().unwrap_or_else(|| panic!("no arrow_files: {stats}"));
    for kind in ["exec", "exit"] {
        let path = dir.join(format!("{kind}.arrow"));
        assert!(files.iter().any(|f| f == path.to_str().unwrap()), "{kind}: {stats}");
    }
    // pyarrow reads the exec table: one row, the marker's, with its argv.
    let check = "import sys, pyarrow.ipc as ipc\n\
                 t = ipc.open_file(sys.argv[1]).read_all().select(['pid', 'comm', 'argv']).to_pylist()\n\
                 rows = [r for r in t if r['pid'] == int(sys.argv[2])]\n\
                 print(len(rows), rows[0]['comm'].decode(), [a.decode() for a in rows[0]['argv']][1:])";
    let out = Command::new("python3")
        .args(["-c", check, dir.join("exec.arrow").to_str().unwrap(), &pid.to_string()])
        .output()
        .expect("python3 with pyarrow (./dev.sh test installs it)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1 ptarrowcli ['0.1']");
}

#[test]
fn export_delivers_exec_and_exit_with_their_exec_id_to_a_collector() {
    let exe = marker("ptexportcli");
    let out = std::env::temp_dir().join(format!("proctap-cli-otlp-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp_receiver.py");
    let mut receiver = Command::new("python3")
        .arg(fixture)
        .arg("0")
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with opentelemetry-proto (./dev.sh test installs it)");
    let mut line = String::new();
    BufReader::new(receiver.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.strip_prefix("PORT ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| {
        let _ = receiver.kill();
        panic!("the receiver did not start: {line:?}")
    });
    let url = format!("http://127.0.0.1:{port}");
    let result = proctap_while_marker_runs(&["export", "--otlp", &url, "-c", "ptexportcli"], &exe);
    let _ = receiver.kill();
    let _ = receiver.wait();
    let Some((stats, pid)) = result else { return };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |name: &str| {
        records
            .iter()
            .find(|r| r["event_name"] == name && r["attributes"]["process.pid"] == pid)
            .unwrap_or_else(|| panic!("no {name} of {pid} among {records:?}; stats {stats}"))
    };
    let (exec, exit) = (of("proctap.exec"), of("proctap.exit"));
    let args = serde_json::json!([exe.to_str().unwrap(), "0.1"]);
    assert_eq!(exec["attributes"]["process.command_args"], args, "{exec}");
    let exec_id = exec["attributes"]["proctap.exec_id"].as_str().unwrap_or_else(|| panic!("no exec_id: {exec}"));
    assert!(exec_id.ends_with(&format!(":{pid}")), "{exec_id}");
    assert_eq!(exit["attributes"]["proctap.exec_id"], exec_id, "one process, one exec_id: {exit}");
    assert!(exec["attributes"]["proctap.parent_exec_id"].is_string(), "the parent is known: {exec}");
    assert!(stats["otlp"]["sent_records"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(stats["otlp"]["dropped_overflow"], 0, "{stats}");
}
