//! The FFI boundary, and the only `unsafe` in the crate.
//!
//! * [`sys`]: types and functions bindgen generated from `c/proctap.h`.
//! * [`Instance`]: one opened, attached C instance (`struct proctap`).
//! * [`Buffer`]: a reusable, 8-byte aligned caller buffer the C loader fills.
//! * [`run`]: the poll loop; the C side calls [`swap`] to hand a filled
//!   buffer over and take an empty one from the pool.
//! * [`max_record`], [`format_json`]: the C side's view of the registry.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use crate::error::Error;

// Links libbpf-sys' static libbpf.a, which libproctap.a calls into; rustc
// would otherwise leave the unreferenced crate out of the link.
use libbpf_sys as _;

#[allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code)]
#[allow(clippy::all)]
pub(crate) mod sys {
    include!(concat!(env!("OUT_DIR"), "/proctap_sys.rs"));
}

/// The bytes of a word slice (words keep records 8-byte aligned).
pub(crate) fn word_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u8 has no alignment requirement and any u64 is valid as bytes;
    // the length covers exactly the same memory.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, std::mem::size_of_val(words)) }
}

/// A caller buffer: the C-visible descriptor plus its storage.
pub(crate) struct Buffer {
    raw: sys::proctap_buf,
    storage: Box<[u64]>,
}

// SAFETY: raw.data points into `storage`, which the Buffer owns; raw.owner is
// only set while the C side holds the buffer. Moving a Buffer between threads
// moves that ownership with it.
unsafe impl Send for Buffer {}

impl Buffer {
    pub(crate) fn new(bytes: usize) -> Box<Buffer> {
        let storage = vec![0u64; bytes.div_ceil(8)].into_boxed_slice();
        let raw = sys::proctap_buf {
            data: ptr::null_mut(), // set when lent to C (see swap)
            cap: u32::try_from(storage.len() * 8).unwrap_or(!7),
            kind: sys::PROCTAP_BUF_MIXED,
            ..Default::default()
        };
        Box::new(Buffer { raw, storage })
    }

    /// The filled bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        let len = (self.raw.len as usize).min(self.storage.len() * 8);
        &word_bytes(&self.storage)[..len]
    }

    pub(crate) fn records(&self) -> u32 {
        self.raw.records
    }

    pub(crate) fn realtime_offset_ns(&self) -> i64 {
        self.raw.realtime_offset_ns
    }

    pub(crate) fn set_kind(&mut self, kind: u32) {
        self.raw.kind = kind;
    }

    /// The kind of every record in it (per-kind batches), or None.
    pub(crate) fn kind(&self) -> Option<u32> {
        (self.raw.kind != sys::PROCTAP_BUF_MIXED).then_some(self.raw.kind)
    }

    /// Fills the buffer as the C loader would (tests and benches).
    pub(crate) fn fill_from(&mut self, records: &[u8], count: u32) {
        let words = &mut self.storage[..records.len().div_ceil(8)];
        // SAFETY: u8 has no alignment requirement and every byte pattern is
        // a valid u64; the slice covers exactly the borrowed words.
        let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, records.len()) };
        bytes.copy_from_slice(records);
        self.raw.len = records.len() as u32;
        self.raw.records = count;
        self.raw.kind = sys::PROCTAP_BUF_MIXED;
    }
}

/// What the poll loop does with buffers; implemented by the tracer.
pub(crate) trait Exchange {
    /// Takes a filled buffer (records > 0 or not).
    fn filled(&self, buf: Box<Buffer>);
    /// An empty buffer to fill next, or None to stop the loop.
    fn next_empty(&self) -> Option<Box<Buffer>>;
}

/// One C instance. Open, attached; closed (everything detached) on drop.
pub(crate) struct Instance {
    raw: NonNull<sys::proctap>,
}

// SAFETY: proctap_stop and proctap_stats are documented thread-safe in
// proctap.h; proctap_run is called from one thread at a time (Tracer owns the
// only poll thread) and proctap_close only from Drop, after that thread ended.
unsafe impl Send for Instance {}
// SAFETY: see Send; the shared-reference methods are stop and stats only.
unsafe impl Sync for Instance {}

