//! Typed events.
//!
//! [`Event<B>`] is generic over its byte storage: iterating a
//! [`Batch`](crate::Batch) yields `Event<&[u8]>` views that borrow the
//! batch's buffer (no heap allocation per event); [`Event::to_owned_event`]
//! turns one into an `Event<Vec<u8>>` that outlives the batch.
//!
//! Both serialize (serde) to the JSON objects the dumpers print. Byte strings
//! (comm, filename, argv elements) serialize as a string when they are valid
//! UTF-8, and as `{"hex": "..."}` (every byte as two lowercase hex digits)
//! otherwise, so nothing is lost and every JSON parser reads the output.

use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::binding::{read, sys};

/// One event from the stream. More kinds will come; match with a `_` arm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", bound(serialize = "B: AsRef<[u8]>"))]
#[non_exhaustive]
pub enum Event<B = Vec<u8>> {
    Exec(Exec<B>),
    Exit(Exit),
    /// From the synthetic source ([`Config::synthetic`](crate::Config::synthetic)):
    /// benchmarks and self-tests only.
    Synthetic(Synthetic<B>),
    /// A CPU stack sample of a profiled process ([`Config::profile`](crate::Config::profile)).
    Sample(StackSample<B>),
    /// The kernel started profiling a process (its exec matched a watched
    /// command-name prefix, or a profiled process forked it).
    Trigger(Trigger),
    /// Records the kernel could not send since the last report, in stream order.
    Lost(Lost),
}

/// A CPU stack sample: what a profiled thread was running when the
/// sampling timer of its CPU fired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound(serialize = "B: AsRef<[u8]>"))]
pub struct StackSample<B = Vec<u8>> {
    pub ts_ns: u64,
    pub time: WallTime,
    pub pid: u32,
    pub tid: u32,
    pub cpu: u16,
    pub comm: Comm,
    pub cgroup_id: u64,
    /// The CPU was executing kernel code (the kernel stack is not empty).
    pub kernel_mode: bool,
    /// Kernel return addresses, innermost first.
    pub kernel_stack: KernelStack<B>,
    /// User frames, innermost first.
    pub user_stack: UserStack<B>,
    /// Why the kernel stack is missing, if the kernel could not walk it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_stack_error: Option<StackError>,
    /// Why the user stack is missing, if the kernel could not walk it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_stack_error: Option<StackError>,
    /// The data pages were full: both stacks are absent (counted in stats).
    pub data_lost: bool,
}

/// Kernel return addresses of a sample (8 bytes each, native endian).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelStack<B = Vec<u8>>(pub B);

impl<B: AsRef<[u8]>> KernelStack<B> {
    /// The addresses, innermost first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.0.as_ref().chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().len() / 8
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<B: AsRef<[u8]>> Serialize for KernelStack<B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|ip| format!("{ip:#x}")))
    }
}

/// User frames of a sample, as the kernel resolved them (32 bytes each:
/// `struct bpf_stack_build_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserStack<B = Vec<u8>>(pub B);

impl<B: AsRef<[u8]>> UserStack<B> {
    /// The frames, innermost first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = UserFrame> + '_ {
        self.0.as_ref().chunks_exact(sys::PT_USER_FRAME_SIZE as usize).map(UserFrame::from_raw)
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().len() / sys::PT_USER_FRAME_SIZE as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<B: AsRef<[u8]>> Serialize for UserStack<B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// One user frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserFrame {
    /// The kernel found the mapped ELF file: its build id and the frame's
    /// offset in that file. Symbolizes after the process is gone.
    FileOffset { build_id: BuildId, file_offset: u64 },
    /// The kernel could not read the file's build id (anonymous or JIT
    /// memory, a file without one, or the page was not resident): the raw
    /// virtual address, meaningful only with the process' mappings.
    Address(u64),
}

impl UserFrame {
    fn from_raw(raw: &[u8]) -> UserFrame {
        // struct bpf_stack_build_id: __s32 status; u8 build_id[20]; union { u64 offset; u64 ip; }
        let word = |at: usize| u64::from_ne_bytes(raw[at..at + 8].try_into().unwrap_or([0; 8]));
        let status = i32::from_ne_bytes(raw[..4].try_into().unwrap_or([0; 4]));
        if status == 1 {
            UserFrame::FileOffset { build_id: BuildId::from_note(&raw[4..24]), file_offset: word(24) }
        } else {
            UserFrame::Address(word(24))
        }
    }
}

