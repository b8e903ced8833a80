//! Tracer configuration: a builder whose rules live in one place, the C
//! loader's `proctap_config_check`, plus the Rust-side batching knobs.

use std::time::Duration;

use crate::binding::{config_check, max_record, sys};
use crate::error::Error;
use crate::event::{EventKind, KNOBS};

pub(crate) mod cgroup;
mod sources;
use cgroup::CgroupTarget;
pub(crate) use sources::check_comm_prefix;
pub use sources::{Profiler, SyntheticSource, SyntheticTransport, Unwind};

/// The knob of the synthetic source's payload (set through [`SyntheticSource`]).
const SYNTH_PAYLOAD: &str = "synth_payload";

/// The index of the knob (a configurable cap) called `name`, as the
/// registry numbers them (the C side agrees: see the binding's tests).
pub(crate) fn knob_index(name: &str) -> Option<u32> {
    KNOBS.iter().position(|k| *k == name).map(|i| i as u32)
}

/// A config every rule accepted: the C config, and the bytes of one batch.
pub(crate) struct Checked {
    pub(crate) raw: sys::proctap_config,
    pub(crate) batch_bytes: usize,
}

/// How exit events tell the end of a process from the end of one thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExitProbe {
    /// `Tracepoint` when the kernel's record has `group_dead` and tracefs
    /// is mounted or can be; else `GroupDead` when the BTF tracepoint
    /// passes it; else `Live`.
    #[default]
    Auto,
    /// The `group_dead` argument of sched_process_exit (recent kernels):
    /// exactly the thread that ended the process.
    GroupDead,
    /// `signal->live == 0`, deduplicated per process (kernels without
    /// `group_dead`).
    Live,
    /// The `group_dead` field of the classic sched_process_exit
    /// tracepoint's record, from a program that runs with preemption off.
    /// The BTF tracepoint's program (`GroupDead`) runs with only migration
    /// off: where tracepoints are preemptible (Linux 7.x), the kernel skips
    /// it for other tasks on a CPU while a task is preempted inside it,
    /// and so misses exits. Needs tracefs (mounted when missing).
    Tracepoint,
}

/// The default [`Config::flush_interval`].
const FLUSH_INTERVAL: Duration = Duration::from_millis(10);
/// The default [`Config::flush_interval`] of a config that profiles.
const PROFILE_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// What to trace and how to buffer it. Start one with [`Config::new`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Kinds enabled by [`Config::event`], one bit per kind id (exec and
    /// exit by default).
    events: u64,
    /// Caps of variable fields set by the caller, by knob index.
    knobs: Vec<(u32, u32)>,
    /// A cap named that no kind declares (reported by validate).
    unknown_knob: Option<String>,
    /// A tracepoint asked for that the build did not declare.
    unknown_tracepoint: Option<String>,
    per_kind_batches: bool,
    pages_per_cpu: u32,
    ringbuf_bytes: u32,
    /// `None`: the default (10 ms, or 100 ms for a profile).
    flush_interval: Option<Duration>,
    thread_exits: bool,
    pids: Vec<u32>,
    comm_prefix: Vec<u8>,
    cgroups: Vec<CgroupTarget>,
    batch_bytes: Option<usize>,
    batches_in_flight: usize,
    exit_probe: ExitProbe,
    busy_poll: bool,
    synthetic: Option<SyntheticSource>,
    profile: Option<Profiler>,
    /// Fds whose writes are captured (empty: 1 and 2), in the order given.
    capture_fds: Vec<i32>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            events: 1 << EventKind::Exec.id() | 1 << EventKind::Exit.id(),
            knobs: Vec::new(),
            unknown_knob: None,
            unknown_tracepoint: None,
            per_kind_batches: false,
            pages_per_cpu: 0,
            ringbuf_bytes: 0,
            flush_interval: None,
            thread_exits: false,
            pids: Vec::new(),
            comm_prefix: Vec::new(),
            cgroups: Vec::new(),
            batch_bytes: None,
            batches_in_flight: 16,
            exit_probe: ExitProbe::Auto,
            busy_poll: false,
            synthetic: None,
            profile: None,
            capture_fds: Vec::new(),
        }
    }
}

