//! The JSON of process identity: the fields a dumper adds to an event
//! (`exec_id`, `parent_exec_id`, and Tetragon-style `parent` and
//! `ancestors` objects).

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use super::{Process, ProcessKey, ProcessTable};
use crate::event::{ByteStr, Event};

/// A process as JSON: `{"exec_id", "pid", "ppid", "parent_exec_id",
/// "comm", "filename", "argv", "origin", "exited"}`, bytes as the events
/// give them (a string, or `{"hex": ...}` when not UTF-8).
pub struct ProcessJson<'a> {
    table: &'a ProcessTable,
    process: &'a Process,
}

impl Serialize for ProcessJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.process;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("exec_id", &self.table.exec_id(p.key))?;
        m.serialize_entry("pid", &p.key.pid)?;
        m.serialize_entry("ppid", &p.ppid)?;
        m.serialize_entry("parent_exec_id", &p.parent.map(|k| self.table.exec_id(k)))?;
        m.serialize_entry("comm", &ByteStr(&p.comm))?;
        m.serialize_entry("filename", &ByteStr(&p.filename))?;
        m.serialize_entry("argv", &ArgvJson(&p.argv))?;
        m.serialize_entry("origin", &p.origin)?;
        m.serialize_entry("exited", &p.exited)?;
        m.end()
    }
}

struct ArgvJson<'a>(&'a [Vec<u8>]);

impl Serialize for ArgvJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for arg in self.0 {
            seq.serialize_element(&ByteStr(arg))?;
        }
        seq.end()
    }
}

/// The identity fields of one event's process, to add to its JSON object.
/// `parent_exec_id` is null when the table does not know the parent.
pub struct EventIdentity<'a> {
    table: &'a ProcessTable,
    key: ProcessKey,
    ancestry: bool,
}

impl EventIdentity<'_> {
    /// The process' exec_id.
    pub fn exec_id(&self) -> String {
        self.table.exec_id(self.key)
    }

    /// Its parent's, when the table knows the parent.
    pub fn parent_exec_id(&self) -> Option<String> {
        self.table.parent_key(self.key).map(|k| self.table.exec_id(k))
    }
}

impl Serialize for EventIdentity<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.table;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("exec_id", &self.exec_id())?;
        m.serialize_entry("parent_exec_id", &self.parent_exec_id())?;
        if self.ancestry {
            let mut ancestors = t.ancestors(self.key).into_iter().map(|process| ProcessJson { table: t, process });
            m.serialize_entry("parent", &ancestors.next())?;
            m.serialize_entry("ancestors", &ancestors.collect::<Vec<_>>())?;
        }
        m.end()
    }
}

impl ProcessTable {
    /// A process as JSON.
    pub fn json<'a>(&'a self, process: &'a Process) -> ProcessJson<'a> {
        ProcessJson { table: self, process }
    }

    /// The identity of the event's process as JSON fields, after learning
    /// from the event ([`observe`](Self::observe)) and reading /proc for a
    /// process the table lacks ([`resolve`](Self::resolve)). With `ancestry`,
    /// also its `parent` (null when unknown) and `ancestors` (beyond the
    /// parent, as far as the table knows them). None for an event without a
    /// process key.
    pub fn identify<B: AsRef<[u8]>>(&mut self, event: &Event<B>, ancestry: bool) -> Option<EventIdentity<'_>> {
        self.observe(event);
        let key = event.process_key()?;
        self.resolve(key);
        if ancestry {
            let mut at = key;
            // Ancestors that exited before the seed cannot be read; living
            // ones the table missed can.
            for _ in 0..16 {
                match self.parent_key(at) {
                    Some(parent) if self.resolve(parent).is_some() => at = parent,
                    _ => break,
                }
            }
        }
        Some(EventIdentity { table: self, key, ancestry })
    }
}
