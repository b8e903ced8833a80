//! Counters of everything produced, delivered and lost, per kind (the kinds
//! and their own counters come from the registry) and for the loader.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::binding::sys;
use crate::event::{EventKind, KINDS, KIND_COUNTERS_MAX as KIND_COUNTERS};

/// Counters of one kind. Every event the kernel saw ends in exactly one of:
/// delivered, meta_lost (not even its metadata fit), or the loader's
/// in-flight counters at stop (abandoned, undelivered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindStats {
    /// Records the kernel submitted.
    pub emitted: u64,
    /// Records appended to a batch.
    pub delivered: u64,
    /// Metadata ring full: the event is lost entirely (reserve failure).
    /// For the kinds the loader makes (mapping, capture): records the
    /// perf side band could not hold, or that no batch took (at stop).
    pub meta_lost: u64,
    /// Data pages full: the record was delivered without its variable data.
    pub data_lost: u64,
    /// Bytes of variable data written into the data pages.
    pub data_bytes: u64,
    counters: [u64; KIND_COUNTERS],
    kind: EventKind,
}

impl KindStats {
    /// The kind's own counter `name` (as its declaration names it), or None
    /// when the kind has no such counter.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.kind.counters().iter().position(|(n, _)| *n == name).map(|i| self.counters[i])
    }

    /// The kind's own counters, by name.
    pub fn counters(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.kind.counters().iter().zip(self.counters).map(|((name, _), v)| (*name, v))
    }

    fn is_zero(&self) -> bool {
        self.emitted == 0 && self.delivered == 0 && self.meta_lost == 0 && self.counters == [0; KIND_COUNTERS]
    }

    fn from_raw(raw: &sys::proctap_stats, kind: EventKind) -> KindStats {
        let k = usize::from(kind.id());
        let mut counters = [0; KIND_COUNTERS];
        for (slot, (_, index)) in counters.iter_mut().zip(kind.counters()) {
            *slot = raw.counters.get(*index).copied().unwrap_or(0);
        }
        KindStats {
            emitted: raw.emitted[k],
            delivered: raw.delivered[k],
            meta_lost: raw.meta_lost[k],
            data_lost: raw.data_lost[k],
            data_bytes: raw.data_bytes[k],
            counters,
            kind,
        }
    }
}

impl Serialize for KindStats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("emitted", &self.emitted)?;
        m.serialize_entry("delivered", &self.delivered)?;
        m.serialize_entry("meta_lost", &self.meta_lost)?;
        m.serialize_entry("data_lost", &self.data_lost)?;
        m.serialize_entry("data_bytes", &self.data_bytes)?;
        for (name, v) in self.counters() {
            m.serialize_entry(name, &v)?;
        }
        m.end()
    }
}

/// Snapshot of a tracer's counters, summed over CPUs: per kind
/// ([`Stats::kind`], or `stats.exec()` and the like), and the loader's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    kinds: [KindStats; KINDS],
    /// Records that failed validation and were skipped (a bug if nonzero).
    pub invalid: u64,
    /// Records larger than a batch buffer (impossible with a valid config).
    pub oversize: u64,
    /// Records read at stop with no free buffer left to put them in.
    pub abandoned: u64,
    /// Data spans the consumer could not release (a bug if nonzero).
    pub ring_stalls: u64,
    /// Events in batches sent after every receiver was dropped, or that a
    /// panicking handler was given.
    pub undelivered: u64,
    /// Batches handed over.
    pub batches: u64,
    /// Poll rounds.
    pub wakeups: u64,
    /// Times the poll thread went to sleep (it sleeps only when the
    /// metadata ring is empty).
    pub sleeps: u64,
    /// Wake-ups the kernel sent to the sleeping poll thread.
    pub doorbells: u64,
    /// Doorbells that found the ring full (picked up by the next record, or
    /// within the poll thread's bounded sleep: 1 s, 100 ms when profiling).
    pub doorbell_lost: u64,
    /// Sampling timers attached (one per online CPU when profiling).
    pub perf_events: u64,
    /// Records whose data arrived ahead of an earlier record's on the same
    /// CPU: one program ran nested inside another (a sample taken while a
    /// tracepoint program ran). Each was released in order; this only counts.
    pub nested: u64,
    /// Runs of proctap's programs the kernel skipped, summed over programs
    /// (their `recursion_misses`): a program nested in another, or, where
    /// tracepoints are preemptible (Linux 7.x), a task preempted inside a
    /// BTF-tracepoint or fentry program, which makes the kernel skip that
    /// program for other tasks on its CPU meanwhile. A skipped run of a
    /// traced process loses its event; not counted in [`Stats::lost`],
    /// which counts events, as a run of a filtered-out process loses none.
    pub missed_runs: u64,
}

impl Stats {
    /// The counters of one kind.
    pub fn kind(&self, kind: EventKind) -> &KindStats {
        &self.kinds[kind.index()]
    }

    /// Every kind's counters, in id order.
    pub fn kinds(&self) -> impl Iterator<Item = (EventKind, &KindStats)> {
        EventKind::ALL.into_iter().zip(self.kinds.iter())
    }

    /// Events delivered to the consumer (loss reports not counted).
    pub fn events(&self) -> u64 {
        self.kinds().filter(|(k, _)| k.is_traced()).map(|(_, s)| s.delivered).sum()
    }

    /// Events delivered without their variable data.
    pub fn dropped_data(&self) -> u64 {
        self.kinds.iter().map(|k| k.data_lost).sum()
    }

    /// Events lost because the metadata ring was full.
    pub fn reserve_failures(&self) -> u64 {
        self.kinds.iter().map(|k| k.meta_lost).sum()
    }

    /// Events the kernel saw that no consumer got: lost in the kernel, failed
    /// validation, too large, abandoned at stop, or undelivered.
    pub fn lost(&self) -> u64 {
        self.reserve_failures() + self.invalid + self.oversize + self.abandoned + self.undelivered
    }

    pub(crate) fn from_raw(raw: &sys::proctap_stats, undelivered: u64) -> Stats {
        Stats {
            kinds: EventKind::ALL.map(|k| KindStats::from_raw(raw, k)),
            invalid: raw.invalid,
            oversize: raw.oversize,
            abandoned: raw.abandoned,
            ring_stalls: raw.ring_stalls,
            undelivered,
            batches: raw.handovers,
            wakeups: raw.wakeups,
            sleeps: raw.sleeps,
            doorbells: raw.doorbells,
            doorbell_lost: raw.doorbell_lost,
            perf_events: raw.perf_events,
            nested: raw.nested,
            missed_runs: raw.missed_runs,
        }
    }
}

/// Kinds that saw nothing are left out.
impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (kind, stats) in self.kinds().filter(|(_, s)| !s.is_zero()) {
            m.serialize_entry(kind.name(), stats)?;
        }
        let loader = [
            ("invalid", self.invalid),
            ("oversize", self.oversize),
            ("abandoned", self.abandoned),
            ("ring_stalls", self.ring_stalls),
            ("undelivered", self.undelivered),
            ("batches", self.batches),
            ("wakeups", self.wakeups),
            ("sleeps", self.sleeps),
            ("doorbells", self.doorbells),
            ("doorbell_lost", self.doorbell_lost),
            ("perf_events", self.perf_events),
            ("nested", self.nested),
            ("missed_runs", self.missed_runs),
        ];
        for (name, v) in loader {
            m.serialize_entry(name, &v)?;
        }
        m.end()
    }
}
