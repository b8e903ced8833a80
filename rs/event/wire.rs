//! Records as bytes: the common header, safe readers of a record's fixed
//! fields and variable data (at the offsets the registry generates and the C
//! header asserts), and the writer the generated encoders use.

use std::net::{Ipv6Addr, SocketAddr};

use super::Comm;

/// Bytes of `struct pt_hdr`.
pub(crate) const HDR_SIZE: usize = 56;
/// Offsets of `struct pt_hdr`'s fields (binding.rs checks them against C).
pub(crate) const OFF_PROC_START: usize = 24;
pub(crate) const OFF_DATA_LEN: usize = 44;
pub(crate) const OFF_REC_SIZE: usize = 48;

/// The fields of `struct pt_hdr` that decoding needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hdr {
    pub kind: u16,
    pub flags: u16,
    pub cpu: u16,
    pub pid: u32,
    pub tid: u32,
    pub ts_ns: u64,
    pub proc_start_ns: u64,
    pub data_len: u32,
    pub rec_size: u32,
}

impl Hdr {
    #[inline]
    pub(crate) fn parse(rec: &[u8]) -> Option<Hdr> {
        let r = Fixed::new(rec, HDR_SIZE)?;
        Some(Hdr {
            kind: r.u16(0),
            flags: r.u16(2),
            cpu: r.u16(4),
            pid: r.u32(8),
            tid: r.u32(12),
            ts_ns: r.u64(16),
            proc_start_ns: r.u64(OFF_PROC_START),
            data_len: r.u32(OFF_DATA_LEN),
            rec_size: r.u32(OFF_REC_SIZE),
        })
    }
}

/// The fixed part of a record, at least `size` bytes long. It reads every
/// integer type a declaration may use, whether a kind uses it today or not.
pub(crate) struct Fixed<'a>(&'a [u8]);

#[allow(dead_code)]
impl<'a> Fixed<'a> {
    #[inline]
    pub(crate) fn new(rec: &'a [u8], size: usize) -> Option<Fixed<'a>> {
        rec.get(..size).map(Fixed)
    }

    /// N bytes at `off`; zeros past the end (cannot happen at the offsets
    /// the generated decoders use, which new() checked).
    #[inline(always)]
    fn bytes<const N: usize>(&self, off: usize) -> [u8; N] {
        self.0.get(off..off + N).and_then(|b| b.try_into().ok()).unwrap_or([0; N])
    }

    #[inline(always)]
    pub(crate) fn u8(&self, off: usize) -> u8 {
        u8::from_ne_bytes(self.bytes(off))
    }

    #[inline(always)]
    pub(crate) fn u16(&self, off: usize) -> u16 {
        u16::from_ne_bytes(self.bytes(off))
    }

    #[inline(always)]
    pub(crate) fn u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.bytes(off))
    }

    #[inline(always)]
    pub(crate) fn u64(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.bytes(off))
    }

    #[inline(always)]
    pub(crate) fn i32(&self, off: usize) -> i32 {
        i32::from_ne_bytes(self.bytes(off))
    }

    #[inline(always)]
    pub(crate) fn i64(&self, off: usize) -> i64 {
        i64::from_ne_bytes(self.bytes(off))
    }

    #[inline(always)]
    pub(crate) fn comm(&self, off: usize) -> Comm {
        Comm::from_raw(self.bytes(off))
    }

    /// struct pt_sockaddr: 16 address bytes (network order; IPv4 in the
    /// first 4), the port (host order), the family (4, 6, or 0: none).
    pub(crate) fn sockaddr(&self, off: usize) -> Option<SocketAddr> {
        let addr: [u8; 16] = self.bytes(off);
        let port = self.u16(off + 16);
        match self.u8(off + 18) {
            4 => Some(SocketAddr::from(([addr[0], addr[1], addr[2], addr[3]], port))),
            6 => Some(SocketAddr::from((Ipv6Addr::from(addr), port))),
            _ => None,
        }
    }
}

/// The variable data of a record, taken field by field.
pub(crate) struct Data<'a> {
    rest: &'a [u8],
}

