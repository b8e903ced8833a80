//! What traced processes do beyond exec and exit, against the real kernel:
//! forks, failed execs, file opens, writes. Each with exact expectations,
//! and the tracer's own process left out.

mod common;

use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::Duration;

use common::cgroup::V2Cgroup;
use proctap::{Config, Event, EventKind, Fork, Write};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Every fork of a traced process, threads flagged; the tracer's own forks
/// never (it forks the test programs themselves here).
#[test]
fn forks_report_new_processes_and_threads_but_not_the_tracers_own() {
    let exe = common::fixture::build_c("forker.c", "ptforker");
    let me = std::process::id();
    let config = Config::new().exec(false).exit(false).event(EventKind::Fork, true);
    let Some(named) = common::start(&config.clone().comm_prefix("ptforker")) else { return };
    let Some(everything) = common::start(&config) else { return };
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    // The forker prints its threads' and children's ids.
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
    // The forker's forks, and any of this process' own (it forked the forker).
    let forks_of = |tracer: &proctap::Tracer| {
        let want = threads.len() + children.len();
        let ours = |e: &Event<&[u8]>| matches!(e, Event::Fork(f) if f.comm.as_bytes() == b"ptforker" || f.pid == me);
        let of_forker = |g: &[Event]| g.iter().filter(|e| e.pid() != me).count();
        let mut got = common::collect_until(tracer, TIMEOUT, ours, |g| of_forker(g) >= want);
        got.extend(common::collect_until(tracer, Duration::from_millis(300), ours, |_| false));
        let (own, forks): (Vec<Fork>, Vec<Fork>) = got
            .into_iter()
            .map(|e| match e {
                Event::Fork(f) => f,
                _ => unreachable!(),
            })
            .partition(|f| f.pid == me);
        (forks, own)
    };
    for (name, tracer) in [("comm filter", &named), ("no filter", &everything)] {
        let (forks, own) = forks_of(tracer);
        // The tracer's own process is left out, filter or not.
        assert!(own.is_empty(), "{name}: the tracer's own forks: {own:?}");
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
}

/// An exec that fails is an event with its errno and what was tried.
#[test]
fn failed_execs_carry_the_errno_and_the_arguments_tried() {
    let config = Config::new().exec(false).exit(false).event(EventKind::ExecFailed, true);
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
    let me = std::process::id();
    // This process' children only: tests running beside this one build C
    // fixtures, and cc's search of PATH for `as` fails execs too.
    let failed = |e: &Event<&[u8]>| matches!(e, Event::ExecFailed(f) if f.ppid == me);
    let got = common::collect_until(&tracer, TIMEOUT, failed, |g| g.len() >= 3);
    let fails: Vec<&proctap::ExecFailed> =
        got.iter().filter_map(|e| if let Event::ExecFailed(f) = e { Some(f) } else { None }).collect();
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
    // Only what was asked for: the comm filter's exec program names the
    // processes, but sends no exec events.
    let stats = tracer.stats();
    assert_eq!((stats.exec().emitted, stats.invalid), (0, 0), "{stats:?}");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The writes of one process to one fd, in stream order.
fn writes_to(events: &[Event], fd: i32) -> Vec<&Write> {
    let mut writes: Vec<&Write> = events
        .iter()
        .filter_map(|e| if let Event::Write(w) = e { Some(w) } else { None })
        .filter(|w| w.fd == fd)
        .collect();
    writes.sort_by_key(|w| w.offset);
    writes
}

/// What a traced process writes to stdout can be rebuilt exactly from the
/// events: each carries its bytes and its position in the stream. Writes to
/// a configured fd are captured through every syscall; a failed or empty
/// write is not an event, and the tracer's own writes never are.
#[test]
fn writes_rebuild_the_exact_stream_a_process_wrote() {
    let exe = common::fixture::build_c("writer.c", "ptwriter");
    let file = std::env::temp_dir().join(format!("proctap-writes-{}", std::process::id()));
    let base = Config::new().exec(false).exit(false).comm_prefix("ptwriter");
    let Some(tracer) = common::start(&base.clone().stdio().capture_fd(7).write_max(64 << 10)) else { return };
    let Some(capped) = common::start(&base.clone().stdio().write_max(10)) else { return };
    let Some(everyone) = common::start(&Config::new().exec(false).exit(false).event(EventKind::Write, true)) else {
        return;
    };
    let out = Command::new(&exe).arg(&file).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.len(), 100_000);
    let pid_writes = |e: &Event<&[u8]>| matches!(e, Event::Write(w) if w.comm.as_bytes() == b"ptwriter");
    let got = common::collect_until(&tracer, TIMEOUT, pid_writes, |g| g.len() >= 6);
    let got_more = common::collect_until(&tracer, Duration::from_millis(300), pid_writes, |_| false);
    assert!(got_more.is_empty(), "more writes than made: {got_more:?}");
    // stdout, rebuilt: one 64 KiB write, then the writev (its empty buffer
    // included), each starting where the one before ended.
    let stdout = writes_to(&got, 1);
    assert_eq!(stdout.iter().map(|w| (w.offset, w.len)).collect::<Vec<_>>(), [(0, 65536), (65536, 34464)]);
    let mut rebuilt = Vec::new();
    for w in &stdout {
        assert_eq!((w.data.len() as u64, w.truncated, w.data_lost), (w.len, false, false));
        rebuilt.extend_from_slice(&w.data);
    }
    assert!(rebuilt == out.stdout, "the rebuilt stream differs from what the process wrote");
    let stderr = writes_to(&got, 2);
    assert_eq!(stderr.iter().map(|w| (w.offset, &w.data[..])).collect::<Vec<_>>(), [(0, &b"err\n"[..])]);
    // fd 7: positions in what the process wrote, not in the file.
    let seven = writes_to(&got, 7);
    let seven: Vec<(u64, u64, &[u8])> = seven.iter().map(|w| (w.offset, w.len, &w.data[..])).collect();
    assert_eq!(seven, [(0, 3, &b"abc"[..]), (3, 3, b"def"), (6, 2, b"gh")]);
    assert!(got.iter().all(|e| e.pid() == got[0].pid()));
    // At a cap of 10 bytes: the first 10, the length whole, the cut flagged.
    let cut = common::collect_until(&capped, TIMEOUT, pid_writes, |g| g.len() >= 3);
    let cut = writes_to(&cut, 1);
    assert_eq!(cut.len(), 2, "{cut:?}");
    for w in &cut {
        assert_eq!((&w.data[..], w.truncated), (&out.stdout[w.offset as usize..][..10], true), "{w:?}");
    }
    assert_eq!(capped.stats().kind(EventKind::Write).counter("truncated"), Some(2));
    // No filter: every process' stdout but the tracer's own.
    let me = std::process::id();
    let marker = format!("proctap-own-write-{me}");
    // Straight to fd 1 (println! is captured by the test harness).
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(format!("{marker}\n").as_bytes()).and_then(|()| stdout.flush()).unwrap();
    drop(stdout);
    let mut child = Command::new("/bin/echo").arg(&marker).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let child_pid = child.id();
    assert!(child.wait().unwrap().success());
    // Whatever relays this test's output may write the marker again: only
    // the tracer's own write and the child's are looked at.
    let echoed = common::collect_until(
        &everyone,
        TIMEOUT,
        |e| matches!(e, Event::Write(w) if w.data.starts_with(marker.as_bytes()) && (w.pid == me || w.pid == child_pid)),
        |g| g.iter().any(|e| e.pid() == child_pid),
    );
    let pids: Vec<u32> = echoed.iter().map(|e| e.pid()).collect();
    assert_eq!(pids, [child_pid], "the child's write, not the tracer's own");
    let _ = std::fs::remove_file(&file);
}

/// A real OOM kill in a memory-limited cgroup (v1 or v2, whichever has the
/// memory controller): the victim, its memory when chosen, its cgroups,
/// and the task whose allocation set it off. The comm filter applies.
#[test]
fn an_oom_kill_reports_the_victim_its_memory_and_the_trigger() {
    use std::os::unix::process::ExitStatusExt;
    let exe = common::fixture::build_c("oomer.c", "ptoomer");
    let config = Config::new().exec(false).exit(false).event(EventKind::OomKill, true);
    let Some(tracer) = common::start(&config.clone().comm_prefix("ptoom")) else { return };
    let Some(others) = common::start(&config.clone().comm_prefix("ptnotoomer")) else { return };
    let limit = 32u64 << 20;
    let cgroup = common::cgroup::MemoryCgroup::new("proctap-oom", limit);
    // The victim's v2 cgroup: the memory cgroup itself on v2; on v1 one of
    // its own in the v2 tree, which the cgroup filter follows.
    let v2_own = (cgroup.layout == common::cgroup::Layout::V1).then(|| V2Cgroup::new("proctap-oom-v2"));
    let (v2_dir, v2_id) = match &v2_own {
        Some(v2) => (v2.dir.clone(), v2.id()),
        None => (cgroup.dir.clone(), cgroup.id()),
    };
    let elsewhere = V2Cgroup::new("proctap-oom-elsewhere");
    let Some(by_cgroup) = common::start(&config.clone().cgroup(&v2_dir)) else { return };
    let Some(other_cgroup) = common::start(&config.clone().cgroup(&elsewhere.dir)) else { return };
    let join_v2 = v2_own.as_ref().map(|v2| format!("echo $$ > {} && ", v2.procs().display())).unwrap_or_default();
    let script = format!(
        "{join_v2}echo $$ > {} && echo 500 > /proc/self/oom_score_adj && exec {}",
        cgroup.procs().display(),
        exe.display()
    );
    let mut child = Command::new("/bin/sh").arg("-c").arg(&script).spawn().unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed by the OOM killer ({:?} memory cgroup): {status:?}", cgroup.layout);
    let victim = |e: &Event<&[u8]>| matches!(e, Event::OomKill(k) if k.pid == pid);
    let got = common::collect_until(&tracer, TIMEOUT, victim, |g| !g.is_empty());
    let [Event::OomKill(kill)] = &got[..] else { panic!("one oom_kill of {pid}: {got:?}") };
    assert_eq!(kill.comm.as_bytes(), b"ptoomer");
    assert_eq!((kill.trigger_pid, kill.trigger_comm.as_bytes()), (pid, &b"ptoomer"[..]), "it allocated: {kill:?}");
    assert_eq!((kill.oom_score_adj, kill.uid), (500, real_uid()));
    assert_eq!((kill.memcg_id, kill.cgroup_id), (cgroup.id(), v2_id), "{kill:?}");
    // Killed at the limit: nearly all of it anonymous memory it touched.
    let limit_kb = limit >> 10;
    assert!(kill.anon_rss_kb > limit_kb / 2 && kill.anon_rss_kb <= limit_kb, "{kill:?}");
    // The very numbers the kernel's own report gives.
    let report = kernel_log_line(&format!("Killed process {pid} (ptoomer)")).expect("the kernel's OOM report");
    let want = format!(
        "total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:{}kB, UID:{}",
        kill.total_vm_kb, kill.anon_rss_kb, kill.file_rss_kb, kill.shmem_rss_kb, kill.uid
    );
    assert!(report.contains(&want), "kernel: {report}\nevent: {want}");
    assert!(report.ends_with(&format!("oom_score_adj:{}", kill.oom_score_adj)), "{report}");
    assert_eq!(others.stats().kind(EventKind::OomKill).emitted, 0, "a victim the filter does not trace");
    // The cgroup filter follows the victim's cgroup (by its ancestry: the
    // task that runs the OOM killer may be another).
    let by_cgroup = common::collect_until(&by_cgroup, TIMEOUT, victim, |g| !g.is_empty());
    assert!(matches!(&by_cgroup[..], [Event::OomKill(k)] if k.cgroup_id == v2_id), "{by_cgroup:?}");
    assert_eq!(other_cgroup.stats().kind(EventKind::OomKill).emitted, 0, "a victim in another cgroup");
}

/// The last kernel log line holding `needle` (/dev/kmsg: root).
fn kernel_log_line(needle: &str) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    const O_NONBLOCK: i32 = 0o4000;
    let mut kmsg = std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open("/dev/kmsg").unwrap();
    let mut found = None;
    let mut record = vec![0u8; 8192];
    // One record per read; EPIPE when older ones were overwritten meanwhile,
    // EAGAIN after the last.
    loop {
        let n = match kmsg.read(&mut record) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(32) => continue,
            Err(_) => break,
        };
        let line = String::from_utf8_lossy(&record[..n]);
        if line.contains(needle) {
            found = Some(line.trim_end().to_string());
        }
    }
    found
}

/// This process' real uid, from /proc (no libc call needed).
fn real_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    line.split_whitespace().next().unwrap().parse().unwrap()
}