impl Instance {
    pub(crate) fn open(config: &sys::proctap_config) -> Result<Instance, Error> {
        let mut err = sys::proctap_error::default();
        // SAFETY: both pointers are valid for the call; the C side copies the
        // config and fills err.
        let raw = unsafe { sys::proctap_open(config, &mut err) };
        NonNull::new(raw).map(|raw| Instance { raw }).ok_or_else(|| Error::from_c(&err))
    }

    /// Runs the poll loop until [`Instance::stop`] or until `exchange`
    /// returns no empty buffer.
    pub(crate) fn run(&self, exchange: &dyn Exchange) -> Result<(), Error> {
        let mut ctx: &dyn Exchange = exchange;
        // SAFETY: ctx outlives the call (it is on this frame) and swap only
        // uses it during the call; self.raw is open.
        let rc = unsafe { sys::proctap_run(self.raw.as_ptr(), Some(swap), &mut ctx as *mut _ as *mut c_void) };
        if rc < 0 {
            return Err(Error::System { errno: -rc, message: "polling the metadata ring".into() });
        }
        Ok(())
    }

    pub(crate) fn stop(&self) {
        // SAFETY: async-signal-safe and thread-safe by contract; raw is open.
        unsafe { sys::proctap_stop(self.raw.as_ptr()) }
    }

    pub(crate) fn stats(&self) -> sys::proctap_stats {
        let mut out = sys::proctap_stats::default();
        // SAFETY: raw is open; out is a valid destination.
        unsafe { sys::proctap_stats(self.raw.as_ptr(), &mut out) };
        out
    }

    /// Stops copying a connection's bytes; Err(errno) as proctap_net_give_up says.
    pub(crate) fn net_give_up(&self, conn_id: u64) -> Result<(), i32> {
        // SAFETY: raw is open; the call only updates a BPF map by fd and
        // bumps a counter in the object's mapped .bss.
        errno_result(unsafe { sys::proctap_net_give_up(self.raw.as_ptr(), conn_id) })
    }

    /// Adds a profiler target; Err(errno) as proctap_target_add says.
    pub(crate) fn target_add(&self, pid: u32) -> Result<(), i32> {
        // SAFETY: raw is open; the call only updates a BPF map by fd.
        errno_result(unsafe { sys::proctap_target_add(self.raw.as_ptr(), pid) })
    }

    pub(crate) fn target_remove(&self, pid: u32) -> Result<(), i32> {
        // SAFETY: raw is open; the call only updates a BPF map by fd.
        errno_result(unsafe { sys::proctap_target_remove(self.raw.as_ptr(), pid) })
    }

    /// Queues a capture record (as `Event::encode` writes it) for the
    /// stream; Err(errno) as proctap_capture_mark says.
    pub(crate) fn capture_mark(&self, record: &[u8]) -> Result<(), i32> {
        // SAFETY: raw is open; record is valid for record.len() bytes, which
        // the loader copies under its own lock before returning.
        errno_result(unsafe { sys::proctap_capture_mark(self.raw.as_ptr(), record.as_ptr().cast(), record.len()) })
    }

    pub(crate) fn targets(&self) -> Result<Vec<u32>, i32> {
        let mut pids = vec![0u32; 1024];
        loop {
            // SAFETY: raw is open; pids has room for pids.len() entries.
            let n = unsafe { sys::proctap_targets(self.raw.as_ptr(), pids.as_mut_ptr(), pids.len() as c_int) };
            let n = usize::try_from(n).map_err(|_| -n)?;
            if n <= pids.len() {
                pids.truncate(n);
                return Ok(pids);
            }
            pids.resize(n + 64, 0); // grew while listed: list again
        }
    }

    pub(crate) fn watch_add(&self, prefix: &[u8]) -> Result<(), i32> {
        // SAFETY: raw is open; prefix is valid for prefix.len() bytes.
        errno_result(unsafe { sys::proctap_watch_add(self.raw.as_ptr(), prefix.as_ptr().cast(), prefix.len() as u32) })
    }

