//! End-to-end tests against the real kernel (root). Each test spawns real
//! processes with known argv and asserts the exact events proctap reports.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use proctap::{Config, Event, Exec, Exit};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The argv area the kernel builds for `program args...`.
fn argv_area(program: &str, args: &[OsString]) -> Vec<u8> {
    let mut area = Vec::new();
    for arg in std::iter::once(OsString::from(program)).chain(args.iter().cloned()) {
        area.extend_from_slice(arg.as_bytes());
        area.push(0);
    }
    area
}

fn one_exec(events: &(Vec<Event>, Vec<Event>)) -> &Exec {
    match &events.0[..] {
        [Event::Exec(e)] => e,
        other => panic!("expected exactly one exec, got {other:?}"),
    }
}

fn one_exit(events: &(Vec<Event>, Vec<Event>)) -> &Exit {
    match &events.1[..] {
        [Event::Exit(x)] => x,
        other => panic!("expected exactly one exit, got {other:?}"),
    }
}

#[test]
fn exec_events_carry_exact_argv() {
    let Some(tracer) = common::start(&Config::new()) else { return };
    let cap = 16 << 10;
    let cases: Vec<(&str, Vec<OsString>)> = vec![
        ("no arguments", vec![]),
        ("empty arguments", vec!["".into(), "".into(), "".into()]),
        ("200 arguments", (0..200).map(|i| format!("arg-{i}").into()).collect()),
        ("one 10 KiB argument", vec![OsString::from_vec((0..10 << 10).map(|i| b'a' + (i % 26) as u8).collect())]),
        ("argv over the cap", (0..40).map(|i| format!("{i:04}-{}", "z".repeat(995)).into()).collect()),
        (
            "bytes that are not UTF-8",
            vec![OsString::from_vec(vec![0xff, 0xfe]), "ok".into(), OsString::from_vec(vec![b'x', 0xc3, 0x28])],
        ),
    ];
    let mut pids = Vec::new();
    for (_, args) in &cases {
        let mut child = Command::new("/bin/true").args(args).spawn().expect("spawn /bin/true");
        pids.push(child.id());
        assert!(child.wait().unwrap().success());
    }
    let got = common::exec_and_exit(&tracer, &pids, TIMEOUT);
    let me = std::process::id();
    let (uid, gid) = effective_ids();

    for ((name, args), pid) in cases.iter().zip(&pids) {
        let events = got.get(pid).unwrap_or_else(|| panic!("{name}: no events for pid {pid}"));
        let e = one_exec(events);
        let want = argv_area("/bin/true", args);
        assert_eq!((e.pid, e.tid, e.ppid, e.ns_pid), (*pid, *pid, me, *pid), "{name}: ids");
        assert_eq!((e.uid, e.gid), (uid, gid), "{name}: credentials");
        assert_ne!(e.cgroup_id, 0, "{name}: cgroup id");
        assert_eq!(e.comm.as_bytes(), b"true", "{name}: comm");
        assert_eq!(e.filename, b"/bin/true", "{name}: filename");
        let exe = std::fs::metadata("/bin/true").unwrap();
        assert_eq!((e.exe_dev, e.exe_ino), (exe.dev(), exe.ino()), "{name}: the executable, as stat(2) names it");
        assert!(
            0 < e.code_start && e.code_start < e.code_end,
            "{name}: code range {:#x}..{:#x}",
            e.code_start,
            e.code_end
        );
        assert!(!e.data_lost, "{name}: data lost");
        assert_eq!(e.argv_size as usize, want.len(), "{name}: argv size");
        if want.len() > cap {
            assert!(e.argv_truncated, "{name}: must be flagged truncated");
            assert_eq!(e.argv.as_bytes(), &want[..cap], "{name}: the first {cap} bytes, exactly");
        } else {
            assert!(!e.argv_truncated, "{name}: not truncated");
            assert_eq!(e.argv.as_bytes(), &want[..], "{name}: argv");
            let want_args: Vec<&[u8]> =
                std::iter::once(&b"/bin/true"[..]).chain(args.iter().map(|a| a.as_bytes())).collect();
            assert_eq!(e.argv.iter().collect::<Vec<_>>(), want_args, "{name}: split argv");
        }
        let x = one_exit(events);
        assert_eq!((x.pid, x.tid, x.ppid, x.exit_code, x.signal, x.core_dumped), (*pid, *pid, me, 0, None, false));
        assert!(x.ts_ns > e.ts_ns && x.duration_ns > 0, "{name}: exit after exec");
    }
    let stats = tracer.stop().unwrap();
    assert_eq!((stats.invalid, stats.reserve_failures(), stats.dropped_data()), (0, 0, 0), "{stats:?}");
    assert!(stats.exec().counter("argv_truncated").unwrap_or(0) >= 1);
}