impl Serialize for UserFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        match self {
            UserFrame::FileOffset { build_id, file_offset } => {
                map.serialize_entry("build_id", &Hex(build_id.as_bytes()))?;
                map.serialize_entry("offset", &format!("{file_offset:#x}"))?;
            }
            UserFrame::Address(ip) => map.serialize_entry("ip", &format!("{ip:#x}"))?,
        }
        map.end()
    }
}

/// A GNU build id as the kernel reports it: up to 20 bytes, zero-padded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BuildId(pub [u8; 20]);

impl BuildId {
    /// Pads a build id read from an ELF note the way the kernel does
    /// (ids longer than 20 bytes are cut, as the kernel cuts them).
    pub fn from_note(bytes: &[u8]) -> BuildId {
        let mut id = [0u8; 20];
        let n = bytes.len().min(20);
        id[..n].copy_from_slice(&bytes[..n]);
        BuildId(id)
    }

    /// The padded bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Debug for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuildId({self})")
    }
}

/// Lowercase hex of the padded bytes.
impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Hex(&self.0).fmt(f)
    }
}

/// Why the kernel could not walk a stack: the negative errno of
/// `bpf_get_stack` (for example `EFAULT`, user memory not readable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct StackError {
    pub errno: i32,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack walk failed: {}", std::io::Error::from_raw_os_error(self.errno))
    }
}

/// Why the kernel started profiling a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerReason {
    /// Its exec matched a watched command-name prefix of `prefix_len` bytes.
    CommPrefix { prefix_len: u32 },
    /// A profiled process forked it.
    Child,
}

/// The kernel added a process to the profiler's targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Trigger {
    pub ts_ns: u64,
    pub time: WallTime,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub comm: Comm,
    pub reason: TriggerReason,
    /// CLOCK_MONOTONIC start of the process.
    pub start_ns: u64,
}

/// Which kind of event a [`Lost`] report counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Exec,
    Exit,
    Synthetic,
    Sample,
    Trigger,
}

/// Records the kernel could not send since the previous report. The same
/// counts are in [`Stats`](crate::Stats); this puts them in the stream, where
/// the gap is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// When the loader noticed.
    pub ts_ns: u64,
    pub time: WallTime,
    pub kind: EventKind,
    /// Events lost entirely: not even their metadata fit in the ring.
    /// (Events delivered without their data say so themselves: `data_lost`.)
    pub records: u64,
}

/// A successful execve/execveat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound(serialize = "B: AsRef<[u8]>"))]
pub struct Exec<B = Vec<u8>> {
    /// Kernel CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// Wall-clock time of `ts_ns`.
    pub time: WallTime,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// The pid as the process' own pid namespace numbers it.
    pub ns_pid: u32,
    pub cgroup_id: u64,
    pub comm: Comm,
    /// The path given to exec (bprm->filename), without NUL.
    #[serde(serialize_with = "ser_bytes")]
    pub filename: B,
    /// The filename reached 4095 bytes and may be cut there.
    #[serde(skip_serializing_if = "is_false")]
    pub filename_truncated: bool,
    pub argv: Argv<B>,
    /// argv is shorter than the process' argv (over the cap, or unreadable).
    pub argv_truncated: bool,
    /// The data pages were full: filename and argv are absent (counted in stats).
    pub data_lost: bool,
    /// Size of the process' whole argv area in bytes.
    #[serde(skip)]
    pub argv_size: u32,
}

/// A process exit (or a thread exit, when configured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Exit {
    pub ts_ns: u64,
    pub time: WallTime,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub comm: Comm,
    /// The exit status byte; 0 and meaningless when `signal` is set.
    pub exit_code: u8,
    /// The signal that terminated the process, if one did.
    pub signal: Option<u8>,
    pub core_dumped: bool,
    /// Time from process start to exit.
    pub duration_ns: u64,
    /// A thread ended, not the whole process.
    pub thread_exit: bool,
    /// CLOCK_MONOTONIC start of the process.
    #[serde(skip)]
    pub start_ns: u64,
}

