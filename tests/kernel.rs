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
    let spawn =
        |tag: &str| Command::new("/bin/sh").args(["-c", &format!("sleep 0.5; exec /bin/true {tag}")]).spawn().unwrap();
    let mut inside = spawn("filtered-in");
    let mut outside = spawn("filtered-out");
    let Some(tracer) = common::start(&Config::new().pid(inside.id())) else {
        let _ = (inside.wait(), outside.wait());
        return;
    };
    let (pin, pout) = (inside.id(), outside.id());
    inside.wait().unwrap();
    outside.wait().unwrap();

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
        for pid in &pids {
            let exits = &got.get(pid).unwrap_or_else(|| panic!("{probe:?}: no exit for {pid}")).1;
            assert_eq!(exits.len(), 1, "{probe:?}: pid {pid} must exit once: {exits:?}");
            let Event::Exit(x) = &exits[0] else { unreachable!() };
            assert_eq!((x.exit_code, x.signal, x.thread_exit), (5, None, false), "{probe:?}");
        }
        tracer.stop().unwrap();

        let config = config.thread_exits(true);
        let Some(tracer) = common::start(&config) else { return };
        let pids = run_exit_groups(50, 8);
        let mine: std::collections::HashSet<u32> = pids.iter().copied().collect();
        let got = common::exec_and_exit(&tracer, &pids, TIMEOUT);
        let late = common::collect_until(&tracer, Duration::from_millis(300), |e| mine.contains(&e.pid()), |_| false);
        for pid in &pids {
            let exits: Vec<&Exit> = got[pid]
                .1
                .iter()
                .chain(&late)
                .filter_map(|e| match e {
                    Event::Exit(x) if x.pid == *pid => Some(x),
                    _ => None,
                })
                .collect();
            let process = exits.iter().filter(|x| !x.thread_exit).count();
            assert_eq!(process, 1, "{probe:?}: one process exit for {pid}: {exits:?}");
            assert_eq!(exits.len(), 9, "{probe:?}: 8 threads + main for {pid}: {exits:?}");
        }
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

/// Every fork of a traced process, threads flagged; the tracer's own forks
/// never (it forks the test programs themselves here).
#[test]
fn forks_report_new_processes_and_threads_but_not_the_tracers_own() {
    let exe = common::fixture::build_c("forker.c", "ptforker");
    let me = std::process::id();
    let config = Config::new().exec(false).exit(false).event(proctap::EventKind::Fork, true);
    let Some(named) = common::start(&config.clone().comm_prefix("ptforker")) else { return };
    let Some(everything) = common::start(&config) else { return };
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    let pid = {
        // The forker's pid: the parent of the children it printed.
        let text = String::from_utf8(out.stdout).unwrap();
        let mut threads = Vec::new();
        let mut children = Vec::new();
        for line in text.lines() {
            let (what, id) = line.split_once(' ').unwrap();
            let id: u32 = id.parse().unwrap();
            if what == "thread" {
                threads.push(id)
            } else {
                children.push(id)
            }
        }
        (threads, children)
    };
    let (threads, children) = pid;
    let forks_of = |tracer: &proctap::Tracer| {
        let want = threads.len() + children.len();
        let got = common::collect_until(
            tracer,
            TIMEOUT,
            |e| matches!(e, Event::Fork(f) if f.comm.as_bytes() == b"ptforker"),
            |g| g.len() >= want,
        );
        let late = common::collect_until(
            tracer,
            Duration::from_millis(300),
            |e| matches!(e, Event::Fork(f) if f.comm.as_bytes() == b"ptforker"),
            |_| false,
        );
        got.into_iter()
            .chain(late)
            .map(|e| match e {
                Event::Fork(f) => f,
                _ => unreachable!(),
            })
            .collect::<Vec<_>>()
    };
    for (name, tracer) in [("comm filter", &named), ("no filter", &everything)] {
        let forks = forks_of(tracer);
        assert_eq!(forks.len(), threads.len() + children.len(), "{name}: {forks:?}");
        let forker = forks[0].pid;
        for f in &forks {
            assert_eq!((f.pid, f.ppid, f.comm.as_bytes()), (forker, me, &b"ptforker"[..]), "{name}: {f:?}");
            if f.thread {
                assert_eq!(f.child_pid, forker, "{name}: a thread belongs to the forker");
                assert!(threads.contains(&f.child_tid), "{name}: thread {} printed: {threads:?}", f.child_tid);
            } else {
                assert_eq!(f.child_pid, f.child_tid, "{name}: a new process' first thread");
                assert!(children.contains(&f.child_pid), "{name}: child {} printed: {children:?}", f.child_pid);
            }
        }
        assert_eq!(forks.iter().filter(|f| f.thread).count(), 3, "{name}");
    }
    // This process forked the forker: the tracer's own process is left out.
    let own = common::collect_until(
        &everything,
        Duration::from_millis(200),
        |e| matches!(e, Event::Fork(f) if f.pid == me),
        |_| false,
    );
    assert!(own.is_empty(), "the tracer's own forks: {own:?}");
}