/// Effective uid and gid of this test process, from /proc.
fn effective_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap() // effective id
    };
    (field("Uid:"), field("Gid:"))
}

#[test]
fn exit_codes_and_signals_are_decoded() {
    let Some(tracer) = common::start(&Config::new()) else { return };
    let mut three = Command::new("/bin/sh").args(["-c", "exit 3"]).spawn().unwrap();
    let mut zero = Command::new("/bin/true").spawn().unwrap();
    let mut killed = Command::new("/bin/sleep").arg("100").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200)); // let sleep exec before the kill
    killed.kill().unwrap();
    let pids = [three.id(), zero.id(), killed.id()];
    assert_eq!(three.wait().unwrap().code(), Some(3));
    assert!(zero.wait().unwrap().success());
    assert!(killed.wait().is_ok());

    let got = common::exec_and_exit(&tracer, &pids, TIMEOUT);
    let status = |pid: u32| {
        let x = one_exit(&got[&pid]);
        (x.exit_code, x.signal, x.core_dumped)
    };
    assert_eq!(status(pids[0]), (3, None, false), "exit 3");
    assert_eq!(status(pids[1]), (0, None, false), "exit 0");
    assert_eq!(status(pids[2]), (0, Some(9), false), "SIGKILL");
    assert!(one_exit(&got[&pids[2]]).duration_ns >= 150_000_000, "sleep ran ~200 ms");
    assert_eq!(one_exec(&got[&pids[2]]).argv.as_bytes(), b"/bin/sleep\x00100\x00");
}