/// A synthetic event: `payload` repeats `seq` in its first 8 bytes, so a
/// record overwritten before it was read shows up as a mismatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound(serialize = "B: AsRef<[u8]>"))]
pub struct Synthetic<B = Vec<u8>> {
    pub ts_ns: u64,
    pub time: WallTime,
    pub pid: u32,
    pub tid: u32,
    /// CPU that produced it; `seq` counts per CPU.
    pub cpu: u16,
    /// The source's attempt number on `cpu`: a gap is a lost event.
    pub seq: u64,
    /// Payload bytes (empty when `data_lost`).
    #[serde(skip)]
    pub payload: B,
    /// Bytes the source emitted (the payload's length unless `data_lost`).
    pub payload_len: u32,
    pub data_lost: bool,
}

impl<B: AsRef<[u8]>> Synthetic<B> {
    /// The payload carries the pattern and `seq` the source wrote.
    pub fn payload_intact(&self) -> bool {
        let payload = self.payload.as_ref();
        if self.data_lost {
            return payload.is_empty();
        }
        let pattern = |i: usize| (i as u8).wrapping_mul(131).wrapping_add(7);
        payload.len() == self.payload_len as usize
            && match payload.split_first_chunk::<8>() {
                Some((head, rest)) => {
                    u64::from_ne_bytes(*head) == self.seq
                        && rest.iter().enumerate().all(|(i, &b)| b == pattern(i + 8))
                }
                None => payload.iter().enumerate().all(|(i, &b)| b == pattern(i)),
            }
    }
}

impl<B: AsRef<[u8]>> Event<B> {
    /// Copies the event out of its batch.
    pub fn to_owned_event(&self) -> Event {
        match self {
            Event::Exec(e) => Event::Exec(Exec {
                filename: e.filename.as_ref().to_vec(),
                filename_truncated: e.filename_truncated,
                argv: Argv(e.argv.0.as_ref().to_vec()),
                ts_ns: e.ts_ns,
                time: e.time,
                pid: e.pid,
                tid: e.tid,
                ppid: e.ppid,
                uid: e.uid,
                gid: e.gid,
                ns_pid: e.ns_pid,
                cgroup_id: e.cgroup_id,
                comm: e.comm,
                argv_truncated: e.argv_truncated,
                data_lost: e.data_lost,
                argv_size: e.argv_size,
            }),
            Event::Exit(x) => Event::Exit(*x),
            Event::Sample(s) => Event::Sample(StackSample {
                kernel_stack: KernelStack(s.kernel_stack.0.as_ref().to_vec()),
                user_stack: UserStack(s.user_stack.0.as_ref().to_vec()),
                ts_ns: s.ts_ns,
                time: s.time,
                pid: s.pid,
                tid: s.tid,
                cpu: s.cpu,
                comm: s.comm,
                cgroup_id: s.cgroup_id,
                kernel_mode: s.kernel_mode,
                kernel_stack_error: s.kernel_stack_error,
                user_stack_error: s.user_stack_error,
                data_lost: s.data_lost,
            }),
            Event::Trigger(t) => Event::Trigger(*t),
            Event::Lost(l) => Event::Lost(*l),
            Event::Synthetic(s) => Event::Synthetic(Synthetic {
                payload: s.payload.as_ref().to_vec(),
                ts_ns: s.ts_ns,
                time: s.time,
                pid: s.pid,
                tid: s.tid,
                cpu: s.cpu,
                seq: s.seq,
                payload_len: s.payload_len,
                data_lost: s.data_lost,
            }),
        }
    }

    /// Process id (tgid) of the event (0 for [`Event::Lost`]).
    pub fn pid(&self) -> u32 {
        match self {
            Event::Exec(e) => e.pid,
            Event::Exit(x) => x.pid,
            Event::Synthetic(s) => s.pid,
            Event::Sample(s) => s.pid,
            Event::Trigger(t) => t.pid,
            Event::Lost(_) => 0,
        }
    }

    /// Kernel CLOCK_MONOTONIC nanoseconds.
    pub fn ts_ns(&self) -> u64 {
        match self {
            Event::Exec(e) => e.ts_ns,
            Event::Exit(x) => x.ts_ns,
            Event::Synthetic(s) => s.ts_ns,
            Event::Sample(s) => s.ts_ns,
            Event::Trigger(t) => t.ts_ns,
            Event::Lost(l) => l.ts_ns,
        }
    }
}

