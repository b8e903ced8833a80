//! Typed events.
//!
//! Every kind is declared once in c/events; the build generates its struct
//! here (and the C side's), so the kinds below come from those declarations:
//! [`Exec`], [`Exit`], [`StackSample`], [`Trigger`], [`Lost`], [`Synthetic`].
//!
//! [`Event<B>`] is generic over its byte storage: iterating a
//! [`Batch`](crate::Batch) yields `Event<&[u8]>` views that borrow the
//! batch's buffer (no heap allocation per event); [`Event::to_owned_event`]
//! turns one into an `Event<Vec<u8>>` that outlives the batch.
//!
//! Both serialize (serde) to the JSON objects the dumpers print; the C
//! library's `proctap_format_json` prints the same bytes. Byte strings
//! (comm, filename, argv elements) serialize as a string when they are valid
//! UTF-8, and as `{"hex": "..."}` (every byte as two lowercase hex digits)
//! otherwise, so nothing is lost and every JSON parser reads the output.

mod bytes;
mod kinds;
mod stack;
mod synthetic;
mod time;
pub(crate) mod wire;

pub(crate) use bytes::ByteStr;
pub use bytes::{Args, Argv, Comm};
pub use kinds::*;
pub(crate) use kinds::{decode, KINDS, KIND_COUNTERS_MAX, KNOBS};
pub use stack::{BuildId, Errno, KernelStack, UserFrame, UserStack};
pub use time::WallTime;

use wire::Hdr;

impl<B: AsRef<[u8]>> Event<B> {
    /// The key of the event's process ([`crate::process`]): its pid and
    /// start, for kinds that carry the start. None for the others, and for a
    /// record whose start is unknown.
    pub fn process_key(&self) -> Option<crate::process::ProcessKey> {
        let start = self.proc_start_ns().filter(|&ns| ns != 0)?;
        Some(crate::process::ProcessKey::from_boot_ns(self.pid(), start))
    }
}

/// Iterator over the events in a run of records (a batch's bytes).
///
/// Records of kinds this version does not know, and records that do not
/// decode as their kind (a value outside a declared enum, lengths past the
/// record), are skipped; a record whose size does not fit the remaining
/// bytes ends the iteration. The loader validates records before it
/// delivers them, so neither happens to a batch from a tracer.
#[derive(Clone, Debug)]
pub struct Events<'a> {
    rest: &'a [u8],
    realtime_offset_ns: i64,
}

impl<'a> Events<'a> {
    /// Decodes records as the C loader writes them into caller buffers.
    pub fn new(records: &'a [u8], realtime_offset_ns: i64) -> Events<'a> {
        Events { rest: records, realtime_offset_ns }
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Event<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let hdr = Hdr::parse(self.rest)?;
            let size = hdr.rec_size as usize;
            if size < wire::HDR_SIZE || size > self.rest.len() {
                self.rest = &[];
                return None;
            }
            let (record, rest) = self.rest.split_at(size);
            self.rest = rest;
            if let Some(event) = decode(&hdr, record, self.realtime_offset_ns) {
                return Some(event);
            }
        }
    }
}

/// Record encoding for tests and benchmarks: the bytes the C loader appends
/// to caller buffers (public as `proctap::testing`).
pub(crate) mod testing {
    use super::Event;

    /// Appends records to an 8-byte aligned run of bytes.
    #[derive(Default)]
    pub struct RecordWriter {
        bytes: Vec<u8>,
        records: usize,
    }

    impl RecordWriter {
        pub fn new() -> RecordWriter {
            RecordWriter::default()
        }

        /// The record of an event, as the loader would append it.
        pub fn push(&mut self, event: &Event) -> &mut Self {
            event.encode(&mut self.bytes);
            self.records += 1;
            self
        }

        /// A record of a kind this version does not know, `len` bytes long.
        pub fn unknown(&mut self, kind: u16, len: usize) -> &mut Self {
            let size = len.max(super::wire::HDR_SIZE).div_ceil(8) * 8;
            let start = self.bytes.len();
            self.bytes.resize(start + size, 0xab);
            self.bytes[start..start + 2].copy_from_slice(&kind.to_ne_bytes());
            let (data_len, rec_size) = (start + super::wire::OFF_DATA_LEN, start + super::wire::OFF_REC_SIZE);
            self.bytes[data_len..data_len + 4].copy_from_slice(&0u32.to_ne_bytes());
            self.bytes[rec_size..rec_size + 4].copy_from_slice(&(size as u32).to_ne_bytes());
            self.records += 1;
            self
        }

        pub fn bytes(&self) -> &[u8] {
            &self.bytes
        }

        pub fn records(&self) -> usize {
            self.records
        }

        pub fn clear(&mut self) {
            self.bytes.clear();
            self.records = 0;
        }
    }
}
