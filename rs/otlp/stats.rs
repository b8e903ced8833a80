//! What became of the records given to an exporter.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// An exporter's counts; every record given to
/// [`Exporter::try_send`](super::Exporter::try_send) ends up in exactly one
/// of `sent_records`, `dropped_overflow`, `rejected`,
/// `dropped_at_shutdown`, or is still `queued`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportStats {
    /// Records accepted into the queue.
    pub enqueued: u64,
    /// Records the receiver accepted (a 2xx answer, less those its
    /// partial-success answer said it rejected).
    pub sent_records: u64,
    /// Records not queued because the queue was full.
    pub dropped_overflow: u64,
    /// Records the receiver refused for good (a 4xx other than 429, any
    /// other status not worth retrying, or its partial-success count).
    pub rejected: u64,
    /// Records still queued when the last attempt at shutdown ran out of
    /// time.
    pub dropped_at_shutdown: u64,
    /// Records accepted but not yet delivered or dropped.
    pub queued: u64,
    /// Requests sent (retries included).
    pub requests: u64,
    /// Requests that failed in a way worth retrying (connection errors,
    /// timeouts, 429, 502, 503, 504) and were tried again.
    pub retries: u64,
    /// The last failure or receiver warning, as text.
    pub last_error: Option<String>,
}

/// The live counts, shared by the enqueue side and the sender thread.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) enqueued: AtomicU64,
    pub(crate) sent_records: AtomicU64,
    pub(crate) dropped_overflow: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) dropped_at_shutdown: AtomicU64,
    /// Accepted, not yet settled: what the queue bound applies to (the
    /// batch in flight included).
    pub(crate) queued: AtomicUsize,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    /// Takes a place in the queue, unless all `capacity` are taken.
    pub(crate) fn reserve(&self, capacity: usize) -> bool {
        let taken = self.queued.fetch_add(1, Ordering::AcqRel);
        if taken >= capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.dropped_overflow.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.enqueued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// `records` left the queue, counted in `outcome`.
    pub(crate) fn settle(&self, outcome: &AtomicU64, records: usize) {
        outcome.fetch_add(records as u64, Ordering::Relaxed);
        self.queued.fetch_sub(records, Ordering::AcqRel);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, message: String) {
        *self.last_error.lock() = Some(message);
    }

    pub(crate) fn snapshot(&self) -> ExportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExportStats {
            enqueued: get(&self.enqueued),
            sent_records: get(&self.sent_records),
            dropped_overflow: get(&self.dropped_overflow),
            rejected: get(&self.rejected),
            dropped_at_shutdown: get(&self.dropped_at_shutdown),
            queued: self.queued.load(Ordering::Acquire) as u64,
            requests: get(&self.requests),
            retries: get(&self.retries),
            last_error: self.last_error.lock().clone(),
        }
    }
}