/// The NUL-separated argv of an exec, as captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Argv<B = Vec<u8>>(pub B);

impl<B: AsRef<[u8]>> Argv<B> {
    /// The raw argv area: arguments each followed by a NUL (the last one may
    /// lack its NUL when truncated).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// The arguments, without their NULs.
    pub fn iter(&self) -> Args<'_> {
        Args { rest: self.0.as_ref() }
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_empty()
    }
}

/// Iterator over the arguments of an [`Argv`].
#[derive(Clone, Debug)]
pub struct Args<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(0, self.rest).unwrap_or(self.rest.len());
        let arg = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
        Some(arg)
    }
}

impl<B: AsRef<[u8]>> Serialize for Argv<B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for arg in self.iter() {
            seq.serialize_element(&ByteStr(arg))?;
        }
        seq.end()
    }
}

/// A task's command name (up to 15 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Comm([u8; 16]);

impl Comm {
    pub fn new(bytes: &[u8]) -> Comm {
        let mut comm = [0u8; 16];
        let n = bytes.len().min(15);
        comm[..n].copy_from_slice(&bytes[..n]);
        Comm(comm)
    }

    /// The name without its NUL padding.
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }

    fn from_c(chars: &[std::ffi::c_char; 16]) -> Comm {
        Comm(chars.map(|c| c as u8))
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl Serialize for Comm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ByteStr(self.as_bytes()).serialize(s)
    }
}

/// Wall-clock time in nanoseconds since the Unix epoch; displays and
/// serializes as RFC 3339 UTC with nanoseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct WallTime {
    pub unix_ns: i64,
}

impl WallTime {
    /// The wall time of a CLOCK_MONOTONIC timestamp, given the offset
    /// CLOCK_REALTIME - CLOCK_MONOTONIC.
    pub fn from_monotonic(ts_ns: u64, realtime_offset_ns: i64) -> WallTime {
        WallTime { unix_ns: (ts_ns as i64).saturating_add(realtime_offset_ns) }
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.unix_ns.div_euclid(1_000_000_000);
        let nanos = self.unix_ns.rem_euclid(1_000_000_000);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days end each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Serializes bytes as a string when valid UTF-8, else as {"hex": "..."}.
struct ByteStr<'a>(&'a [u8]);

impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("hex", &Hex(self.0))?;
                map.end()
            }
        }
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn is_false(b: &bool) -> bool {
    !b
}

fn ser_bytes<B: AsRef<[u8]>, S: Serializer>(bytes: &B, s: S) -> Result<S::Ok, S::Error> {
    ByteStr(bytes.as_ref()).serialize(s)
}