    pub(crate) fn watch_remove(&self, prefix: &[u8]) -> Result<(), i32> {
        // SAFETY: raw is open; prefix is valid for prefix.len() bytes.
        errno_result(unsafe {
            sys::proctap_watch_remove(self.raw.as_ptr(), prefix.as_ptr().cast(), prefix.len() as u32)
        })
    }

    pub(crate) fn prog_ids(&self) -> Vec<u32> {
        let mut ids = [0u32; 32];
        // SAFETY: ids has room for the 32 entries we allow.
        let n = unsafe { sys::proctap_prog_ids(self.raw.as_ptr(), ids.as_mut_ptr(), ids.len() as c_int) };
        ids[..n.clamp(0, 32) as usize].to_vec()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: raw came from proctap_open and is closed exactly once; the
        // poll thread that used it has ended (Tracer joins it first).
        unsafe { sys::proctap_close(self.raw.as_ptr()) }
    }
}

/// 0 or a negative errno, as the C API returns them.
fn errno_result(rc: c_int) -> Result<(), i32> {
    if rc < 0 {
        Err(-rc)
    } else {
        Ok(())
    }
}

/// CLOCK_MONOTONIC now in nanoseconds: the clock of every event's `ts_ns`,
/// so `monotonic_ns() - event.ts_ns()` is the event's age.
pub fn monotonic_ns() -> u64 {
    // SAFETY: proctap_monotonic_ns takes no arguments and only reads a clock.
    unsafe { sys::proctap_monotonic_ns() }
}

/// Validates a config in C, the one place the rules live.
pub(crate) fn config_check(config: &sys::proctap_config) -> Result<(), Error> {
    let mut err = sys::proctap_error::default();
    // SAFETY: both pointers are valid for the call.
    match unsafe { sys::proctap_config_check(config, &mut err) } {
        0 => Ok(()),
        _ => Err(Error::from_c(&err)),
    }
}

/// Bytes of the largest record the config lets the loader append (0 when
/// the config is invalid).
pub(crate) fn max_record(config: &sys::proctap_config) -> u64 {
    // SAFETY: config is a valid proctap_config for the call, which only reads it.
    unsafe { sys::proctap_max_record(config) }
}

/// One record formatted as JSON by the C library (`proctap_format_json`),
/// or None when it is not a valid record of a known kind.
pub fn format_json(record: &[u8], realtime_offset_ns: i64) -> Option<String> {
    // The C side reads the record through its struct types: give it an
    // 8-byte aligned copy.
    let mut words = vec![0u64; record.len().div_ceil(8)];
    for (chunk, word) in record.chunks(8).zip(words.iter_mut()) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(bytes);
    }
    let mut out = vec![0u8; 4096];
    loop {
        // SAFETY: words holds record.len() initialized bytes, 8-byte
        // aligned; out is valid for out.len() bytes of writes.
        let n = unsafe {
            sys::proctap_format_json(
                words.as_ptr().cast(),
                record.len(),
                realtime_offset_ns,
                out.as_mut_ptr().cast(),
                out.len(),
            )
        };
        let n = usize::try_from(n).ok()?;
        if n < out.len() {
            out.truncate(n);
            return String::from_utf8(out).ok();
        }
        out.resize(n + 1, 0);
    }
}

