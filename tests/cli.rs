//! The `proctap` command as a user runs it: its help names every option of
//! the `dump` and `profile` examples, `--version`, usage mistakes (exit 2,
//! naming the mistake), `trace` printing a marker process' exec and exit
//! with the final stats line, periodic stats lines, stopping cleanly on
//! SIGINT and SIGTERM, and `profile` writing its files. The duration
//! parser's own tests are unit tests of the binary (rs/cli/duration.rs).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::tools::{stats_of, stop_by_signal, wait_for, Stopped};

fn proctap() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_proctap"));
    command.stdin(Stdio::null());
    command
}

fn run(args: &[&str]) -> Output {
    proctap().args(args).output().expect("running proctap")
}

/// True when the kernel lets us trace (once per test binary); else the
/// test is skipped, after saying why (under CI=true it fails instead).
fn kernel() -> bool {
    static KERNEL: OnceLock<bool> = OnceLock::new();
    *KERNEL.get_or_init(|| common::start(&proctap::Config::new()).is_some())
}

/// The options in an example's usage text (its `const USAGE`).
fn example_options(example: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example);
    let source = std::fs::read_to_string(&path).unwrap();
    let start = source.find("const USAGE").unwrap_or_else(|| panic!("{}: no USAGE", path.display()));
    let usage = &source[start..start + source[start..].find("\";").unwrap()];
    let mut options: Vec<String> = usage
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(str::to_string)
        .collect();
    options.dedup();
    assert!(options.len() > 10, "{}: too few options found: {options:?}", path.display());
    options
}

/// The help line of `option` in `help`, with the rest of the line (its
/// one-line doc).
fn help_line<'a>(help: &'a str, option: &str) -> &'a str {
    help.lines()
        .find(|line| {
            let line = line.trim_start();
            line.starts_with('-') && line.split([' ', ',']).any(|word| word == option)
        })
        .unwrap_or_else(|| panic!("{option} is not in the help:\n{help}"))
}

#[test]
fn help_lists_every_option_of_the_examples_with_a_doc() {
    for (subcommand, example) in [("trace", "dump.rs"), ("profile", "profile.rs")] {
        let out = run(&[subcommand, "--help"]);
        assert!(out.status.success(), "{subcommand} --help: {out:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        for option in example_options(example) {
            let line = help_line(&help, &option);
            // "  -d, --duration <DURATION>  Stop after ...": a doc after the spec.
            let doc = line.trim().split_once("  ").map(|(_, doc)| doc.trim()).unwrap_or("");
            assert!(doc.split_whitespace().count() >= 3, "{subcommand} {option} has no doc: {line:?}");
        }
    }
    let top = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(top.contains("trace") && top.contains("profile"), "{top}");
}

