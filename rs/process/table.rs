//! The process table: what a consumer knows of each process it saw.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use serde::Serialize;

use super::{procfs, BootId, Origin, Process, ProcessKey};
use crate::event::Event;

/// Most processes kept alive in the table (a host's pid_max is 4194304 at
/// most; one with this many processes can raise it with `with_limits`).
const LIVE_MAX: usize = 65536;
/// Exited processes kept for events read after their exit (a thread's,
/// a socket closed at exit), oldest dropped first.
const EXITED_MAX: usize = 4096;
/// Processes /proc did not have when an event asked, remembered so that
/// their next events do not read /proc again; past it the set starts over.
const UNRESOLVED_MAX: usize = 4096;
/// Longest ancestry followed (a loop of parents cannot hang a caller).
const ANCESTRY_MAX: usize = 256;

/// What the table did, for a consumer's stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TableStats {
    /// Processes added (from /proc, fork and exec events).
    pub added: u64,
    /// Processes whose exit came.
    pub exited: u64,
    /// Exited processes dropped, oldest first, to keep the bound.
    pub forgotten: u64,
    /// New processes not added because the table held its most live ones.
    pub full: u64,
    /// Reads of /proc for a process an event asked about.
    pub procfs_reads: u64,
}

/// Processes by key, the live one of each pid, and the recently exited.
pub struct ProcessTable {
    boot: BootId,
    procfs: PathBuf,
    procs: HashMap<ProcessKey, Process>,
    live: HashMap<u32, ProcessKey>,
    exited: VecDeque<ProcessKey>,
    unresolved: HashSet<ProcessKey>,
    live_max: usize,
    exited_max: usize,
    stats: TableStats,
}

impl ProcessTable {
    /// An empty table for this boot that reads /proc at `procfs` when asked.
    pub fn new(boot: BootId, procfs: impl Into<PathBuf>) -> ProcessTable {
        ProcessTable {
            boot,
            procfs: procfs.into(),
            procs: HashMap::new(),
            live: HashMap::new(),
            exited: VecDeque::new(),
            unresolved: HashSet::new(),
            live_max: LIVE_MAX,
            exited_max: EXITED_MAX,
            stats: TableStats::default(),
        }
    }

    /// A table of every process /proc shows now (start it before the
    /// tracer, so that no process falls between the two).
    pub fn from_procfs() -> Result<ProcessTable, crate::Error> {
        let mut table = ProcessTable::new(BootId::read()?, "/proc");
        table.seed().map_err(|e| crate::Error::invalid("process", format!("reading /proc: {e}")))?;
        Ok(table)
    }

    /// Bounds: at most `live_max` live processes, and `exited_max` exited
    /// ones kept for late events.
    pub fn with_limits(mut self, live_max: usize, exited_max: usize) -> ProcessTable {
        self.live_max = live_max.max(1);
        self.exited_max = exited_max;
        self
    }

    /// Adds every process /proc shows (those that exit meanwhile are
    /// skipped), then ties each to its parent. Returns how many it added.
    pub fn seed(&mut self) -> std::io::Result<usize> {
        let mut added = 0;
        for pid in procfs::pids(&self.procfs)? {
            if let Ok(p) = procfs::read_process(&self.procfs, pid) {
                added += usize::from(self.insert(p));
            }
        }
        let orphans: Vec<(ProcessKey, u32)> =
            self.procs.values().filter(|p| p.parent.is_none() && p.ppid != 0).map(|p| (p.key, p.ppid)).collect();
        for (key, ppid) in orphans {
            let parent = self.live.get(&ppid).copied();
            if let Some(p) = self.procs.get_mut(&key) {
                p.parent = parent;
            }
        }
        Ok(added)
    }