impl Config {
    /// Exec and whole-process exit events of every process, 16 KiB of argv.
    pub fn new() -> Config {
        Config::default()
    }

    /// Trace exec events (default on).
    pub fn exec(self, on: bool) -> Config {
        self.event(EventKind::Exec, on)
    }

    /// Trace exit events (default on).
    pub fn exit(self, on: bool) -> Config {
        self.event(EventKind::Exit, on)
    }

    /// Traces events of `kind` (any kind the registry declares), or stops
    /// tracing them. Kinds with settings of their own come with them:
    /// [`Config::profile`] enables samples and triggers,
    /// [`Config::synthetic`] the synthetic source.
    pub fn event(mut self, kind: EventKind, on: bool) -> Config {
        let bit = 1 << kind.id();
        self.events = if on { self.events | bit } else { self.events & !bit };
        self
    }

    /// Traces a tracepoint declared at build time ("CATEGORY:NAME", as in
    /// the PROCTAP_EVENTS file; README: "Adding tracepoints"). Its events
    /// are the current task's, filtered like every process event.
    pub fn tracepoint(mut self, name: &str) -> Config {
        match EventKind::from_name(name).filter(|k| k.is_tracepoint()) {
            Some(kind) => self.event(kind, true),
            None => {
                self.unknown_tracepoint = Some(name.to_string());
                self
            }
        }
    }

    /// Follows the TCP and UDP connections of traced processes: a
    /// [`EventKind::ConnOpen`] when a traced process first moves bytes on one
    /// (with the role its TCP handshake gave), a [`EventKind::ConnClose`]
    /// with the bytes moved when its socket's last close comes (the two
    /// kinds come together). Hooks the socket layer's tracepoints, not
    /// syscalls (Linux 6.3 or later), and a cgroup `sock_release` program on
    /// the cgroup2 root.
    pub fn connections(self) -> Config {
        self.event(EventKind::ConnOpen, true).event(EventKind::ConnClose, true)
    }

    /// [`Config::connections`], plus what they carry (raw mode): a
    /// [`EventKind::NetData`] per message, with its position in the
    /// connection's stream and its bytes up to `net_data_max`.
    pub fn net_data(self) -> Config {
        self.connections().event(EventKind::NetData, true)
    }

    /// Bytes of each data syscall captured in raw mode (default 16 KiB, 0 to
    /// 1 MiB); a cut is flagged `truncated`, and `len` stays whole.
    pub fn net_data_max(self, bytes: u32) -> Config {
        self.data_cap("net_data_max", bytes)
    }

    /// Captures what traced processes write to stdout and stderr (fds 1
    /// and 2): [`EventKind::Write`] events.
    pub fn stdio(self) -> Config {
        self.capture_fd(1).capture_fd(2)
    }

    /// Captures what traced processes write to `fd` (up to 8 fds in all):
    /// [`EventKind::Write`] events. Enabling write events without naming
    /// fds captures 1 and 2.
    pub fn capture_fd(mut self, fd: i32) -> Config {
        if !self.capture_fds.contains(&fd) {
            self.capture_fds.push(fd);
        }
        self.event(EventKind::Write, true)
    }

    /// Bytes of each write captured (default 16 KiB, 0 to 1 MiB); the rest
    /// of a longer write is counted in its `len` and flagged `truncated`.
    pub fn write_max(self, bytes: u32) -> Config {
        self.data_cap("write_max", bytes)
    }

    /// Bytes of argv captured per exec (default 16 KiB, 1 byte to 1 MiB);
    /// longer argv is cut and flagged `argv_truncated`.
    pub fn argv_max(self, bytes: u32) -> Config {
        self.data_cap("argv_max", bytes)
    }

    /// Sets a configurable cap of a variable field, by the name its kind's
    /// declaration gives it (c/events: `cap = { knob = "argv_max", ... }`).
    /// An unknown name or a value out of its range fails at start.
    pub fn data_cap(mut self, knob: &str, bytes: u32) -> Config {
        match knob_index(knob) {
            Some(index) => {
                self.knobs.retain(|(i, _)| *i != index);
                self.knobs.push((index, bytes));
            }
            None => self.unknown_knob = Some(knob.to_string()),
        }
        self
    }

