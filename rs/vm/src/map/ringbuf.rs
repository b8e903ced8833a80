//! RINGBUF: a multi-record byte ring laid out as Linux lays it out for
//! `mmap`: a consumer page (`consumer_pos`, u64 at offset 0, the one page a
//! consumer writes), a producer page (`producer_pos`, u64 at offset 0),
//! then the data area of `max_entries` bytes (a power of 2 and a multiple
//! of the page size).
//!
//! Records are 8-byte aligned: an 8-byte header (`len` u32 with the BUSY
//! and DISCARD bits, `pg_off` u32) and the sample. Positions only grow and
//! are masked by `size - 1` into the data area. A reserved record is BUSY
//! until it is submitted or discarded; a consumer stops at the first BUSY
//! record, so records committed after it stay invisible until it is
//! committed too.
//!
//! Two deliberate differences from Linux:
//! - Linux maps the data area twice back to back so a record may wrap past
//!   its end. Here a record is always contiguous: when it would cross the
//!   end, a discarded padding record fills the rest of the data area first
//!   (a stock libbpf consumer skips discarded records) and the record
//!   starts at data offset 0.
//! - `pg_off` is the header's page index counted from the consumer page
//!   (Linux counts from its internal struct, which no consumer reads).
//!
//! Programs may write anywhere in the data area (it is one memory region);
//! the ring keeps its own list of records, so a program that scribbles
//! over headers cannot make [`RingBuf::consume`] read out of bounds. That
//! list grows (amortized) to the most records ever outstanding at once;
//! it is the one allocation a producer may make after creation.

use super::{Map, MapDef};
use crate::consts::ringbuf::{BUSY_BIT, DISCARD_BIT, HDR_SZ};
use crate::retcode::Errno;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The page size of the consumer-visible layout.
pub const PAGE_SIZE: usize = 4096;
/// Where the data area starts in [`RingBuf::pages`].
pub const DATA_OFFSET: usize = 2 * PAGE_SIZE;
/// The largest sample Linux reserves (RINGBUF_MAX_RECORD_SZ).
pub const MAX_RECORD: u64 = (u32::MAX / 4) as u64;

/// `bpf_ringbuf_query` flags.
pub mod query {
    /// Bytes produced and not yet consumed.
    pub const AVAIL_DATA: u64 = 0;
    /// The data area's size.
    pub const RING_SIZE: u64 = 1;
    /// The consumer position.
    pub const CONS_POS: u64 = 2;
    /// The producer position.
    pub const PROD_POS: u64 = 3;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Busy,
    Committed,
    Discarded,
}

/// A record not yet consumed: where it starts, its sample length, its state.
#[derive(Debug, Clone, Copy)]
struct Record {
    pos: u64,
    len: u32,
    state: State,
}

impl Record {
    fn total(&self) -> u64 {
        (self.len as u64 + HDR_SZ as u64).div_ceil(8) * 8
    }
}

/// A ring buffer map.
pub struct RingBuf {
    def: MapDef,
    /// Consumer page, producer page, data area.
    buf: Vec<u8>,
    mask: u64,
    producer: u64,
    consumer: u64,
    records: VecDeque<Record>,
}

impl RingBuf {
    /// An empty ring of `def.max_entries` data bytes (checked by
    /// [`super::create`]).
    pub fn new(def: &MapDef) -> Result<Self, Errno> {
        let size = def.max_entries as usize;
        let buf = super::internal::zeroed(size.checked_add(DATA_OFFSET).ok_or(Errno::E2BIG)?)?;
        Ok(RingBuf { def: def.clone(), buf, mask: size as u64 - 1, producer: 0, consumer: 0, records: VecDeque::new() })
    }

    /// The whole consumer-visible mapping: consumer page, producer page, data.
    pub fn pages(&self) -> &[u8] {
        &self.buf
    }

