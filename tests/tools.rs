//! The command-line tools as a user runs them: the Rust `dump` and `profile`
//! examples and the C `./example`. Signals (also while starting), full and
//! closed stdout, option mistakes, argument bytes that are not UTF-8, the
//! largest records, and stats that show every loss at their top level.

mod common;

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use common::tools::{
    dumpers, example, os, signal, spawn_piped, spawn_unread, stats_of, stop_by_signal, wait_for, Stopped,
};

#[test]
fn both_dumpers_stop_at_once_with_duration_zero() {
    for dumper in dumpers() {
        let mut child = spawn_unread(&dumper, &os(&["--duration", "0"]));
        let status = wait_for(&mut child, Duration::from_secs(30));
        let (err, stats) = stats_of(&mut child);
        assert_eq!(
            status.map(|s| s.code()),
            Some(Some(0)),
            "{}: --duration 0 must stop at once: {err}",
            dumper.display()
        );
        assert_eq!(stats["type"], "stats", "{}: {err}", dumper.display());
    }
}

#[test]
fn both_dumpers_stop_cleanly_on_sigterm_even_while_starting() {
    for dumper in dumpers() {
        for early in [true, false] {
            let mut child = spawn_unread(&dumper, &[]);
            let settle = Duration::from_millis(if early { 0 } else { 1500 });
            let Stopped { status, stderr: err, stats, .. } = stop_by_signal(&mut child, 15, settle);
            let what =
                format!("{} (SIGTERM {})", dumper.display(), if early { "while starting" } else { "while tracing" });
            assert_eq!(status.map(|s| (s.code(), s.signal())), Some((Some(0), None)), "{what}: {err}");
            assert_eq!(stats["type"], "stats", "{what}: final stats: {err}");
        }
    }
}