    /// Each batch holds events of one kind only (and the [`Lost`](crate::Lost)
    /// reports of that kind): [`Batch::kind`](crate::Batch::kind) says which,
    /// and a consumer of one kind skips the others' batches without reading
    /// them. The loader then holds up to one buffer per enabled kind, so
    /// `batches_in_flight` must leave room for that. Off by default.
    pub fn per_kind_batches(mut self, on: bool) -> Config {
        self.per_kind_batches = on;
        self
    }

    /// 4 KiB data pages per CPU, a power of two (default: at least 64, 512
    /// with [`net_data`](Self::net_data), and room for two records of
    /// `argv_max`).
    pub fn pages_per_cpu(mut self, pages: u32) -> Config {
        self.pages_per_cpu = pages;
        self
    }

    /// Size of the metadata ring in bytes, a power of two (default 1 MiB).
    pub fn ringbuf_bytes(mut self, bytes: u32) -> Config {
        self.ringbuf_bytes = bytes;
        self
    }

    /// Longest time a record waits in a batch before it is handed over
    /// under sustained load (default 10 ms; 100 ms for a config that
    /// [profiles](Self::profile): samples need no low latency, and each
    /// poll round costs about as much as the few samples it takes, so at
    /// 99 Hz the shorter interval doubles the profiler's CPU). At lower
    /// rates every poll round hands its batch over at once.
    pub fn flush_interval(mut self, interval: Duration) -> Config {
        self.flush_interval = Some(interval);
        self
    }

    /// The flush interval in effect (see [`flush_interval`](Self::flush_interval)).
    pub fn effective_flush_interval(&self) -> Duration {
        let default = if self.profile.is_some() { PROFILE_FLUSH_INTERVAL } else { FLUSH_INTERVAL };
        self.flush_interval.unwrap_or(default)
    }

    /// Report every thread exit too, not only whole-process exits.
    pub fn thread_exits(mut self, on: bool) -> Config {
        self.thread_exits = on;
        self
    }

    /// Only these processes (tgids). Repeatable; none means all processes.
    /// A pid leaves the filter when its process exits.
    pub fn pid(mut self, pid: u32) -> Config {
        self.pids.push(pid);
        self
    }

    /// Only processes whose command name starts with `prefix` (at most 15 bytes).
    pub fn comm_prefix(mut self, prefix: impl AsRef<[u8]>) -> Config {
        self.comm_prefix = prefix.as_ref().to_vec();
        self
    }

    /// Only processes in this cgroup v2 directory or below it (on a v1/v2
    /// hybrid, under `/sys/fs/cgroup/unified`). Repeatable, at most 8: a
    /// process in any of them is traced. Combines with [`Config::pid`] and
    /// [`Config::comm_prefix`]: a process must pass each filter that is set.
    /// Checked when the tracer starts: a path that is not a cgroup v2
    /// directory is [`Error::InvalidConfig`] for field `cgroups`.
    pub fn cgroup(mut self, dir: impl AsRef<std::path::Path>) -> Config {
        self.cgroups.push(CgroupTarget::Path(dir.as_ref().to_path_buf()));
        self
    }

    /// Like [`Config::cgroup`], by the cgroup v2 id events carry as
    /// `cgroup_id` (the directory's inode number).
    pub fn cgroup_id(mut self, id: u64) -> Config {
        self.cgroups.push(CgroupTarget::Id(id));
        self
    }

    /// Size of one batch buffer (default: 256 KiB, or two of the largest records).
    pub fn batch_bytes(mut self, bytes: usize) -> Config {
        self.batch_bytes = Some(bytes);
        self
    }

    /// Batches the consumer may hold before the tracer stops reading and the
    /// kernel starts counting drops (default 16, at least 2).
    pub fn batches_in_flight(mut self, batches: usize) -> Config {
        self.batches_in_flight = batches;
        self
    }

