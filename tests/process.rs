//! Process identity against the real kernel: the keys events carry match
//! /proc's, the table gives parents and ancestry, and a storm of short-lived
//! processes leaves nothing behind in it.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use proctap::process::{ProcessKey, ProcessTable};
use proctap::{Config, Event, EventKind};

const TIMEOUT: Duration = Duration::from_secs(20);

/// /proc/PID/stat's starttime (field 22), as the table's procfs reader would
/// read it; here with a plain split (test names have no spaces).
fn proc_start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn identity_config() -> Config {
    Config::new().event(EventKind::Fork, true).ringbuf_bytes(8 << 20)
}

/// A shell that forks a shell that waits on stdin: the inner one's exec
/// event names it as /proc does, its fork event named it so already, and
/// its exec names its parent (the outer shell) as /proc does too. (This
/// test process is the tracer's: its own forks are never reported.)
#[test]
fn an_event_names_its_process_as_proc_does() {
    let Some(tracer) = common::start(&identity_config()) else { return };
    let mut outer = Command::new("/bin/sh")
        .args(["-c", "/bin/sh -c 'read line' pt-identity-marker; true"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let outer_pid = outer.id();
    let is_inner_exec =
        |e: &Event<&[u8]>| matches!(e, Event::Exec(x) if x.argv.iter().any(|a| a == b"pt-identity-marker"));
    let got = common::collect_until(
        &tracer,
        TIMEOUT,
        |e| is_inner_exec(e) || matches!(e, Event::Fork(f) if f.pid == outer_pid && !f.thread),
        |g| g.iter().any(|e| e.kind() == EventKind::Exec) && g.iter().any(|e| e.kind() == EventKind::Fork),
    );
    let Some(Event::Exec(exec)) = got.iter().find(|e| e.kind() == EventKind::Exec) else { panic!("no exec: {got:?}") };
    let Some(Event::Fork(fork)) = got.iter().find(|e| e.kind() == EventKind::Fork) else { panic!("no fork: {got:?}") };
    // Both still run: the inner shell waits on the stdin it shares.
    let inner = ProcessKey { pid: exec.pid, start_ticks: proc_start_ticks(exec.pid) };
    let parent = ProcessKey { pid: outer_pid, start_ticks: proc_start_ticks(outer_pid) };
    drop(outer.stdin.take());
    outer.wait().unwrap();
    tracer.stop().unwrap();
    assert_eq!(got.iter().find(|e| e.kind() == EventKind::Exec).unwrap().process_key(), Some(inner));
    assert_eq!(ProcessKey::from_boot_ns(fork.child_pid, fork.child_start_ns), inner, "{fork:?}");
    assert_eq!(ProcessKey::from_boot_ns(exec.ppid, exec.parent_start_ns), parent, "{exec:?}");
    assert_eq!(got.iter().find(|e| e.kind() == EventKind::Fork).unwrap().process_key(), Some(parent));
}

/// `sh -c 'sh -c "exec sleep-like"'`: the table seeded from /proc and fed
/// the events gives the innermost process' parent and ancestors, up to this
/// test process and beyond.
#[test]
fn the_table_gives_parents_and_ancestors() {
    let mut table = ProcessTable::from_procfs().unwrap();
    let me = std::process::id();
    let my_key = ProcessKey { pid: me, start_ticks: proc_start_ticks(me) };
    assert!(table.get(my_key).is_some(), "the seed holds this process");
    let Some(tracer) = common::start(&identity_config()) else { return };
    // sleep adds up its operands, so an odd extra duration marks the leaf
    // without an argument sleep would refuse.
    let inner = "exec /bin/sleep 0.3 0.000424242";
    let mut child = Command::new("/bin/sh").args(["-c", &format!("/bin/sh -c '{inner}'; true")]).spawn().unwrap();
    let outer = child.id();
    let mut leaf = None;
    let got = common::collect_until(
        &tracer,
        TIMEOUT,
        |_| true,
        |g| {
            leaf = g.iter().find_map(|e| match e {
                Event::Exec(x) if x.argv.iter().any(|a| a == b"0.000424242") => e.process_key(),
                _ => None,
            });
            leaf.is_some()
        },
    );
    child.wait().unwrap();
    tracer.stop().unwrap();
    for event in &got {
        table.observe(event);
    }
    let leaf = leaf.expect("the leaf's exec");
    let process = table.get(leaf).unwrap();
    assert_eq!(process.filename, b"/bin/sleep");
    assert_eq!(process.argv, [&b"/bin/sleep"[..], b"0.3", b"0.000424242"]);
    let ancestors = table.ancestors(leaf);
    let pids: Vec<u32> = ancestors.iter().map(|p| p.key.pid).collect();
    // The inner sh execs the leaf (one process); the outer sh forked it,
    // and this test forked the outer sh.
    assert_eq!(&pids[..2], &[outer, me], "{ancestors:?}");
    assert_eq!(ancestors[0].argv[0], b"/bin/sh");
    assert_eq!(ancestors[1].key, my_key);
    assert!(pids.len() > 2, "this test's own ancestors come from the seed: {pids:?}");
    assert_eq!(table.parent_key(leaf).map(|k| table.exec_id(k)), Some(table.exec_id(ancestors[0].key)));
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(table.exec_id(my_key), format!("{}:{}:{me}", boot.trim(), my_key.start_ticks));
}

/// 100,000 processes that fork and exit: the table learns each and, once
/// they are gone, holds no more live processes than before, and no more
/// exited ones than its bound.
#[test]
fn a_hundred_thousand_short_lived_processes_leave_nothing_behind() {
    const STORM: u64 = 100_000;
    const EXITED_MAX: usize = 512;
    let exe = common::fixture::build_c("forkstorm.c", "ptforkstorm");
    let mut table = ProcessTable::from_procfs().unwrap().with_limits(1 << 20, EXITED_MAX);
    let before = table.len();
    let config = Config::new()
        .comm_prefix("ptforkstorm")
        .event(EventKind::Fork, true)
        .event(EventKind::Exec, false)
        .ringbuf_bytes(16 << 20);
    let Some(tracer) = common::start(&config) else { return };
    let mut storm = Command::new(&exe).arg(STORM.to_string()).stdout(Stdio::piped()).spawn().unwrap();
    let (mut forks, mut exits, mut storm_done) = (0u64, 0u64, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    // Until the storm's own exit: every child's exit comes before it.
    while !storm_done && std::time::Instant::now() < deadline {
        let Ok(batch) = tracer.events().recv_timeout(Duration::from_secs(1)) else { continue };
        for event in &batch {
            table.observe(&event);
            match &event {
                Event::Fork(f) if !f.thread => forks += 1,
                Event::Exit(x) if !x.thread_exit && x.pid == storm.id() => storm_done = true,
                Event::Exit(x) if !x.thread_exit => exits += 1,
                _ => {}
            }
        }
    }
    storm.wait().unwrap();
    let stats = tracer.stop().unwrap();
    assert!(storm_done, "the storm's exit did not come in 300 s ({forks} forks, {exits} exits)");
    assert_eq!(
        stats.kind(EventKind::Fork).meta_lost + stats.kind(EventKind::Exit).meta_lost,
        0,
        "events were lost: {stats:?}"
    );
    assert_eq!((forks, exits), (STORM, STORM), "one fork and one exit per child");
    let t = table.stats();
    assert!(t.added >= STORM && t.exited >= STORM, "{t:?}");
    // Processes of the rest of the system come and go meanwhile (not
    // traced: the comm filter): the table only lost those that exited.
    assert!(table.len() <= before, "{} live after, {before} before: {t:?}", table.len());
    assert_eq!(table.exited_len(), EXITED_MAX);
    assert_eq!(t.forgotten, t.exited - EXITED_MAX as u64, "{t:?}");
}