/// An exec that fails is an event with its errno and what was tried.
#[test]
fn failed_execs_carry_the_errno_and_the_arguments_tried() {
    let config = Config::new().exec(false).exit(false).event(proctap::EventKind::ExecFailed, true);
    let Some(tracer) = common::start(&config) else { return };
    let dir = std::env::temp_dir().join(format!("proctap-noexec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let noexec = dir.join("ptnoexec");
    std::fs::write(&noexec, "#!/bin/sh\n").unwrap(); // mode 0644: not executable
    let missing = "/nonexistent-proctap/ptnope";
    assert!(Command::new(missing).args(["a", "bb", ""]).spawn().is_err());
    assert!(Command::new(&noexec).arg("x").spawn().is_err());
    let long = "y".repeat(1000);
    assert!(Command::new(missing).arg(&long).arg("after").spawn().is_err());
    let failed = |e: &Event<&[u8]>| matches!(e, Event::ExecFailed(_));
    let got = common::collect_until(&tracer, TIMEOUT, failed, |g| g.len() >= 3);
    let fails: Vec<&proctap::ExecFailed> =
        got.iter().filter_map(|e| if let Event::ExecFailed(f) = e { Some(f) } else { None }).collect();
    let me = std::process::id();
    let args = |f: &proctap::ExecFailed| f.argv.iter().map(|a| a.to_vec()).collect::<Vec<_>>();
    let enoent: Vec<_> = fails.iter().filter(|f| f.filename == missing.as_bytes()).collect();
    assert_eq!(enoent.len(), 2, "{fails:?}");
    assert_eq!((enoent[0].errno, enoent[0].ppid), (2, me));
    assert_ne!(enoent[0].pid, me, "the child that tried, not the tracer");
    assert_eq!(args(enoent[0]), [&b"/nonexistent-proctap/ptnope"[..], b"a", b"bb", b""]);
    assert!(!enoent[0].argv_truncated);
    // Each argument is kept up to 255 bytes; the cut is flagged.
    assert_eq!(args(enoent[1])[1], vec![b'y'; 255]);
    assert_eq!(args(enoent[1])[2], b"after");
    assert!(enoent[1].argv_truncated);
    let eacces = fails.iter().find(|f| f.filename == noexec.as_os_str().as_bytes()).expect("the EACCES exec");
    assert_eq!(eacces.errno, 13);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every open of a traced process, through each syscall, joined with its
/// result; the tracer's own opens never.
#[test]
fn opens_carry_the_path_flags_and_result_of_each_syscall() {
    use proctap::EventKind;
    let exe = common::fixture::build_c("opener.c", "ptopener");
    let scratch = std::env::temp_dir().join(format!("proctap-opens-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let config = Config::new().exec(false).exit(false).event(EventKind::Open, true);
    let Some(tracer) = common::start(&config.clone().comm_prefix("ptopener")) else { return };
    let Some(all) = common::start(&config) else { return };
    let out = Command::new(&exe).arg(&scratch).output().unwrap();
    assert!(out.status.success());
    let results: Vec<(i64, i32)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (ret, errno) = l.split_once(' ').unwrap();
            (ret.parse().unwrap(), errno.parse().unwrap())
        })
        .collect();
    assert_eq!(results.len(), 7);
    // The fixture's own opens (the dynamic loader's come first, and vary).
    let ours = |e: &Event<&[u8]>| matches!(e, Event::Open(o) if [&b"made"[..], b".", b"/nonexistent-proctap/x"].contains(&o.path) || o.path.starts_with(b"aaaa"));
    let got = common::collect_until(&tracer, TIMEOUT, ours, |g| g.len() >= 7);
    let opens: Vec<&proctap::Open> =
        got.iter().filter_map(|e| if let Event::Open(o) = e { Some(o) } else { None }).collect();
    let paths: Vec<String> =
        opens.iter().map(|o| String::from_utf8_lossy(&o.path[..o.path.len().min(40)]).into()).collect();
    assert_eq!(opens.len(), 7, "{paths:?}");
    let dfd = results[3].0 as i32;
    let expect: [(&[u8], i32, u64, u64); 7] = [
        (b"made", -100, 0o1101, 0o640),          // creat: O_CREAT|O_WRONLY|O_TRUNC
        (b"made", -100, 0, 0),                   // open
        (b"/nonexistent-proctap/x", -100, 0, 0), // openat: ENOENT
        (b".", -100, 0o200000, 0),               // O_DIRECTORY
        (b"made", dfd, 0o2000002, 0),            // O_RDWR|O_CLOEXEC
        (b"made", dfd, 0, 0),                    // openat2
        (&[b'a'; 4095], -100, 0, 0),             // cut at 4095 bytes
    ];
    for (i, (o, (path, dfd, flags, mode))) in opens.iter().zip(expect).enumerate() {
        assert_eq!((&o.path[..], o.dfd, o.flags, o.mode), (path, dfd, flags, mode), "open {}: {o:?}", i + 1);
        let (ret, errno) = results[i];
        if errno == 0 {
            assert_eq!((o.fd, o.errno), (Some(ret), None), "open {}", i + 1);
        } else {
            assert_eq!((o.fd, o.errno), (None, Some(errno)), "open {}", i + 1);
        }
        assert_eq!(o.path_truncated, i == 6, "open {}", i + 1);
        assert_eq!(o.comm.as_bytes(), b"ptopener");
    }
    assert_eq!(results[2].1, 2, "ENOENT");
    assert_eq!(results[6].1, 36, "ENAMETOOLONG");
    // The tracer's own opens are left out; a child's are not.
    let me = std::process::id();
    std::fs::read(scratch.join("made")).unwrap();
    let mut cat = Command::new("/bin/cat").arg(scratch.join("made")).spawn().unwrap();
    let cat_pid = cat.id();
    cat.wait().unwrap();
    let made = scratch.join("made");
    let seen = common::collect_until(
        &all,
        TIMEOUT,
        |e| matches!(e, Event::Open(o) if o.path == made.as_os_str().as_bytes()),
        |g| g.iter().any(|e| e.pid() == cat_pid),
    );
    assert!(seen.iter().any(|e| e.pid() == cat_pid), "the child's open: {seen:?}");
    assert!(seen.iter().all(|e| e.pid() != me), "the tracer's own open: {seen:?}");
    let _ = std::fs::remove_dir_all(&scratch);
}
