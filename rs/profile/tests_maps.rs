//! Unit tests of how long the symbolizer holds a process' mappings: its
//! exit record lets go of them, in the stream's time, unless the pid was
//! reused.

use super::Symbolizer;
use crate::{Mapping, MappingChange, WallTime};

/// Pids above the kernel's limit (2^22): no /proc entry can answer for them.
const PID: u32 = 1 << 23;
const SECOND: u64 = 1_000_000_000;

fn record(change: MappingChange, pid: u32, ts_ns: u64) -> Mapping {
    let mmap = change == MappingChange::Mmap;
    Mapping {
        ts_ns,
        time: WallTime::default(),
        pid,
        tid: pid,
        change,
        parent_pid: if change == MappingChange::Fork { pid + 1 } else { 0 },
        start: if mmap { 0x40_0000 } else { 0 },
        len: if mmap { 0x1000 } else { 0 },
        file_offset: 0,
        dev: 1,
        inode: 2,
        path: if mmap { b"/nonexistent/prog".to_vec() } else { Vec::new() },
        data_lost: false,
    }
}

#[test]
fn an_exit_record_lets_go_of_the_process_two_seconds_later() {
    let mut symbolizer = Symbolizer::new();
    symbolizer.learn_mapping(&record(MappingChange::Exec, PID, SECOND));
    symbolizer.learn_mapping(&record(MappingChange::Mmap, PID, SECOND));
    symbolizer.learn_mapping(&record(MappingChange::Exit, PID, 2 * SECOND));
    // Samples it took may still come: it is held until two seconds passed.
    symbolizer.learn_mapping(&record(MappingChange::Exec, PID + 2, 4 * SECOND - 1));
    assert_eq!(symbolizer.processes_held(), 2);
    symbolizer.learn_mapping(&record(MappingChange::Exec, PID + 3, 4 * SECOND));
    assert_eq!(symbolizer.processes_held(), 2, "PID forgotten, PID + 3 added");
    symbolizer.forget_process(PID + 2);
    symbolizer.forget_process(PID + 3);
    assert_eq!(symbolizer.processes_held(), 0);
}

#[test]
fn a_pid_reused_after_an_exit_is_not_forgotten_with_it() {
    let mut symbolizer = Symbolizer::new();
    symbolizer.learn_mapping(&record(MappingChange::Exec, PID, SECOND));
    symbolizer.learn_mapping(&record(MappingChange::Exit, PID, 2 * SECOND));
    // A new process gets the pid (its parent, PID + 1, is unknown too).
    symbolizer.learn_mapping(&record(MappingChange::Fork, PID, 2 * SECOND + 5));
    symbolizer.learn_mapping(&record(MappingChange::Mmap, PID, 2 * SECOND + 6));
    symbolizer.learn_mapping(&record(MappingChange::Exec, PID + 2, 10 * SECOND));
    assert_eq!(symbolizer.processes_held(), 2, "the new process of PID stays");
    // Its own exit lets it go.
    symbolizer.learn_mapping(&record(MappingChange::Exit, PID, 11 * SECOND));
    symbolizer.learn_mapping(&record(MappingChange::Exit, PID + 2, 11 * SECOND));
    symbolizer.learn_mapping(&record(MappingChange::Exec, PID + 4, 13 * SECOND));
    assert_eq!(symbolizer.processes_held(), 1, "only PID + 4");
}

#[test]
fn a_process_whose_first_thread_exited_is_kept_while_it_runs() {
    let me = std::process::id();
    let mut symbolizer = Symbolizer::new();
    symbolizer.learn_mapping(&record(MappingChange::Exec, me, SECOND));
    symbolizer.learn_mapping(&record(MappingChange::Exit, me, 2 * SECOND));
    symbolizer.learn_mapping(&record(MappingChange::Exec, PID, 5 * SECOND));
    assert_eq!(symbolizer.processes_held(), 2, "this process still runs: kept");
    symbolizer.learn_mapping(&record(MappingChange::Exec, PID + 1, 9 * SECOND));
    assert_eq!(symbolizer.processes_held(), 3, "and looked at again, still kept");
}