/// The buffer hand-over called by the C poll loop.
unsafe extern "C" fn swap(ctx: *mut c_void, filled: *mut sys::proctap_buf, last: c_int) -> *mut sys::proctap_buf {
    // No panic may unwind into C: a panic here ends the loop instead.
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: ctx is the &mut &dyn Exchange that Instance::run passed,
        // alive for the whole proctap_run call.
        let exchange: &dyn Exchange = unsafe { *(ctx as *const &dyn Exchange) };
        if !filled.is_null() {
            // SAFETY: every buffer given to C came from Box::into_raw below,
            // with owner set to that Box; C hands each back exactly once.
            let owner = unsafe { (*filled).owner } as *mut Buffer;
            // SAFETY: as above; ownership returns to Rust here.
            let mut buf = unsafe { Box::from_raw(owner) };
            buf.raw.owner = ptr::null_mut();
            exchange.filled(buf);
        }
        if last != 0 {
            return ptr::null_mut();
        }
        match exchange.next_empty() {
            Some(buf) => {
                let owner = Box::into_raw(buf);
                // SAFETY: owner is a valid, uniquely owned Buffer that C now
                // holds until it hands it back through this function. data is
                // taken from the storage here, after the last move of the Box,
                // so C writes through a pointer derived from its final place.
                unsafe {
                    (*owner).raw.data = (*owner).storage.as_mut_ptr() as *mut u8;
                    (*owner).raw.owner = owner as *mut c_void;
                    &mut (*owner).raw
                }
            }
            None => ptr::null_mut(),
        }
    }))
    .unwrap_or(ptr::null_mut())
}