#[test]
fn short_flags_for_the_common_options() {
    let trace = String::from_utf8(run(&["trace", "--help"]).stdout).unwrap();
    for (short, long) in [("-d", "--duration"), ("-p", "--pid"), ("-c", "--comm"), ("-t", "--tracepoint")] {
        assert!(help_line(&trace, long).contains(&format!("{short}, {long}")), "trace {short}: {trace}");
    }
    let profile = String::from_utf8(run(&["profile", "--help"]).stdout).unwrap();
    for (short, long) in [("-d", "--duration"), ("-p", "--pid"), ("-c", "--comm"), ("-o", "--out")] {
        assert!(help_line(&profile, long).contains(&format!("{short}, {long}")), "profile {short}: {profile}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), format!("proctap {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_mistakes_exit_2_naming_them() {
    for (args, names) in [
        (&["trace", "-d", "5x"][..], &["--duration", "5x", "500ms"][..]),
        (&["trace", "--stats-interval", "soon"], &["--stats-interval", "soon"]),
        (&["trace", "--bogus"], &["--bogus"]),
        (&["profile", "--all", "-o", "/tmp/x", "--duration", "-3"], &["-3"]),
        (&["profile", "--all"], &["--out"]),
        (&["profile", "-o", "/tmp/proctap-cli-nothing"], &["nothing to profile"]),
        (&["profile", "--all", "-o", "/tmp/x", "--unwind", "dwarf"], &["--unwind", "dwarf"]),
        (&["frobnicate"], &["frobnicate"]),
    ] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for name in names {
            assert!(err.contains(name), "{args:?}: want {name:?} in {err}");
        }
    }
}

/// Reads a child's stdout on a thread, as it comes (a tracer blocked on a
/// full pipe would lose events).
fn read_stdout(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    })
}

fn parse_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn trace_prints_a_marker_process_exec_and_exit_and_the_final_stats() {
    if !kernel() {
        return;
    }
    let (dir, marker) = common::true_named("ptclimark");
    let mut child = proctap()
        .args(["trace", "-d", "2s", "-c", "ptclimark"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = read_stdout(&mut child);
    // The marker runs until the trace ends: some runs fall after attaching.
    let mut runs = 0;
    while child.try_wait().unwrap().is_none() {
        assert!(Command::new(&marker).status().unwrap().success());
        runs += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = reader.join().unwrap();
    let status = wait_for(&mut child, Duration::from_secs(30));
    let (err, stats) = stats_of(&mut child);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    let lines = parse_lines(&out);
    assert!(!lines.is_empty(), "no events of {runs} runs: {err}");
    assert!(lines.iter().all(|l| l["comm"] == "ptclimark"), "--comm filters: {out}");
    let whole = lines
        .iter()
        .filter(|l| l["type"] == "exec")
        .find(|exec| lines.iter().any(|l| l["type"] == "exit" && l["pid"] == exec["pid"] && l["exit_code"] == 0));
    let exec = whole.unwrap_or_else(|| panic!("no marker with both exec and exit: {out}"));
    assert_eq!(exec["filename"], marker.to_str().unwrap());
    assert_eq!(stats["type"], "stats", "{err}");
    assert!(stats.get("interval").is_none(), "the final line has no interval mark: {stats}");
    assert!(stats["exec"].as_u64().unwrap() >= 1 && stats["exit"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["reserve_failures"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stats_interval_prints_periodic_lines_before_the_final_one() {
    if !kernel() {
        return;
    }
    // Our own pid: a filter that lets almost nothing through.
    let pid = std::process::id().to_string();
    let mut child = proctap()
        .args(["trace", "-d", "2s", "--stats-interval", "200ms", "-p", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child, Duration::from_secs(30));
    let (err, last) = stats_of(&mut child);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    let lines = parse_lines(&err);
    let (final_line, periodic) = lines.split_last().unwrap();
    assert_eq!(final_line, &last);
    assert!(periodic.len() >= 3, "several periodic lines in 2 s at 200 ms: {err}");
    let mut elapsed = 0;
    for line in periodic {
        assert_eq!((&line["type"], &line["interval"]), (&"stats".into(), &true.into()), "{line}");
        let ms = line["elapsed_ms"].as_u64().unwrap();
        assert!(ms > elapsed, "elapsed grows: {err}");
        elapsed = ms;
        // The same object as the final line, plus the mark.
        for key in final_line.as_object().unwrap().keys() {
            assert!(line.get(key).is_some(), "periodic line lacks {key}: {line}");
        }
    }
    assert!(final_line.get("interval").is_none() && final_line.get("elapsed_ms").is_none(), "{final_line}");
}

#[test]
fn sigint_and_sigterm_stop_a_running_trace_cleanly() {
    if !kernel() {
        return;
    }
    for sig in [2, 15] {
        let mut child = proctap().args(["trace"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let Stopped { status, stderr: err, stats, took } = stop_by_signal(&mut child, sig, Duration::from_millis(1500));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "signal {sig}: stops cleanly: {err}");
        assert!(took < Duration::from_secs(10), "signal {sig}: took {took:?}");
        assert_eq!(stats["type"], "stats", "signal {sig}: the final stats line: {err}");
    }
}

fn profile_out(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("proctap-cli-{name}-{}", std::process::id()))
}

#[test]
fn profile_writes_its_files_and_summary() {
    let _turn = common::profiling::turn();
    if !kernel() {
        return;
    }
    let bins = common::fixture::build_hot("cli");
    let mut hot = common::fixture::spawn(&bins.plain, &[]);
    let out = profile_out("profile");
    let pid = hot.id().to_string();
    let run = proctap()
        .args(["profile", "-p", &pid, "-F", "99", "-d", "2s", "-o"])
        .arg(&out)
        .output()
        .expect("running proctap profile");
    common::fixture::kill(&mut hot);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{run:?}");
    let summary = parse_lines(&stdout).pop().unwrap_or_else(|| panic!("no summary: {run:?}"));
    assert_eq!(summary["type"], "profile", "{summary}");
    assert_eq!(summary["hz"], 99, "{summary}");
    assert!(summary["samples"].as_u64().unwrap() > 0, "{summary}");
    for file in ["profile.folded", "flamegraph.svg", "profile.pb.gz"] {
        assert!(out.join(file).exists(), "{file} written: {summary}");
    }
    let folded = std::fs::read_to_string(out.join("profile.folded")).unwrap();
    assert!(folded.contains(common::fixture::HOT_OUTER), "{folded}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn profile_stops_on_sigint_and_writes_its_files() {
    let _turn = common::profiling::turn();
    if !kernel() {
        return;
    }
    let out = profile_out("sigint");
    let mut child = proctap()
        .args(["profile", "--all", "-d", "60s", "-o"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let Stopped { status, stderr: err, .. } = stop_by_signal(&mut child, 2, Duration::from_millis(1500));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    for file in ["profile.folded", "flamegraph.svg", "profile.pb.gz"] {
        assert!(out.join(file).exists(), "{file} written: {err}");
    }
    let _ = std::fs::remove_dir_all(&out);
}