#[test]
fn the_largest_record_a_config_allows_fits_both_dumpers() {
    let (dir, link) = common::true_named("ptbigargv");
    // 9 arguments of 128 KiB - 1 bytes: an argument area past the 1 MiB cap.
    let args: Vec<Vec<u8>> = (0..9u8).map(|i| vec![b'a' + i; 131_071]).collect();
    for dumper in dumpers() {
        let mut child = spawn_piped(&dumper, &os(&["--duration", "3", "--comm", "ptbigargv", "--argv-max", "1048576"]));
        std::thread::sleep(Duration::from_millis(1500));
        let mut run = Command::new(&link).args(args.iter().map(|a| OsStr::from_bytes(a))).spawn().unwrap();
        let pid = run.id();
        assert!(run.wait().unwrap().success());
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let status = wait_for(&mut child, Duration::from_secs(30));
        let (err, stats) = stats_of(&mut child);
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}: {err}", dumper.display());
        let exec = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["type"] == "exec" && e["pid"] == pid)
            .unwrap_or_else(|| panic!("{}: no exec for {pid}; stats {stats}", dumper.display()));
        let argv_bytes: usize = exec["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().len() + 1).sum();
        assert_eq!(exec["argv_truncated"], true, "{}", dumper.display());
        // The first 1 MiB exactly: the last argument is cut (no NUL of its own).
        assert_eq!(argv_bytes, (1 << 20) + 1, "{}", dumper.display());
        assert_eq!(
            (stats["oversize"].as_u64(), stats["dropped_data"].as_u64()),
            (Some(0), Some(0)),
            "{}: {stats}",
            dumper.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a dumper whose stdout is `stdout`, makes one event for it, and
/// returns its exit status and stderr.
fn dump_one_event(
    dumper: &Path,
    stdout: Stdio,
    comm: &str,
    link: &Path,
) -> (Option<ExitStatus>, String, serde_json::Value) {
    let mut child = Command::new(dumper)
        .args(["--duration", "3", "--comm", comm])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(Command::new(link).status().unwrap().success());
    let status = wait_for(&mut child, Duration::from_secs(30));
    let (err, stats) = stats_of(&mut child);
    (status, err, stats)
}

#[test]
fn a_full_or_closed_stdout_is_an_error_and_the_stats_still_print() {
    let (dir, link) = common::true_named("ptfullout");
    for dumper in dumpers() {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let (status, err, stats) = dump_one_event(&dumper, full.into(), "ptfullout", &link);
        assert_eq!(status.map(|s| s.code()), Some(Some(1)), "{} > /dev/full: {err}", dumper.display());
        assert!(err.contains("writing stdout"), "{}: the error is reported: {err}", dumper.display());
        assert_eq!(stats["type"], "stats", "{}: {err}", dumper.display());

        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // nobody reads: EPIPE, not a silent death by SIGPIPE
        let (status, err, stats) = dump_one_event(&dumper, writer.into(), "ptfullout", &link);
        assert_eq!(
            status.map(|s| (s.code(), s.signal())),
            Some((Some(1), None)),
            "{} | closed: {err}",
            dumper.display()
        );
        assert_eq!(stats["type"], "stats", "{}: {err}", dumper.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn arguments_that_are_not_utf8_are_bytes_not_a_crash() {
    let comm = OsStr::from_bytes(b"r\xffq");
    for dumper in dumpers() {
        let mut child = spawn_piped(&dumper, &[OsStr::new("--comm"), comm, OsStr::new("--duration"), OsStr::new("0")]);
        let status = wait_for(&mut child, Duration::from_secs(30));
        let (err, _) = stats_of(&mut child);
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}: {err}", dumper.display());
    }
    if dumpers().is_empty() {
        return;
    }
    let out = std::env::temp_dir().join(format!("proctap-profile-utf8-{}", std::process::id()));
    let mut child = spawn_piped(
        &example("profile"),
        &[OsStr::new("--comm"), comm, OsStr::new("--duration"), OsStr::new("0"), OsStr::new("--out"), out.as_os_str()],
    );
    let status = wait_for(&mut child, Duration::from_secs(30));
    let (err, _) = stats_of(&mut child);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "profile: {err}");
    assert!(out.join("profile.pb.gz").exists());
    let _ = std::fs::remove_dir_all(&out);
}

/// A thread of this test process, alive while `f` runs.
fn with_thread_id<T>(f: impl FnOnce(u32) -> T) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        tx.send(stat.split_whitespace().next().unwrap().parse::<u32>().unwrap()).unwrap();
        let _ = done_rx.recv();
    });
    let result = f(rx.recv().unwrap());
    drop(done_tx);
    thread.join().unwrap();
    result
}

#[test]
fn option_mistakes_are_config_errors_in_both_dumpers() {
    for dumper in dumpers() {
        with_thread_id(|tid| {
            let tid = tid.to_string();
            let nine_fds: Vec<String> = (3..12).flat_map(|fd| ["--capture-fd".to_string(), fd.to_string()]).collect();
            for (args, want) in [
                (vec!["--argv-max", "0"], "invalid config field `argv_max`"),
                (vec!["--pid", &tid], "is a thread of process"),
                (vec!["--pid", "4194300"], "no process 4194300"),
                (vec!["--duration", "-1"], "--duration"),
                (vec!["--write-max", "2000000"], "invalid config field `write_max`"),
                (vec!["--capture-fd", "-1"], "--capture-fd: not a number"),
                (nine_fds.iter().map(String::as_str).collect(), "at most 8"),
            ] {
                let out = Command::new(&dumper).args(&args).args(["--duration", "0"]).output().unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{} {args:?}: {err}", dumper.display());
                assert!(err.contains(want), "{} {args:?}: want {want:?} in {err}", dumper.display());
            }
        });
    }
}