/// Iterator over the events in a run of records (a batch's bytes).
///
/// Records of kinds this version does not know are skipped; a record whose
/// size does not fit the remaining bytes ends the iteration.
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
            let hdr: sys::pt_hdr = read(self.rest)?;
            let size = hdr.rec_size as usize;
            if size < std::mem::size_of::<sys::pt_hdr>() || size > self.rest.len() {
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

/// One record: its fixed struct, then hdr.data_len bytes of data.
fn decode<'a>(hdr: &sys::pt_hdr, record: &'a [u8], offset: i64) -> Option<Event<&'a [u8]>> {
    let time = WallTime::from_monotonic(hdr.ts_ns, offset);
    let flags = u32::from(hdr.flags);
    match u32::from(hdr.kind) {
        sys::PT_KIND_EXEC => {
            let e: sys::pt_exec = read(record)?;
            let data = record.get(std::mem::size_of::<sys::pt_exec>()..)?.get(..hdr.data_len as usize)?;
            let (filename, argv) = data.split_at_checked(e.filename_len as usize)?;
            let argv = argv.get(..e.argv_len as usize)?;
            Some(Event::Exec(Exec {
                ts_ns: hdr.ts_ns,
                time,
                pid: hdr.pid,
                tid: hdr.tid,
                ppid: e.ppid,
                uid: e.uid,
                gid: e.gid,
                ns_pid: e.ns_pid,
                cgroup_id: e.cgroup_id,
                comm: Comm::from_c(&e.comm),
                filename,
                filename_truncated: flags & sys::PT_F_FILENAME_TRUNCATED != 0,
                argv: Argv(argv),
                argv_truncated: flags & (sys::PT_F_ARGV_TRUNCATED | sys::PT_F_ARGV_FAULT) != 0,
                data_lost: flags & sys::PT_F_DATA_LOST != 0,
                argv_size: e.argv_size,
            }))
        }
        sys::PT_KIND_EXIT => {
            let x: sys::pt_exit = read(record)?;
            let signal = (x.exit_code & 0x7f) as u8;
            Some(Event::Exit(Exit {
                ts_ns: hdr.ts_ns,
                time,
                pid: hdr.pid,
                tid: hdr.tid,
                ppid: x.ppid,
                comm: Comm::from_c(&x.comm),
                exit_code: (x.exit_code >> 8) as u8,
                signal: (signal != 0).then_some(signal),
                core_dumped: x.exit_code & 0x80 != 0,
                duration_ns: hdr.ts_ns.saturating_sub(x.start_ns),
                thread_exit: flags & sys::PT_F_THREAD_EXIT != 0,
                start_ns: x.start_ns,
            }))
        }
        sys::PT_KIND_SYNTH => {
            let s: sys::pt_synth = read(record)?;
            let payload = record.get(std::mem::size_of::<sys::pt_synth>()..)?.get(..hdr.data_len as usize)?;
            Some(Event::Synthetic(Synthetic {
                ts_ns: hdr.ts_ns,
                time,
                pid: hdr.pid,
                tid: hdr.tid,
                cpu: hdr.cpu,
                seq: s.seq,
                payload,
                payload_len: s.payload_len,
                data_lost: flags & sys::PT_F_DATA_LOST != 0,
            }))
        }
        sys::PT_KIND_SAMPLE => {
            let s: sys::pt_sample = read(record)?;
            let data = record.get(std::mem::size_of::<sys::pt_sample>()..)?.get(..hdr.data_len as usize)?;
            let (kernel, user) = data.split_at_checked(s.kstack_len as usize)?;
            let user = user.get(..s.ustack_len as usize)?;
            let error = |errno: i32| (errno != 0).then_some(StackError { errno: errno.saturating_neg() });
            Some(Event::Sample(StackSample {
                ts_ns: hdr.ts_ns,
                time,
                pid: hdr.pid,
                tid: hdr.tid,
                cpu: hdr.cpu,
                comm: Comm::from_c(&s.comm),
                cgroup_id: s.cgroup_id,
                kernel_mode: flags & sys::PT_F_KERNEL_MODE != 0,
                kernel_stack: KernelStack(kernel),
                user_stack: UserStack(user),
                kernel_stack_error: error(s.kstack_err),
                user_stack_error: error(s.ustack_err),
                data_lost: flags & sys::PT_F_DATA_LOST != 0,
            }))
        }
        sys::PT_KIND_TRIGGER => {
            let t: sys::pt_trigger = read(record)?;
            let reason = match t.reason {
                sys::PT_TRIGGER_COMM => TriggerReason::CommPrefix { prefix_len: t.prefix_len },
                sys::PT_TRIGGER_CHILD => TriggerReason::Child,
                _ => return None,
            };
            Some(Event::Trigger(Trigger {
                ts_ns: hdr.ts_ns,
                time,
                pid: hdr.pid,
                tid: hdr.tid,
                ppid: t.ppid,
                comm: Comm::from_c(&t.comm),
                reason,
                start_ns: t.start_ns,
            }))
        }
        sys::PT_KIND_LOSS => {
            let l: sys::pt_loss = read(record)?;
            let kind = match l.lost_kind {
                sys::PT_KIND_EXEC => EventKind::Exec,
                sys::PT_KIND_EXIT => EventKind::Exit,
                sys::PT_KIND_SYNTH => EventKind::Synthetic,
                sys::PT_KIND_SAMPLE => EventKind::Sample,
                sys::PT_KIND_TRIGGER => EventKind::Trigger,
                _ => return None,
            };
            Some(Event::Lost(Lost { ts_ns: hdr.ts_ns, time, kind, records: l.records }))
        }
        _ => None,
    }
}
