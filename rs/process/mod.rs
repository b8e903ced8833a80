//! Process identity and ancestry: a key for each process that pid reuse
//! cannot confuse, the host-unique `exec_id` strings made from it, and a
//! table of the processes a tracer has seen, with their parents.
//!
//! ```no_run
//! use proctap::process::ProcessTable;
//! use proctap::{Config, EventKind, Tracer};
//!
//! let mut table = ProcessTable::from_procfs()?;
//! let tracer = Tracer::start(&Config::new().event(EventKind::Fork, true))?;
//! for batch in tracer.events().iter().take(10) {
//!     for event in &batch {
//!         table.observe(&event);
//!         if let Some(key) = event.process_key() {
//!             let parent = table.parent_of(key).map(|p| table.exec_id(p.key));
//!             println!("{} {} parent {:?}", event.kind().name(), table.exec_id(key), parent);
//!         }
//!     }
//! }
//! # Ok::<(), proctap::Error>(())
//! ```
//!
//! Every process-scoped event carries its process' start
//! ([`Event::proc_start_ns`](crate::Event::proc_start_ns), the group
//! leader's `task->start_boottime`), and
//! [`Event::process_key`](crate::Event::process_key) makes the
//! [`ProcessKey`] of it: the pid and that start in clock ticks, which is
//! what `/proc/PID/stat` shows for a process that started before the
//! tracer. The same process therefore gets the same key, and the same
//! `exec_id`, whether the kernel or /proc named it, and from one tracer run
//! to the next. Two processes share a key only if a pid is handed out twice
//! within one tick (10 ms), which takes pid_max forks in that time.
//!
//! The key of an event's process needs no table. Its parent, and the
//! parent's name and argv, do: [`ProcessTable`] is seeded from /proc and
//! fed the exec, fork and exit events ([`ProcessTable::observe`]). With
//! fork events off, a process that forked without an exec is read from
//! /proc the first time one of its events asks for it
//! ([`ProcessTable::resolve`]).

mod json;
mod procfs;
mod table;

use std::fmt;

use serde::Serialize;

pub use json::{EventIdentity, ProcessJson};
pub use table::{ProcessTable, TableStats};

/// Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux
/// architecture, as `getconf CLK_TCK` shows).
pub const TICKS_PER_SEC: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / TICKS_PER_SEC;

/// A process: its pid and its start, in clock ticks since boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    pub pid: u32,
    /// CLOCK_BOOTTIME start in clock ticks: /proc/PID/stat's starttime.
    pub start_ticks: u64,
}

impl ProcessKey {
    /// The key of the process `pid` that started at `start_ns`
    /// (CLOCK_BOOTTIME nanoseconds, as events carry it).
    pub fn from_boot_ns(pid: u32, start_ns: u64) -> ProcessKey {
        ProcessKey { pid, start_ticks: start_ns / NS_PER_TICK }
    }
}

/// This boot's id (/proc/sys/kernel/random/boot_id): what makes an
/// `exec_id` unique across the host's reboots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootId(String);

impl BootId {
    /// Reads it from /proc.
    pub fn read() -> Result<BootId, crate::Error> {
        let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map_err(|e| {
            crate::Error::invalid("process", format!("reading /proc/sys/kernel/random/boot_id: {e}; is /proc mounted?"))
        })?;
        BootId::new(text.trim())
    }

    /// A boot id given as text (a UUID: hex digits and dashes).
    pub fn new(id: &str) -> Result<BootId, crate::Error> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(crate::Error::invalid("process", format!("boot id {id:?} is not a UUID")));
        }
        Ok(BootId(id.to_ascii_lowercase()))
    }

    /// The `exec_id` of a process: `BOOT_ID:START_TICKS:PID`, unique on this
    /// host for as long as it keeps its boot ids.
    pub fn exec_id(&self, key: ProcessKey) -> String {
        format!("{}:{}:{}", self.0, key.start_ticks, key.pid)
    }
}

impl fmt::Display for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the table learned of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Read from /proc when the table was seeded, or when an event asked.
    Procfs,
    /// Its fork event.
    Fork,
    /// Its exec event (without a fork event before it).
    Exec,
}

/// What the table knows of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub key: ProcessKey,
    pub ppid: u32,
    /// The parent's key, when its start is known.
    pub parent: Option<ProcessKey>,
    /// The command name, at most 15 bytes.
    pub comm: Vec<u8>,
    /// The program: the path exec was given, or /proc/PID/exe's target.
    pub filename: Vec<u8>,
    /// The arguments (the first is the program's own name).
    pub argv: Vec<Vec<u8>>,
    pub origin: Origin,
    /// Its exit event came (it is kept a while for events read after it).
    pub exited: bool,
}