    /// How exits are told apart (default: picked from the kernel's BTF).
    pub fn exit_probe(mut self, probe: ExitProbe) -> Config {
        self.exit_probe = probe;
        self
    }

    /// Poll the rings in a loop instead of sleeping until the kernel wakes
    /// the poll thread: no wake-up on the path, at the price of one CPU kept
    /// busy. For the lowest latency also consume on the poll thread with
    /// [`Tracer::start_with_handler`](crate::Tracer::start_with_handler): a
    /// consumer spinning on `events().try_recv()` keeps a second CPU busy,
    /// and on a small machine it competes with the traced processes. Off by
    /// default.
    pub fn busy_poll(mut self, on: bool) -> Config {
        self.busy_poll = on;
        self
    }

    /// Adds the synthetic source (benchmarks, self-tests).
    #[doc(hidden)]
    pub fn synthetic(mut self, source: SyntheticSource) -> Config {
        self.synthetic = Some(source);
        self
    }

    /// Adds CPU stack samples ([`Event::Sample`](crate::Event::Sample)) of
    /// the profiler's targets. Combine with `.exec(false).exit(false)` for
    /// samples (and triggers) only.
    pub fn profile(mut self, profiler: Profiler) -> Config {
        self.profile = Some(profiler);
        self
    }

    /// The profiler settings, if profiling.
    pub fn profiler(&self) -> Option<&Profiler> {
        self.profile.as_ref()
    }

    /// Checks every field without loading anything.
    pub fn validate(&self) -> Result<(), Error> {
        self.checked().map(|_| ())
    }

    /// The C config and the batch size, once every field is checked.
    pub(crate) fn checked(&self) -> Result<Checked, Error> {
        let raw = self.to_raw()?;
        config_check(&raw).map_err(|err| match err {
            // The C field name, as the Rust builder calls it.
            Error::InvalidConfig { field, reason } => {
                let field = match field.as_str() {
                    "flush_us" => "flush_interval".to_string(),
                    "profile_hz" => "profile.hz".to_string(),
                    "write_fds" => "capture_fd".to_string(),
                    SYNTH_PAYLOAD => "synthetic.payload_bytes".to_string(),
                    _ => field,
                };
                Error::InvalidConfig { field, reason }
            }
            other => other,
        })?;
        let need = max_record(&raw) as usize;
        if let Some(bytes) = self.batch_bytes {
            if bytes < need || bytes > u32::MAX as usize {
                return Err(Error::invalid(
                    "batch_bytes",
                    format!("{bytes} bytes; a batch must hold one record of up to {need} bytes and be under 4 GiB"),
                ));
            }
        }
        // Kinds whose records may arrive: each has its own batch then.
        let held = if self.per_kind_batches { raw.events.count_ones() as usize } else { 1 };
        if self.batches_in_flight < held + 1 {
            return Err(Error::invalid(
                "batches_in_flight",
                format!(
                    "at least {}: the poll thread fills one batch per route ({held}), the consumer reads another",
                    held + 1
                ),
            ));
        }
        // As set, or 256 KiB and at least two of the largest records.
        let batch_bytes = self.batch_bytes.unwrap_or((256 << 10).max(2 * need));
        Ok(Checked { raw, batch_bytes })
    }

    pub(crate) fn batches_in_flight_resolved(&self) -> usize {
        self.batches_in_flight
    }