/// Loss counters are at the top level of the stats line, and with them every
/// event the kernel emitted is accounted for: here a consumer whose stdout
/// is blocked when Ctrl-C comes (events then abandoned at stop).
#[test]
fn every_loss_is_at_the_top_level_of_the_stats() {
    let (dir, link) = common::true_named("ptblocked");
    let losses = [
        "reserve_failures",
        "dropped_data",
        "invalid",
        "oversize",
        "abandoned",
        "undelivered",
        "ring_stalls",
        "missed_runs",
    ];
    let mut keys = Vec::new();
    for dumper in dumpers() {
        let mut child = spawn_piped(&dumper, &os(&["--comm", "ptblocked", "--argv-max", "4096"]));
        std::thread::sleep(Duration::from_millis(1500));
        let pad = "x".repeat(3000); // fills the 64 KiB pipe fast: the dumper blocks
        for chunk in 0..40 {
            let mut kids: Vec<Child> =
                (0..50).map(|i| Command::new(&link).arg(format!("{chunk}-{i}-{pad}")).spawn().unwrap()).collect();
            for kid in &mut kids {
                kid.wait().unwrap();
            }
        }
        signal(&child, 2);
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap(); // unblocks it
        let status = wait_for(&mut child, Duration::from_secs(30));
        let (err, stats) = stats_of(&mut child);
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}: {err}", dumper.display());
        for key in losses {
            assert!(stats[key].is_u64(), "{}: `{key}` is not at the top level: {stats}", dumper.display());
        }
        // Events printed; loss reports are printed too, but are no events.
        let printed =
            out.split(|&b| b == b'\n').filter(|l| !l.is_empty() && !l.starts_with(br#"{"type":"lost""#)).count() as u64;
        let top = |k: &str| stats[k].as_u64().unwrap_or(0);
        assert_eq!(printed + top("undelivered"), top("events"), "{}: printed vs delivered: {stats}", dumper.display());
        if let Some(detail) = stats.get("detail") {
            let emitted: u64 = ["exec", "exit"].iter().map(|k| detail[k]["emitted"].as_u64().unwrap_or(0)).sum();
            let accounted =
                top("events") + top("reserve_failures") + top("invalid") + top("oversize") + top("abandoned");
            assert_eq!(
                accounted,
                emitted,
                "{}: every emitted event is delivered or a top-level loss: {stats}",
                dumper.display()
            );
        }
        let mut names: Vec<String> = stats.as_object().unwrap().keys().filter(|k| *k != "detail").cloned().collect();
        names.sort();
        keys.push(names);
    }
    if let [rust, c] = &keys[..] {
        assert_eq!(rust, c, "both dumpers print the same top-level counters");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn profile_out(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("proctap-profile-{name}-{}", std::process::id()))
}

#[test]
fn profile_stops_promptly_on_a_signal_and_writes_its_files() {
    if dumpers().is_empty() {
        return;
    }
    for (sig, early) in [(2, false), (15, false), (15, true)] {
        let out = profile_out(&format!("sig{sig}{early}"));
        let mut child = spawn_piped(
            &example("profile"),
            &[OsStr::new("--all"), OsStr::new("--duration"), OsStr::new("60"), OsStr::new("--out"), out.as_os_str()],
        );
        let settle = Duration::from_millis(if early { 0 } else { 1500 });
        let Stopped { status, stderr: err, took, .. } = stop_by_signal(&mut child, sig, settle);
        assert_eq!(status.and_then(|s| s.code()), Some(0), "signal {sig}: stops cleanly: {err}");
        assert!(took < Duration::from_secs(10), "signal {sig}: stopped {took:?} after the signal");
        for file in ["profile.folded", "flamegraph.svg", "profile.pb.gz"] {
            assert!(out.join(file).exists(), "signal {sig}: {file} written");
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn profile_checks_its_output_directory_before_sampling() {
    if dumpers().is_empty() {
        return;
    }
    // Exists, but nothing can be written there.
    let mut child = spawn_piped(&example("profile"), &os(&["--all", "--duration", "60", "--out", "/proc/1"]));
    let status = wait_for(&mut child, Duration::from_secs(10));
    let (err, _) = stats_of(&mut child);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "fails at once, before sampling: {err}");
    assert!(err.contains("cannot write into --out /proc/1"), "{err}");
}