/// A NUL-terminated C char array as text.
pub(crate) fn c_text(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod layout {
    use super::sys;
    use std::mem::{align_of, offset_of, size_of};

    /// The sizes the C compiler asserted in proctap.h, checked against the
    /// Rust types bindgen generated (bindgen also checks every offset). The
    /// records of each kind are checked by the C asserts the registry
    /// generates, and against the Rust decoders by tests/json.rs.
    #[test]
    fn every_struct_matches_its_c_size() {
        assert_eq!(size_of::<sys::pt_hdr>(), sys::PT_HDR_SIZE as usize);
        assert_eq!(size_of::<sys::pt_cpu_ctl>(), sys::PT_CPU_CTL_SIZE as usize);
        assert_eq!(size_of::<sys::pt_wake>(), sys::PT_WAKE_SIZE as usize);
        assert_eq!(size_of::<sys::proctap_config>(), sys::PROCTAP_CONFIG_SIZE as usize);
        assert_eq!(size_of::<sys::proctap_buf>(), sys::PROCTAP_BUF_SIZE as usize);
        assert_eq!(size_of::<sys::proctap_stats>(), sys::PROCTAP_STATS_SIZE as usize);
        assert_eq!(size_of::<sys::proctap_error>(), sys::PROCTAP_ERROR_SIZE as usize);
        assert_eq!(size_of::<sys::proctap_cons>(), sys::PROCTAP_CONS_SIZE as usize);
    }

    #[test]
    fn the_header_is_where_the_decoder_reads_it() {
        assert_eq!(align_of::<sys::pt_hdr>(), 8);
        assert_eq!(offset_of!(sys::pt_hdr, flags), 2);
        assert_eq!(offset_of!(sys::pt_hdr, cpu), 4);
        assert_eq!(offset_of!(sys::pt_hdr, pid), 8);
        assert_eq!(offset_of!(sys::pt_hdr, ts_ns), 16);
        assert_eq!(offset_of!(sys::pt_hdr, proc_start_ns), crate::event::wire::OFF_PROC_START);
        assert_eq!(offset_of!(sys::pt_hdr, data_len), crate::event::wire::OFF_DATA_LEN);
        assert_eq!(offset_of!(sys::pt_hdr, rec_size), crate::event::wire::OFF_REC_SIZE);
        assert_eq!(offset_of!(sys::pt_cpu_ctl, cons), 64, "prod and cons on separate cache lines");
        assert_eq!(offset_of!(sys::pt_cpu_ctl, emitted), 128);
    }

    #[test]
    fn the_rust_and_c_registries_agree_on_kinds_counters_and_knobs() {
        use crate::event::{EventKind, KNOBS};
        for kind in EventKind::ALL {
            // SAFETY: proctap_kind_name returns NULL or a static string.
            let name = unsafe { sys::proctap_kind_name(u32::from(kind.id())) };
            assert!(!name.is_null());
            // SAFETY: a static NUL-terminated string from the generated table.
            assert_eq!(unsafe { std::ffi::CStr::from_ptr(name) }.to_str(), Ok(kind.name()));
            for (counter, index) in kind.counters() {
                let mut owner = u32::MAX;
                // SAFETY: owner is a valid destination; the name is static.
                let c = unsafe { sys::proctap_counter_name(*index as u32, &mut owner) };
                assert!(!c.is_null(), "C has no counter {index} ({counter} of {kind:?})");
                // SAFETY: not NULL: a static NUL-terminated string from the generated table.
                assert_eq!(unsafe { std::ffi::CStr::from_ptr(c) }.to_str(), Ok(*counter));
                assert_eq!(owner, u32::from(kind.id()));
            }
        }
        for (i, name) in KNOBS.iter().enumerate() {
            let c_name = std::ffi::CString::new(*name).unwrap();
            // SAFETY: c_name is a valid NUL-terminated string for the call.
            assert_eq!(unsafe { sys::proctap_knob(c_name.as_ptr()) }, i as i32, "{name}");
            assert_eq!(crate::config::knob_index(name), Some(i as u32));
        }
        assert_eq!(crate::config::knob_index("no_such_knob"), None);
    }
}

#[cfg(test)]
mod release {
    use super::sys;

    fn release(c: &mut sys::proctap_cons, pos: u64, len: u32) -> i32 {
        // SAFETY: c is a valid, exclusively borrowed proctap_cons.
        unsafe { sys::proctap_cons_release(c, pos, len) }
    }

    #[test]
    fn cons_waits_for_earlier_spans_then_jumps_over_pending_ones() {
        let mut c = sys::proctap_cons::default();
        assert_eq!(release(&mut c, 150, 150), 0, "ahead of cons: waits");
        assert_eq!(release(&mut c, 100, 50), 0);
        assert_eq!(c.cons, 0);
        assert_eq!(release(&mut c, 0, 100), 1);
        assert_eq!((c.cons, c.npending), (300, 0), "jumps over both pending spans");
        assert_eq!(release(&mut c, 300, 0), 0, "empty spans change nothing");
        assert_eq!(c.cons, 300);
    }

    /// Spans released in any order within a nesting window: cons never
    /// passes an unreleased span and ends at the total.
    #[test]
    fn any_release_order_within_the_nesting_depth_ends_at_the_total() {
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let spans: Vec<(u64, u32)> = {
                let mut pos = 0;
                (0..64)
                    .map(|_| {
                        let len = rand(5000) as u32; // some empty
                        let span = (pos, len);
                        pos += u64::from(len);
                        span
                    })
                    .collect()
            };
            let total: u64 = spans.iter().map(|s| u64::from(s.1)).sum();
            // Shuffle within windows of 4: metadata of nested programs
            // arrives at most that far out of position order.
            let mut order = spans.clone();
            for w in order.chunks_mut(4) {
                for i in (1..w.len()).rev() {
                    w.swap(i, rand(i as u64 + 1) as usize);
                }
            }
            let mut c = sys::proctap_cons::default();
            let mut released = vec![false; spans.len()];
            for (pos, len) in order {
                assert!(release(&mut c, pos, len) >= 0);
                released[spans.iter().position(|s| s.0 == pos && s.1 == len).unwrap()] = true;
                // cons is exactly the end of the longest released prefix.
                let prefix: u64 =
                    spans.iter().zip(&released).take_while(|(s, r)| **r || s.1 == 0).map(|(s, _)| u64::from(s.1)).sum();
                assert_eq!(c.cons, prefix);
            }
            assert_eq!((c.cons, c.npending), (total, 0));
        }
    }

    #[test]
    fn a_full_pending_list_refuses_instead_of_losing_track() {
        let mut c = sys::proctap_cons::default();
        for i in 0..sys::PT_PENDING_MAX as u64 {
            assert_eq!(release(&mut c, 10 + i * 10, 10), 0);
        }
        assert_eq!(release(&mut c, 10_000, 10), -1);
        assert_eq!(release(&mut c, 0, 10), 1);
        assert_eq!(c.cons, 10 + sys::PT_PENDING_MAX as u64 * 10);
    }
}
