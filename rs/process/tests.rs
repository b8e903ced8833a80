//! The table's bookkeeping, fed made-up events and a made-up /proc.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::event::{Argv, Comm, Event, Exec, Exit, Fork, WallTime};
use crate::process::BootId;

const TICK: u64 = 10_000_000;

fn boot() -> BootId {
    BootId::new("0123abcd-0000-4000-8000-00000000cafe").unwrap()
}

/// A /proc with the given processes: (pid, ppid, start ticks, comm, argv).
struct FakeProc(PathBuf);

impl FakeProc {
    fn new(name: &str, procs: &[(u32, u32, u64, &str, &[&str])]) -> FakeProc {
        let root = std::env::temp_dir().join(format!("proctap-fakeproc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for &(pid, ppid, start, comm, argv) in procs {
            let dir = root.join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            let stat = format!("{pid} ({comm}) S {ppid} 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0");
            std::fs::write(dir.join("stat"), stat).unwrap();
            let cmdline: String = argv.iter().map(|a| format!("{a}\0")).collect();
            std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        }
        FakeProc(root)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fork(parent: (u32, u64), child: (u32, u64)) -> Event {
    Event::Fork(Fork {
        ts_ns: 1,
        time: WallTime { unix_ns: 1 },
        pid: parent.0,
        tid: parent.0,
        proc_start_ns: parent.1 * TICK,
        ppid: 1,
        comm: Comm::new(b"parent"),
        child_pid: child.0,
        child_tid: child.0,
        child_start_ns: child.1 * TICK + 5,
        thread: false,
    })
}

fn exec(me: (u32, u64), parent: (u32, u64), argv: &[u8]) -> Event {
    Event::Exec(Exec {
        ts_ns: 2,
        time: WallTime { unix_ns: 2 },
        pid: me.0,
        tid: me.0,
        proc_start_ns: me.1 * TICK,
        ppid: parent.0,
        parent_start_ns: parent.1 * TICK,
        uid: 0,
        gid: 0,
        ns_pid: me.0,
        cgroup_id: 1,
        comm: Comm::new(b"child"),
        code_start: 0,
        code_end: 0,
        exe_dev: 0,
        exe_ino: 0,
        argv_size: argv.len() as u32,
        filename: b"/bin/child".to_vec(),
        argv: Argv(argv.to_vec()),
        filename_truncated: false,
        argv_truncated: false,
        argv_fault: false,
        data_lost: false,
    })
}

fn exit(me: (u32, u64)) -> Event {
    Event::Exit(Exit {
        ts_ns: 3,
        time: WallTime { unix_ns: 3 },
        pid: me.0,
        tid: me.0,
        proc_start_ns: me.1 * TICK,
        ppid: 1,
        comm: Comm::new(b"child"),
        exit_code: 0,
        signal: None,
        core_dumped: false,
        start_ns: 0,
        duration_ns: 0,
        thread_exit: false,
    })
}

fn key(pid: u32, start_ticks: u64) -> ProcessKey {
    ProcessKey { pid, start_ticks }
}

#[test]
fn the_seed_ties_each_process_to_its_parent() {
    let fake = FakeProc::new("seed", &[(1, 0, 5, "init", &["/sbin/init"]), (20, 1, 90, "a b) (c", &["sh", "-c", "x"])]);
    let mut table = ProcessTable::new(boot(), fake.path());
    assert_eq!(table.seed().unwrap(), 2);
    let p = table.get(key(20, 90)).unwrap();
    assert_eq!((p.parent, p.comm.as_slice(), p.origin), (Some(key(1, 5)), &b"a b) (c"[..], Origin::Procfs));
    assert_eq!(p.argv, [&b"sh"[..], b"-c", b"x"]);
    assert_eq!(table.ancestors(key(20, 90)).iter().map(|p| p.key).collect::<Vec<_>>(), [key(1, 5)]);
    assert_eq!(table.exec_id(key(20, 90)), "0123abcd-0000-4000-8000-00000000cafe:90:20");
}

#[test]
fn fork_exec_exit_follow_a_process_and_keep_its_ancestry() {
    let fake = FakeProc::new("life", &[(1, 0, 5, "init", &["/sbin/init"])]);
    let mut table = ProcessTable::new(boot(), fake.path());
    table.seed().unwrap();
    table.observe(&fork((1, 5), (30, 100)));
    let child = table.get(key(30, 100)).unwrap();
    assert_eq!((child.origin, child.argv.clone()), (Origin::Fork, vec![b"/sbin/init".to_vec()]), "a fork inherits");
    table.observe(&exec((30, 100), (1, 5), b"/bin/child\0--flag\0"));
    table.observe(&fork((30, 100), (31, 101)));
    let grandchild = table.get(key(31, 101)).unwrap();
    assert_eq!(grandchild.argv, [&b"/bin/child"[..], b"--flag"]);
    let chain: Vec<u32> = table.ancestors(key(31, 101)).iter().map(|p| p.key.pid).collect();
    assert_eq!(chain, [30, 1]);
    // The parent exits: the child keeps its parent's identity.
    table.observe(&exit((30, 100)));
    assert!(table.get(key(30, 100)).unwrap().exited);
    assert_eq!(table.parent_key(key(31, 101)), Some(key(30, 100)));
    assert_eq!(table.len(), 2);
}

#[test]
fn pid_reuse_retires_the_old_process() {
    let fake = FakeProc::new("reuse", &[]);
    let mut table = ProcessTable::new(boot(), fake.path());
    table.observe(&exec((40, 7), (1, 5), b"old\0"));
    table.observe(&exec((40, 9000), (1, 5), b"new\0"));
    assert!(table.get(key(40, 7)).unwrap().exited);
    assert_eq!(table.get(key(40, 9000)).unwrap().argv, [b"new".to_vec()]);
    assert_eq!(table.len(), 1);
}

#[test]
fn a_process_missing_from_the_table_is_read_from_proc_once() {
    let fake = FakeProc::new("resolve", &[(1, 0, 5, "init", &["/sbin/init"]), (50, 1, 77, "late", &["late"])]);
    let mut table = ProcessTable::new(boot(), fake.path());
    let late = table.resolve(key(50, 77)).unwrap();
    assert_eq!((late.comm.as_slice(), late.ppid, late.parent), (&b"late"[..], 1, None), "pid 1 is not in the table");
    // A different start is a different process: not this one.
    assert!(table.resolve(key(50, 78)).is_none());
    assert!(table.resolve(key(50, 78)).is_none());
    assert_eq!(table.stats().procfs_reads, 2, "the miss is remembered");
}

#[test]
fn the_identity_json_has_exec_ids_parent_and_ancestors() {
    let fake = FakeProc::new("json", &[(1, 0, 5, "init", &["/sbin/init"])]);
    let mut table = ProcessTable::new(boot(), fake.path());
    table.seed().unwrap();
    table.observe(&fork((1, 5), (30, 100)));
    let event = exec((30, 100), (1, 5), b"/bin/child\0");
    let json = serde_json::to_value(table.identify(&event, true).unwrap()).unwrap();
    let id = |ticks: u64, pid: u32| format!("0123abcd-0000-4000-8000-00000000cafe:{ticks}:{pid}");
    assert_eq!(json["exec_id"], id(100, 30));
    assert_eq!(json["parent_exec_id"], id(5, 1));
    assert_eq!(json["parent"]["exec_id"], id(5, 1));
    assert_eq!(json["parent"]["argv"], serde_json::json!(["/sbin/init"]));
    assert_eq!(json["ancestors"], serde_json::json!([]));
    let plain = serde_json::to_value(table.identify(&event, false).unwrap()).unwrap();
    assert_eq!(plain.as_object().unwrap().len(), 2, "{plain}");
}

proptest! {
    /// Any order of forks, execs and exits over a few pids keeps the bounds:
    /// at most one live process per pid, exited ones within their bound, and
    /// every process either live or exited.
    #[test]
    fn any_event_order_keeps_the_bounds(ops in proptest::collection::vec((0u8..3, 1u32..6, 1u64..4), 0..200)) {
        let fake = FakeProc::new("prop", &[]);
        let mut table = ProcessTable::new(boot(), fake.path()).with_limits(3, 4);
        for (op, pid, start) in ops {
            let me = (pid, start);
            let event = match op {
                0 => fork((1, 1), me),
                1 => exec(me, (1, 1), b"x\0"),
                _ => exit(me),
            };
            table.observe(&event);
            prop_assert!(table.len() <= 3);
            prop_assert!(table.exited_len() <= 4);
            prop_assert_eq!(table.procs.len(), table.len() + table.exited_len());
            for (pid, k) in &table.live {
                prop_assert_eq!(*pid, k.pid);
                prop_assert!(!table.procs[k].exited);
            }
        }
    }
}