    /// Learns from one event: a fork adds its new process, an exec names
    /// its process anew, a process' exit retires it. Other events teach
    /// nothing (see [`resolve`](Self::resolve)).
    pub fn observe<B: AsRef<[u8]>>(&mut self, event: &Event<B>) {
        match event {
            Event::Fork(f) if !f.thread && f.child_start_ns != 0 => {
                let parent = event.process_key();
                let inherited = parent.and_then(|k| self.procs.get(&k));
                let (filename, argv) = inherited.map(|p| (p.filename.clone(), p.argv.clone())).unwrap_or_default();
                self.insert(Process {
                    key: ProcessKey::from_boot_ns(f.child_pid, f.child_start_ns),
                    ppid: f.pid,
                    parent,
                    comm: f.comm.as_bytes().to_vec(),
                    filename,
                    argv,
                    origin: Origin::Fork,
                    exited: false,
                });
            }
            Event::Exec(e) => {
                let Some(key) = event.process_key() else { return };
                let parent = (e.parent_start_ns != 0).then(|| ProcessKey::from_boot_ns(e.ppid, e.parent_start_ns));
                let argv = e.argv.iter().map(<[u8]>::to_vec).collect();
                let (comm, filename) = (e.comm.as_bytes().to_vec(), e.filename.as_ref().to_vec());
                match self.procs.get_mut(&key) {
                    Some(p) => {
                        (p.comm, p.filename, p.argv, p.ppid) = (comm, filename, argv, e.ppid);
                        p.parent = parent.or(p.parent);
                    }
                    None => {
                        self.insert(Process {
                            key,
                            ppid: e.ppid,
                            parent,
                            comm,
                            filename,
                            argv,
                            origin: Origin::Exec,
                            exited: false,
                        });
                    }
                }
            }
            Event::Exit(x) if !x.thread_exit => {
                if let Some(key) = event.process_key() {
                    self.retire(key);
                }
            }
            _ => {}
        }
    }

    /// The process, if the table has it.
    pub fn get(&self, key: ProcessKey) -> Option<&Process> {
        self.procs.get(&key)
    }

    /// The process, read from /proc if the table lacks it and it is still
    /// there (with this start: a later process of the same pid is not it).
    pub fn resolve(&mut self, key: ProcessKey) -> Option<&Process> {
        if !self.procs.contains_key(&key) && !self.unresolved.contains(&key) {
            self.stats.procfs_reads += 1;
            match procfs::read_process(&self.procfs, key.pid) {
                Ok(mut p) if p.key == key => {
                    p.parent = self.live.get(&p.ppid).copied();
                    self.insert(p);
                }
                _ => {
                    if self.unresolved.len() >= UNRESOLVED_MAX {
                        self.unresolved.clear();
                    }
                    self.unresolved.insert(key);
                }
            }
        }
        self.procs.get(&key)
    }

    /// The parent's key: the process that forked it (or, for one the table
    /// learned from /proc, its parent then), even after that one exited.
    pub fn parent_key(&self, key: ProcessKey) -> Option<ProcessKey> {
        self.procs.get(&key)?.parent
    }

    /// The parent, if the table has it.
    pub fn parent_of(&self, key: ProcessKey) -> Option<&Process> {
        self.procs.get(&self.parent_key(key)?)
    }

    /// The ancestors the table has, parent first, up to the first one it
    /// lacks (at most 256).
    pub fn ancestors(&self, key: ProcessKey) -> Vec<&Process> {
        let mut out: Vec<&Process> = Vec::new();
        let mut at = key;
        while let Some(parent) = self.parent_of(at) {
            if out.len() == ANCESTRY_MAX || parent.key == key || out.iter().any(|p| p.key == parent.key) {
                break;
            }
            out.push(parent);
            at = parent.key;
        }
        out
    }

    /// The host-unique id of a process ([`BootId::exec_id`]).
    pub fn exec_id(&self, key: ProcessKey) -> String {
        self.boot.exec_id(key)
    }

    pub fn boot_id(&self) -> &BootId {
        &self.boot
    }

    /// Live processes in the table.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Exited processes still kept for late events.
    pub fn exited_len(&self) -> usize {
        self.exited.len()
    }

    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// Adds a live process; one of its pid before it is retired. False
    /// when the table is full.
    fn insert(&mut self, p: Process) -> bool {
        let key = p.key;
        if self.procs.get(&key).is_some_and(|old| old.exited) {
            return false; // its exit came already: an event out of order
        }
        match self.live.get(&key.pid) {
            Some(&old) if old == key => {}
            Some(&old) => self.retire(old),
            None if self.live.len() >= self.live_max => {
                self.stats.full += 1;
                return false;
            }
            None => {}
        }
        self.unresolved.remove(&key);
        self.live.insert(key.pid, key);
        self.procs.insert(key, p);
        self.stats.added += 1;
        true
    }

    /// Moves a process to the exited, dropping the oldest past the bound.
    fn retire(&mut self, key: ProcessKey) {
        let Some(p) = self.procs.get_mut(&key) else { return };
        if p.exited {
            return;
        }
        p.exited = true;
        self.stats.exited += 1;
        if self.live.get(&key.pid) == Some(&key) {
            self.live.remove(&key.pid);
        }
        self.exited.push_back(key);
        while self.exited.len() > self.exited_max {
            if let Some(old) = self.exited.pop_front() {
                self.procs.remove(&old);
                self.stats.forgotten += 1;
            }
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
