//! Per-process executable mappings, from `/proc/PID/maps` while a process
//! runs and from the stream's [`Mapping`] records, which outlive it.
//!
//! A process made after the tracer started is known from records alone: its
//! fork copies the parent's list, its exec empties it, each executable mmap
//! adds to it. Processes that were running before are read from `/proc`
//! when first needed. Its exit record lets it go [`KEEP_AFTER_EXIT_NS`]
//! later, in the stream's time.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::index::{read_maps, MapsEntry};
use crate::{Mapping, MappingChange};

/// How often a process' mappings may be read again for an address none holds.
const REREAD_AFTER: Duration = Duration::from_millis(200);

/// How long, in the stream's time, a process' mappings stay after its exit
/// record: the samples it took before may still be on their way (records
/// come in poll rounds, 100 ms apart when profiling).
pub(crate) const KEEP_AFTER_EXIT_NS: u64 = 2_000_000_000;

/// One process' mappings, and a generation that changes with them (so
/// that what was built from them can tell it is stale).
#[derive(Clone, Debug)]
pub(crate) struct ProcessMaps {
    pub entries: Vec<MapsEntry>,
    pub generation: u64,
    /// When `/proc` was last read for it (`None`: never, records only).
    read_at: Option<Instant>,
}

impl ProcessMaps {
    pub fn find(&self, address: u64) -> Option<&MapsEntry> {
        self.entries.iter().find(|e| e.start <= address && address < e.end)
    }

    /// Adds a mapping; what it overlaps was unmapped by it.
    fn insert(&mut self, entry: MapsEntry) {
        self.entries.retain(|e| e.end <= entry.start || entry.end <= e.start);
        self.entries.push(entry);
    }

    fn may_reread(&self) -> bool {
        self.read_at.is_none_or(|at| at.elapsed() > REREAD_AFTER)
    }
}

/// The mappings of every process known, by pid.
#[derive(Debug, Default)]
pub(crate) struct Mappings {
    by_pid: HashMap<u32, ProcessMaps>,
    generations: u64,
    /// Exit records in stream order: (time, pid, generation of its
    /// mappings then; a pid reused since has another).
    exited: VecDeque<(u64, u32, u64)>,
}

impl Mappings {
    fn next_generation(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }

    /// Takes mappings read from `/proc` now. The generation changes only
    /// when they did: what was built from them stays valid otherwise.
    pub fn learn(&mut self, pid: u32, entries: Vec<MapsEntry>) {
        let now = Some(Instant::now());
        if let Some(known) = self.by_pid.get_mut(&pid).filter(|p| p.entries == entries) {
            known.read_at = now;
            return;
        }
        let generation = self.next_generation();
        self.by_pid.insert(pid, ProcessMaps { entries, generation, read_at: now });
    }

    /// Reads a process' mappings from `/proc`; false when it is gone (what
    /// records told of it stays, and is not read for again before
    /// [`REREAD_AFTER`]).
    fn read(&mut self, pid: u32) -> bool {
        match read_maps(pid) {
            Ok(entries) => {
                self.learn(pid, entries);
                true
            }
            Err(_) => {
                if let Some(known) = self.by_pid.get_mut(&pid) {
                    known.read_at = Some(Instant::now());
                }
                false
            }
        }
    }

    /// Applies a [`Mapping`] record. Returns the entry an mmap made.
    pub fn record<B: AsRef<[u8]>>(&mut self, m: &Mapping<B>) -> Option<MapsEntry> {
        let generation = self.next_generation();
        match m.change {
            MappingChange::Exit => {
                if let Some(p) = self.by_pid.get(&m.pid) {
                    self.exited.push_back((m.ts_ns, m.pid, p.generation));
                }
                None
            }
            MappingChange::Exec => {
                self.by_pid.insert(m.pid, ProcessMaps { entries: Vec::new(), generation, read_at: None });
                None
            }
            MappingChange::Fork => {
                if !self.by_pid.contains_key(&m.parent_pid) {
                    self.read(m.parent_pid); // running since before the tracer
                }
                let entries = self.by_pid.get(&m.parent_pid).map(|p| p.entries.clone()).unwrap_or_default();
                self.by_pid.insert(m.pid, ProcessMaps { entries, generation, read_at: None });
                None
            }
            MappingChange::Mmap => {
                let fresh = !self.by_pid.contains_key(&m.pid) && self.read(m.pid);
                let path = String::from_utf8_lossy(m.path.as_ref()).into_owned();
                let (path, deleted) = match path.strip_suffix(" (deleted)") {
                    Some(p) => (p.to_string(), true),
                    None => (path, false),
                };
                let entry = MapsEntry {
                    start: m.start,
                    end: m.start.saturating_add(m.len),
                    offset: m.file_offset,
                    dev: m.dev,
                    inode: m.inode,
                    path,
                    deleted,
                    exec: true,
                };
                if fresh {
                    return Some(entry); // what was just read holds it
                }
                let process =
                    self.by_pid.entry(m.pid).or_insert(ProcessMaps { entries: Vec::new(), generation, read_at: None });
                process.insert(entry.clone());
                process.generation = generation;
                Some(entry)
            }
        }
    }

    /// The mappings to resolve `address` of `pid` with: those known, read
    /// (again) from `/proc` when none is known or none holds the address
    /// (a library loaded since; at most every 200 ms). `None` when the
    /// process is gone and no record told its mappings.
    pub fn for_address(&mut self, pid: u32, address: u64) -> Option<&ProcessMaps> {
        let stale = match self.by_pid.get(&pid) {
            None => true,
            Some(p) => p.find(address).is_none() && p.may_reread(),
        };
        if stale {
            self.read(pid);
        }
        self.by_pid.get(&pid)
    }

    pub fn get(&self, pid: u32) -> Option<&ProcessMaps> {
        self.by_pid.get(&pid)
    }

    /// Processes that exited [`KEEP_AFTER_EXIT_NS`] before `now_ns` (the
    /// stream's clock), and whose pid was not reused since: the caller
    /// forgets them. The exit record is its first thread's: a process
    /// whose first thread left early (pthread_exit) still has /proc/PID,
    /// and is looked at again later.
    pub fn expired(&mut self, now_ns: u64) -> Vec<u32> {
        let mut gone = Vec::new();
        while let Some(&(at, pid, generation)) = self.exited.front() {
            if now_ns.saturating_sub(at) < KEEP_AFTER_EXIT_NS {
                break;
            }
            self.exited.pop_front();
            if self.by_pid.get(&pid).is_some_and(|p| p.generation == generation) {
                if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    self.exited.push_back((now_ns, pid, generation));
                } else {
                    gone.push(pid);
                }
            }
        }
        gone
    }

    pub fn forget(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }
}