    /// The consumer page, which an `mmap` consumer writes `consumer_pos` into.
    pub fn consumer_page_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..PAGE_SIZE]
    }

    /// The data area.
    pub fn data(&self) -> &[u8] {
        &self.buf[DATA_OFFSET..]
    }

    /// The data area's size.
    pub fn size(&self) -> u64 {
        self.mask + 1
    }

    /// The producer position.
    pub fn producer_pos(&self) -> u64 {
        self.producer
    }

    /// The consumer position as the consumer page holds it.
    pub fn consumer_pos(&self) -> u64 {
        read_u64(&self.buf[..8])
    }

    /// Adopts a consumer position written into the consumer page, if it is
    /// one (between the last known one and the producer's); records before
    /// it are consumed.
    fn sync_consumer(&mut self) {
        let page = self.consumer_pos();
        if page > self.consumer && page <= self.producer {
            self.consumer = page;
            while self.records.front().is_some_and(|r| r.pos < page) {
                self.records.pop_front();
            }
        }
        self.set_consumer(self.consumer);
    }

    fn set_consumer(&mut self, pos: u64) {
        self.consumer = pos;
        self.buf[..8].copy_from_slice(&pos.to_le_bytes());
    }

    fn set_producer(&mut self, pos: u64) {
        self.producer = pos;
        self.buf[PAGE_SIZE..PAGE_SIZE + 8].copy_from_slice(&pos.to_le_bytes());
    }

    /// Writes the header of `r` as a consumer reads it.
    fn write_header(&mut self, r: &Record) {
        let at = (r.pos & self.mask) as usize;
        let bits = match r.state {
            State::Busy => BUSY_BIT,
            State::Committed => 0,
            State::Discarded => DISCARD_BIT,
        };
        let pg_off = ((DATA_OFFSET + at) / PAGE_SIZE) as u32;
        let hdr = &mut self.buf[DATA_OFFSET + at..DATA_OFFSET + at + 8];
        hdr[..4].copy_from_slice(&(r.len | bits).to_le_bytes());
        hdr[4..].copy_from_slice(&pg_off.to_le_bytes());
    }

    /// Appends a record at the producer position.
    fn push(&mut self, len: u32, state: State) -> Record {
        let r = Record { pos: self.producer, len, state };
        self.write_header(&r);
        self.records.push_back(r);
        self.set_producer(self.producer + r.total());
        r
    }

    /// Reserves a `size`-byte sample: its offset in the data area (after
    /// its header), or `None` when the ring has no room (Linux's rule: the
    /// producer may not get `size` or more bytes ahead of the consumer).
    pub fn reserve(&mut self, size: u64) -> Option<u32> {
        if size > MAX_RECORD {
            return None;
        }
        self.sync_consumer();
        let total = (size + HDR_SZ as u64).div_ceil(8) * 8;
        let at = self.producer & self.mask;
        let pad = if at + total > self.size() { self.size() - at } else { 0 };
        if total > self.size() || self.producer + pad + total - self.consumer > self.mask {
            return None;
        }
        if pad > 0 {
            self.push((pad - HDR_SZ as u64) as u32, State::Discarded);
        }
        let r = self.push(size as u32, State::Busy);
        Some((r.pos & self.mask) as u32 + HDR_SZ)
    }

    /// Submits (or discards) the record whose sample is at `offset`;
    /// EINVAL when no reserved record is there.
    pub fn commit(&mut self, offset: u32, discard: bool) -> Result<(), Errno> {
        let hdr = offset.checked_sub(HDR_SZ).ok_or(Errno::EINVAL)? as u64;
        let mask = self.mask;
        let r = self
            .records
            .iter_mut()
            .rev()
            .find(|r| r.state == State::Busy && r.pos & mask == hdr)
            .ok_or(Errno::EINVAL)?;
        r.state = if discard { State::Discarded } else { State::Committed };
        let r = *r;
        self.write_header(&r);
        Ok(())
    }

    /// Reads committed records in order like libbpf's
    /// `ring_buffer__consume`: calls `f` with each submitted sample, skips
    /// discarded ones, stops at the first busy one, and advances
    /// `consumer_pos` past what it read. Returns the samples passed to `f`.
    pub fn consume(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        self.sync_consumer();
        let mut seen = 0;
        while let Some(r) = self.records.front().copied() {
            if r.state == State::Busy {
                break;
            }
            if r.state == State::Committed {
                let at = DATA_OFFSET + (r.pos & self.mask) as usize + HDR_SZ as usize;
                f(&self.buf[at..at + r.len as usize]);
                seen += 1;
            }
            self.records.pop_front();
            self.set_consumer(r.pos + r.total());
        }
        seen
    }

    /// `bpf_ringbuf_query`: one of [`query`]'s values (0 for an unknown flag).
    pub fn query(&self, flag: u64) -> u64 {
        match flag {
            query::AVAIL_DATA => self.producer - self.consumer,
            query::RING_SIZE => self.size(),
            query::CONS_POS => self.consumer,
            query::PROD_POS => self.producer,
            _ => 0,
        }
    }
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

impl Map for RingBuf {
    fn def(&self) -> &MapDef {
        &self.def
    }
    fn lookup(&mut self, _key: &[u8], _cpu: u32) -> Option<u32> {
        None
    }
    fn update(&mut self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: u32) -> Result<(), Errno> {
        Err(Errno::ENOTSUPP)
    }
    fn delete(&mut self, _key: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENOTSUPP)
    }
    fn syscall_value_size(&self) -> usize {
        0
    }
    fn lookup_copy(&self, _key: &[u8], _out: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::ENOTSUPP)
    }
    fn update_copy(&mut self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), Errno> {
        Err(Errno::ENOTSUPP)
    }
    fn get_next_key(&self, _key: Option<&[u8]>, _next: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::ENOTSUPP)
    }
    fn values(&self) -> &[u8] {
        self.data()
    }
    fn values_mut(&mut self) -> &mut [u8] {
        &mut self.buf[DATA_OFFSET..]
    }
    fn slot_size(&self) -> u32 {
        0
    }
    fn ringbuf_reserve(&mut self, size: u64) -> Option<u32> {
        self.reserve(size)
    }
    fn ringbuf_commit(&mut self, offset: u32, discard: bool) -> Result<(), Errno> {
        self.commit(offset, discard)
    }
    fn ringbuf_output(&mut self, data: &[u8]) -> Result<(), Errno> {
        let at = self.reserve(data.len() as u64).ok_or(Errno::EAGAIN)? as usize;
        self.buf[DATA_OFFSET + at..DATA_OFFSET + at + data.len()].copy_from_slice(data);
        self.commit(at as u32, false)
    }
    fn ringbuf_query(&self, flag: u64) -> u64 {
        self.query(flag)
    }
    fn as_ringbuf_mut(&mut self) -> Option<&mut RingBuf> {
        Some(self)
    }
}