    pub(crate) fn to_raw(&self) -> Result<sys::proctap_config, Error> {
        let mut raw = sys::proctap_config::default();
        if self.events == 0 && self.synthetic.is_none() && self.profile.is_none() {
            return Err(Error::invalid("events", "nothing to trace: enable exec, exit or profile"));
        }
        if let Some(knob) = &self.unknown_knob {
            return Err(Error::invalid(
                "data_cap",
                format!("no variable field has the cap `{knob}` (known: {})", KNOBS.join(", ")),
            ));
        }
        if let Some(name) = &self.unknown_tracepoint {
            let declared: Vec<&str> = EventKind::ALL.iter().filter(|k| k.is_tracepoint()).map(|k| k.name()).collect();
            let declared = if declared.is_empty() { "none".to_string() } else { declared.join(", ") };
            return Err(Error::invalid(
                "tracepoint",
                format!(
                    "`{name}` was not declared when proctap was built (declared: {declared}); list it in the \
                     PROCTAP_EVENTS file and rebuild"
                ),
            ));
        }
        if let Some(kind) = EventKind::ALL.into_iter().find(|k| self.events & 1 << k.id() != 0 && !k.is_traced()) {
            return Err(Error::invalid("events", format!("{kind} events are made by the loader, not traced")));
        }
        raw.events = self.events;
        for &(index, value) in &self.knobs {
            raw.knobs[index as usize] = value;
            raw.knobs_set |= 1 << index;
        }
        if let Some(profile) = &self.profile {
            profile.fill_raw(&mut raw)?;
        }
        if let Some(source) = &self.synthetic {
            if self.knobs.iter().any(|&(i, _)| Some(i) == knob_index(SYNTH_PAYLOAD)) {
                return Err(Error::invalid(
                    "data_cap",
                    format!("`{SYNTH_PAYLOAD}` is the synthetic source's payload: set SyntheticSource::payload_bytes"),
                ));
            }
            source.fill_raw(&mut raw);
        }
        raw.busy_poll = u32::from(self.busy_poll);
        raw.per_kind_batches = u32::from(self.per_kind_batches);
        raw.pages_per_cpu = self.pages_per_cpu;
        raw.ringbuf_bytes = self.ringbuf_bytes;
        let flush = self.effective_flush_interval();
        let flush_us = flush.as_micros();
        if flush_us == 0 || flush_us > u128::from(u32::MAX) {
            return Err(Error::invalid("flush_interval", format!("{flush:?}; use 1 µs to 10 s")));
        }
        raw.flush_us = flush_us as u32;
        self.filter_to_raw(&mut raw)?;
        Ok(raw)
    }

    /// Which processes (pids, command-name prefix, cgroups, thread exits,
    /// exit probe), and which of their fds' writes.
    fn filter_to_raw(&self, raw: &mut sys::proctap_config) -> Result<(), Error> {
        raw.thread_exits = u32::from(self.thread_exits);
        raw.exit_probe = match self.exit_probe {
            ExitProbe::Auto => sys::PROCTAP_EXIT_AUTO,
            ExitProbe::GroupDead => sys::PROCTAP_EXIT_GROUP_DEAD,
            ExitProbe::Live => sys::PROCTAP_EXIT_LIVE,
            ExitProbe::Tracepoint => sys::PROCTAP_EXIT_TRACEPOINT,
        };
        if self.pids.len() > raw.pids.len() {
            return Err(Error::invalid("pids", format!("{} pids; at most {}", self.pids.len(), raw.pids.len())));
        }
        raw.pids[..self.pids.len()].copy_from_slice(&self.pids);
        raw.npids = self.pids.len() as u32;
        if self.comm_prefix.len() >= raw.comm_prefix.len() || self.comm_prefix.contains(&0) {
            return Err(Error::invalid("comm_prefix", "at most 15 bytes, no NUL"));
        }
        for (dst, &src) in raw.comm_prefix.iter_mut().zip(&self.comm_prefix) {
            *dst = src as std::ffi::c_char;
        }
        raw.comm_prefix_len = self.comm_prefix.len() as u32;
        if self.cgroups.len() > raw.cgroup_ids.len() {
            let n = self.cgroups.len();
            return Err(Error::invalid("cgroups", format!("{n} cgroups; at most {}", raw.cgroup_ids.len())));
        }
        for (dst, target) in raw.cgroup_ids.iter_mut().zip(&self.cgroups) {
            *dst = target.resolve()?;
        }
        raw.ncgroups = self.cgroups.len() as u32;
        if self.capture_fds.len() > raw.write_fds.len() {
            let n = self.capture_fds.len();
            return Err(Error::invalid("capture_fd", format!("{n} fds; at most {}", raw.write_fds.len())));
        }
        raw.write_fds[..self.capture_fds.len()].copy_from_slice(&self.capture_fds);
        raw.write_nfds = self.capture_fds.len() as u32;
        Ok(())
    }
}