#[test]
fn pid_filter_reports_only_the_listed_process() {
    use std::io::Write;
    // Each waits for a line on stdin, sent once the tracer runs (a start
    // can take over a second in an emulated kernel-matrix guest).
    let spawn = |tag: &str| {
        Command::new("/bin/sh")
            .args(["-c", &format!("read go; exec /bin/true {tag}")])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut inside = spawn("filtered-in");
    let mut outside = spawn("filtered-out");
    let tracer = common::start(&Config::new().pid(inside.id()));
    for child in [&mut inside, &mut outside] {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        child.wait().unwrap();
    }
    let Some(tracer) = tracer else { return };
    let (pin, pout) = (inside.id(), outside.id());

    let got = common::collect_until(
        &tracer,
        TIMEOUT,
        |_| true,
        |got| got.iter().any(|e| matches!(e, Event::Exit(x) if x.pid == pin)),
    );
    // Anything else would have arrived with or before the exit of `inside`.
    let extra = common::collect_until(&tracer, Duration::from_millis(300), |_| true, |_| false);
    let all: Vec<&Event> = got.iter().chain(&extra).collect();
    assert!(all.iter().all(|e| e.pid() == pin), "only pid {pin} may appear: {all:?}");
    assert!(!all.iter().any(|e| e.pid() == pout));
    let execs: Vec<&Exec> = all.iter().filter_map(|e| if let Event::Exec(x) = e { Some(x) } else { None }).collect();
    assert_eq!(execs.len(), 1, "{all:?}");
    assert_eq!(execs[0].argv.as_bytes(), b"/bin/true\0filtered-in\0");
}

#[test]
fn comm_prefix_filter_matches_the_new_command_name() {
    let (dir, link) = common::true_named("ptcomm-probe");
    let Some(tracer) = common::start(&Config::new().comm_prefix("ptcomm")) else { return };

    let mut other = Command::new("/bin/true").arg("not-me").spawn().unwrap();
    let mut probe = Command::new(&link).arg("me").spawn().unwrap();
    let (pother, pprobe) = (other.id(), probe.id());
    other.wait().unwrap();
    probe.wait().unwrap();
    let got = common::exec_and_exit(&tracer, &[pprobe], TIMEOUT);
    let e = one_exec(&got[&pprobe]);
    assert_eq!(e.comm.as_bytes(), b"ptcomm-probe");
    assert_eq!(e.filename, link.as_os_str().as_bytes());
    assert_eq!(one_exit(&got[&pprobe]).exit_code, 0);
    assert!(!got.contains_key(&pother));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A process in the filter's cgroup or below it is traced, one elsewhere
/// is not; exec events carry the v2 cgroup the process runs in.
#[test]
fn cgroup_filter_traces_the_cgroup_and_below() {
    use common::cgroup::V2Cgroup;
    let top = V2Cgroup::new("proctap-cgfilter");
    let below = top.child("below");
    let other = V2Cgroup::new("proctap-cgother");
    let Some(tracer) = common::start(&Config::new().cgroup(&top.dir)) else { return };
    let spawn = |cgroup: &V2Cgroup, tag: &str| {
        let script = format!("echo $$ > {} && exec /bin/true {tag}", cgroup.procs().display());
        Command::new("/bin/sh").arg("-c").arg(script).spawn().unwrap()
    };
    let mut children = [spawn(&top, "in-top"), spawn(&below, "in-below"), spawn(&other, "elsewhere")];
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let mut outside = Command::new("/bin/true").arg("not-in-any").spawn().unwrap();
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    outside.wait().unwrap();

    let got = common::exec_and_exit(&tracer, &pids[..2], TIMEOUT);
    assert_eq!(one_exec(&got[&pids[0]]).argv.as_bytes(), b"/bin/true\0in-top\0");
    assert_eq!(one_exec(&got[&pids[0]]).cgroup_id, top.id());
    assert_eq!(one_exec(&got[&pids[1]]).argv.as_bytes(), b"/bin/true\0in-below\0");
    assert_eq!(one_exec(&got[&pids[1]]).cgroup_id, below.id());
    assert_eq!(one_exit(&got[&pids[1]]).exit_code, 0);
    // Anything else would have arrived with or before those exits.
    let extra = common::collect_until(&tracer, Duration::from_millis(300), |_| true, |_| false);
    let strays: Vec<&Event> = extra.iter().filter(|e| e.pid() != pids[0] && e.pid() != pids[1]).collect();
    assert!(strays.is_empty(), "only the two cgroups' processes: {strays:?}");
    drop(tracer);

    // Paths that are not cgroup v2 directories, and an id that names none.
    let not_v2 = ["/proc", "/nonexistent-cgroup", "/sys/fs/cgroup/memory"];
    for path in not_v2.iter().filter(|p| std::path::Path::new(p).exists() || p.starts_with("/nonexistent")) {
        let err = proctap::Tracer::start(&Config::new().cgroup(path)).err();
        assert!(
            matches!(&err, Some(proctap::Error::InvalidConfig { field, .. }) if field == "cgroups"),
            "{path}: {err:?}"
        );
    }
    let removed = {
        let gone = V2Cgroup::new("proctap-cggone");
        gone.id()
    };
    let err = proctap::Tracer::start(&Config::new().cgroup_id(removed)).err();
    assert!(
        matches!(&err, Some(proctap::Error::InvalidConfig { field, reason }) if field == "cgroups" && reason.contains("names no cgroup")),
        "{err:?}"
    );
}

#[test]
fn two_instances_each_see_every_event() {
    let Some(first) = common::start(&Config::new()) else { return };
    let Some(second) = common::start(&Config::new().argv_max(64)) else { return };
    let mut child = Command::new("/bin/true").arg("seen-by-both").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    for (tracer, want) in [(&first, &b"/bin/true\0seen-by-both\0"[..]), (&second, &b"/bin/true\0seen-by-both\0"[..])] {
        let got = common::exec_and_exit(tracer, &[pid], TIMEOUT);
        assert_eq!(one_exec(&got[&pid]).argv.as_bytes(), want);
        assert_eq!(one_exit(&got[&pid]).exit_code, 0);
    }
    assert_ne!(first.prog_ids(), second.prog_ids(), "separate programs");
}

#[test]
fn thread_exits_are_reported_only_when_asked() {
    // Threads of this test binary itself.
    let me = std::process::id();
    let Some(threads) = common::start(&Config::new().thread_exits(true).pid(me)) else { return };
    let Some(processes) = common::start(&Config::new().pid(me)) else { return };
    let tid = std::thread::spawn(|| std::fs::read_to_string("/proc/thread-self/stat").unwrap())
        .join()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse::<u32>()
        .unwrap();
    let got = common::collect_until(
        &threads,
        TIMEOUT,
        |e| e.pid() == std::process::id(),
        |got| got.iter().any(|e| matches!(e, Event::Exit(x) if x.tid == tid)),
    );
    let exit = got.iter().find_map(|e| match e {
        Event::Exit(x) if x.tid == tid => Some(x),
        _ => None,
    });
    let exit = exit.unwrap_or_else(|| panic!("no thread exit for tid {tid}: {got:?}"));
    assert!(exit.thread_exit);
    assert_eq!(exit.pid, me);
    // The default tracer, started before the thread, stays silent: the
    // process is still alive.
    let quiet = common::collect_until(&processes, Duration::from_millis(300), |e| e.pid() == me, |_| false);
    assert!(quiet.is_empty(), "no thread exits by default: {quiet:?}");
}

fn exit_group_helper() -> std::path::PathBuf {
    // target/<profile>/deps/kernel-* -> target/<profile>/examples/exit_group
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples").join("exit_group")
}

/// Spawns the exit_group helper `runs` times; returns the pids.
fn run_exit_groups(runs: usize, threads: usize) -> Vec<u32> {
    let helper = exit_group_helper();
    assert!(helper.exists(), "{} is built by cargo test", helper.display());
    (0..runs)
        .map(|_| {
            let mut child = Command::new(&helper).arg(threads.to_string()).spawn().unwrap();
            assert_eq!(child.wait().unwrap().code(), Some(5));
            child.id()
        })
        .collect()
}

/// Exits the kernel may skip: none, but with the BTF-tracepoint `Live`
/// probe on a kernel whose tracepoints are preemptible (7.x), where the
/// kernel skips the program for a task while another is preempted inside
/// it; then each skipped run must be counted.
fn skips_allowed(tracer: &proctap::Tracer, probe: proctap::ExitProbe) -> u64 {
    if probe == proctap::ExitProbe::Live {
        tracer.stats().missed_runs
    } else {
        0
    }
}

/// Both parts share the helper's command name, so they run in one test,
/// one after the other.
#[test]
fn a_multithreaded_exit_is_one_process_exit_and_thread_exits_count_every_thread() {
    use proctap::ExitProbe;
    for probe in [ExitProbe::Auto, ExitProbe::Live] {
        let config = Config::new().exec(false).comm_prefix("exit_group").exit_probe(probe);
        let Some(tracer) = common::start(&config) else { return };
        let pids = run_exit_groups(300, 16);
        let got = common::exec_and_exit(&tracer, &pids, TIMEOUT);
        // Duplicates would arrive with the first exit; wait a little for them.
        let mine: std::collections::HashSet<u32> = pids.iter().copied().collect();
        let late = common::collect_until(&tracer, Duration::from_millis(300), |e| mine.contains(&e.pid()), |_| false);
        assert!(late.is_empty(), "{probe:?}: extra exits {late:?}");
        let mut missing = 0;
        for pid in &pids {
            let Some((_, exits)) = got.get(pid) else {
                missing += 1;
                continue;
            };
            assert_eq!(exits.len(), 1, "{probe:?}: pid {pid} must exit once: {exits:?}");
            let Event::Exit(x) = &exits[0] else { unreachable!() };
            assert_eq!((x.exit_code, x.signal, x.thread_exit), (5, None, false), "{probe:?}");
        }
        let allowed = skips_allowed(&tracer, probe);
        assert!(missing <= allowed, "{probe:?}: {missing} processes without an exit; runs skipped: {allowed}");
        tracer.stop().unwrap();

        let config = config.thread_exits(true);
        let Some(tracer) = common::start(&config) else { return };
        let pids = run_exit_groups(50, 8);
        let mine: std::collections::HashSet<u32> = pids.iter().copied().collect();
        let exits_of = |got: &[Event], pid: u32| -> Vec<Exit> {
            got.iter()
                .filter_map(|e| match e {
                    Event::Exit(x) if x.pid == pid => Some(*x),
                    _ => None,
                })
                .collect()
        };
        // Until every process has its 9 exits (the first thread exit of the
        // last one may come a while before the rest in an emulated VM),
        // then a little longer for any extra.
        let mut got = common::collect_until(
            &tracer,
            TIMEOUT,
            |e| mine.contains(&e.pid()),
            |got| pids.iter().all(|p| exits_of(got, *p).len() >= 9),
        );
        got.extend(common::collect_until(&tracer, Duration::from_millis(300), |e| mine.contains(&e.pid()), |_| false));
        let allowed = skips_allowed(&tracer, probe);
        let mut missing = 0;
        for pid in &pids {
            let exits = exits_of(&got, *pid);
            let process = exits.iter().filter(|x| !x.thread_exit).count();
            assert!(exits.len() <= 9 && process <= 1, "{probe:?}: extra exits for {pid}: {exits:?}");
            assert!(exits.len() < 9 || process == 1, "{probe:?}: one process exit for {pid}: {exits:?}");
            missing += 9 - exits.len() as u64;
        }
        assert!(
            missing <= allowed,
            "{probe:?}: {missing} exits missing (8 threads + main each); runs skipped: {allowed}"
        );
        tracer.stop().unwrap();
    }
}

/// Runs the rename fixture in `mode`; returns its pid and what it printed.
fn run_renamer(exe: &std::path::Path, mode: &str) -> (u32, String) {
    let child = Command::new(exe)
        .arg(mode)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{mode}: the worker thread ends the process with exit(7)");
    (pid, String::from_utf8(out.stdout).unwrap())
}

/// The filter decision belongs to the process, made when it gets its name
/// (exec, fork), not to whatever its threads call themselves later: the
/// exit of a process whose last thread renamed itself (PR_SET_NAME) is
/// reported, with the process' name. Before: 20 of 20 exits were lost.
#[test]
fn exits_follow_the_process_whatever_its_threads_call_themselves() {
    let exe = common::fixture::build_c("rename.c", "ptrename");
    let config = Config::new().comm_prefix("ptrename");
    let Some(tracer) = common::start(&config) else { return };
    // A process already running when tracing starts is decided from /proc.
    let mut early = Command::new(&exe).arg("wait").stdin(std::process::Stdio::piped()).spawn().unwrap();
    let early_pid = early.id();
    std::thread::sleep(Duration::from_millis(100));
    let Some(late_start) = common::start(&config) else {
        drop(early.stdin.take());
        let _ = early.wait();
        return;
    };
    drop(early.stdin.take()); // EOF: it goes on and exits from its worker
    assert_eq!(early.wait().unwrap().code(), Some(7));

    let threads: Vec<u32> = (0..20).map(|_| run_renamer(&exe, "thread").0).collect();
    let leaders: Vec<u32> = (0..5).map(|_| run_renamer(&exe, "leader").0).collect();
    let (forker, printed) = run_renamer(&exe, "fork");
    let child: u32 = printed.trim().parse().unwrap();
    let all: Vec<u32> = threads.iter().chain(&leaders).copied().chain([forker, child]).collect();
    let got = common::exec_and_exit(&tracer, &all, TIMEOUT);
    for pid in threads.iter().chain([&forker]) {
        let x = one_exit(got.get(pid).unwrap_or_else(|| panic!("no exit for {pid}")));
        assert_eq!((x.comm.as_bytes(), x.exit_code, x.thread_exit), (&b"ptrename"[..], 7, false), "pid {pid}");
        assert_eq!(one_exec(&got[pid]).comm.as_bytes(), b"ptrename");
    }
    for pid in &leaders {
        // Reported though no thread matches by then: it carries the name the
        // process has at its exit (its leader's).
        let x = one_exit(got.get(pid).unwrap_or_else(|| panic!("no exit for {pid}")));
        assert_eq!((x.comm.as_bytes(), x.exit_code), (&b"renamed"[..], 7), "pid {pid}");
    }
    // A child named at its fork (no exec of its own).
    let x = one_exit(got.get(&child).unwrap_or_else(|| panic!("no exit for the forked child {child}")));
    assert_eq!((x.comm.as_bytes(), x.exit_code), (&b"ptrename"[..], 9));
    let early_exit = common::exec_and_exit(&late_start, &[early_pid], TIMEOUT);
    let x = one_exit(early_exit.get(&early_pid).expect("the exit of a process found in /proc at start"));
    assert_eq!((x.comm.as_bytes(), x.exit_code), (&b"ptrename"[..], 7));
    let stats = tracer.stop().unwrap();
    assert_eq!(stats.exit().counter("untracked"), Some(0));
}