impl<'a> Data<'a> {
    /// The `data_len` bytes after the fixed part of `meta_size` bytes.
    #[inline]
    pub(crate) fn new(rec: &'a [u8], meta_size: usize, data_len: u32) -> Option<Data<'a>> {
        let rest = rec.get(meta_size..)?.get(..data_len as usize)?;
        Some(Data { rest })
    }

    /// The next field, `len` bytes long.
    #[inline]
    pub(crate) fn take(&mut self, len: u32) -> Option<&'a [u8]> {
        let (field, rest) = self.rest.split_at_checked(len as usize)?;
        self.rest = rest;
        Some(field)
    }
}

/// Writes one record as the C loader appends it to a caller buffer: fixed
/// part, variable data, zero padding to 8 bytes (tests and benches).
pub(crate) struct RecordEncoder<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    size: usize,
    data_len: u32,
}

#[allow(dead_code)] // writes every integer type a declaration may use
impl<'a> RecordEncoder<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        out: &'a mut Vec<u8>,
        kind: u16,
        size: usize,
        flags: u16,
        pid: u32,
        tid: u32,
        cpu: u16,
        ts_ns: u64,
        proc_start_ns: u64,
    ) -> RecordEncoder<'a> {
        let start = out.len();
        out.resize(start + size, 0);
        let mut w = RecordEncoder { out, start, size, data_len: 0 };
        w.put(0, &kind.to_ne_bytes());
        w.put(2, &flags.to_ne_bytes());
        w.put(4, &cpu.to_ne_bytes());
        w.put(8, &pid.to_ne_bytes());
        w.put(12, &tid.to_ne_bytes());
        w.put(16, &ts_ns.to_ne_bytes());
        w.put(OFF_PROC_START, &proc_start_ns.to_ne_bytes());
        w
    }

    fn put(&mut self, off: usize, bytes: &[u8]) {
        let at = self.start + off;
        if let Some(dst) = self.out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }

    pub(crate) fn u8(&mut self, off: usize, v: u8) {
        self.put(off, &v.to_ne_bytes());
    }

    pub(crate) fn u16(&mut self, off: usize, v: u16) {
        self.put(off, &v.to_ne_bytes());
    }

    pub(crate) fn u32(&mut self, off: usize, v: u32) {
        self.put(off, &v.to_ne_bytes());
    }

    pub(crate) fn u64(&mut self, off: usize, v: u64) {
        self.put(off, &v.to_ne_bytes());
    }

    pub(crate) fn i32(&mut self, off: usize, v: i32) {
        self.put(off, &v.to_ne_bytes());
    }

    pub(crate) fn i64(&mut self, off: usize, v: i64) {
        self.put(off, &v.to_ne_bytes());
    }

    pub(crate) fn comm(&mut self, off: usize, comm: &Comm) {
        self.put(off, comm.raw());
    }

    pub(crate) fn sockaddr(&mut self, off: usize, addr: Option<SocketAddr>) {
        let (bytes, port, family) = match addr {
            Some(SocketAddr::V4(a)) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.ip().octets());
                (b, a.port(), 4)
            }
            Some(SocketAddr::V6(a)) => (a.ip().octets(), a.port(), 6),
            None => ([0; 16], 0, 0),
        };
        self.put(off, &bytes);
        self.u16(off + 16, port);
        self.u8(off + 18, family);
    }

    /// The next variable field; its length goes at `len_off`.
    pub(crate) fn data(&mut self, len_off: usize, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.u32(len_off, len);
        self.out.extend_from_slice(bytes);
        self.data_len = self.data_len.saturating_add(len);
    }

    pub(crate) fn finish(mut self) {
        let rec_size = (self.size + self.data_len as usize).div_ceil(8) * 8;
        self.u32(OFF_DATA_LEN, self.data_len);
        self.u32(OFF_REC_SIZE, u32::try_from(rec_size).unwrap_or(u32::MAX));
        self.out.resize(self.start + rec_size, 0);
    }
}
