//! The event sources with settings of their own: the profiler, and the
//! synthetic source of benchmarks and self-tests.

use crate::binding::sys;
use crate::error::Error;
use crate::event::EventKind;

use super::{knob_index, SYNTH_PAYLOAD};

/// Which transport the synthetic source writes to.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyntheticTransport {
    /// proctap's metadata ring + per-CPU data pages.
    #[default]
    Hybrid,
    /// One BPF ringbuf with the payload inline (the usual design).
    Ringbuf,
    /// A BPF perf buffer with the payload inline (the older usual design).
    Perfbuf,
}

/// A kernel-side event source for benchmarks and self-tests: every
/// `getppid()` of process `pid` emits `events_per_trigger` events of
/// `payload_bytes` each.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticSource {
    pub pid: u32,
    pub payload_bytes: u32,
    pub events_per_trigger: u32,
    pub transport: SyntheticTransport,
    /// Ringbuf size, or perf-buffer bytes per CPU; 0 for the default.
    pub ring_bytes: u32,
}

/// CPU stack sampling ([`Config::profile`](super::Config::profile)): which processes, how often.
///
/// Targets are processes given by pid, processes whose exec matches a
/// command-name prefix (added in the kernel at exec, with a
/// [`Trigger`](crate::Trigger) event; processes already running are found by
/// a /proc scan), and optionally their children. More can be added and
/// removed while tracing with [`Tracer::targets`](crate::Tracer::targets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profiler {
    pub(crate) hz: u32,
    pub(crate) unwind: Unwind,
    /// Off-CPU samples, and the shortest sleep they report.
    pub(crate) off_cpu: Option<std::time::Duration>,
    pub(crate) all: bool,
    pub(crate) children: bool,
    pub(crate) pids: Vec<u32>,
    pub(crate) comm_prefixes: Vec<Vec<u8>>,
}

impl Default for Profiler {
    fn default() -> Profiler {
        Profiler {
            hz: sys::PT_PROFILE_HZ_DEFAULT,
            unwind: Unwind::StackCopy,
            off_cpu: None,
            all: false,
            children: false,
            pids: Vec::new(),
            comm_prefixes: Vec::new(),
        }
    }
}

impl Profiler {
    /// 19 samples per second per CPU, no targets yet.
    pub fn new() -> Profiler {
        Profiler::default()
    }

    /// Samples per second on each CPU, 1 to 999 (software cpu-clock timer).
    pub fn hz(mut self, hz: u32) -> Profiler {
        self.hz = hz;
        self
    }

    /// The sampling frequency set (samples per second per CPU).
    pub fn sampling_hz(&self) -> u32 {
        self.hz
    }

    /// How user stacks are taken (see [`Unwind`]).
    pub fn unwind(mut self, unwind: Unwind) -> Profiler {
        self.unwind = unwind;
        self
    }

    /// The unwinding set.
    pub fn unwinding(&self) -> Unwind {
        self.unwind
    }

    /// Also reports where the targets' threads sleep: an
    /// [`OffCpuSample`](crate::OffCpuSample) for every sleep of at least
    /// `min` (1 µs to about 71 minutes), with the time it lasted and the
    /// stacks where it began (user stacks by the frame-pointer walk).
    pub fn off_cpu(mut self, min: std::time::Duration) -> Profiler {
        self.off_cpu = Some(min);
        self
    }

    /// The off-CPU threshold, when off-CPU samples are on.
    pub fn off_cpu_threshold(&self) -> Option<std::time::Duration> {
        self.off_cpu
    }

    /// Samples every process (kernel threads too), not just targets.
    pub fn all(mut self, on: bool) -> Profiler {
        self.all = on;
        self
    }

    /// Processes forked by a target become targets.
    pub fn children(mut self, on: bool) -> Profiler {
        self.children = on;
        self
    }

    /// Profiles this process (it must exist when the tracer starts).
    pub fn pid(mut self, pid: u32) -> Profiler {
        self.pids.push(pid);
        self
    }

    /// Profiles processes whose command name starts with `prefix` (1 to 15
    /// bytes): those running at start, and those that exec later.
    pub fn comm_prefix(mut self, prefix: impl AsRef<[u8]>) -> Profiler {
        self.comm_prefixes.push(prefix.as_ref().to_vec());
        self
    }
}

/// How the profiler takes user stacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unwind {
    /// The kernel walks frame pointers and reports each frame's raw
    /// address, which the symbolizer places with the process' mappings:
    /// the cheapest, but code built without frame pointers (most of a
    /// distribution's libraries, -O2 leaf functions) loses its callers.
    FramePointers,
    /// The kernel copies the user registers and the top of the user stack
    /// (the `stack_copy_max` cap, 16 KiB by default: set it with
    /// [`Config::data_cap`](crate::Config::data_cap)), and
    /// [`Symbolizer`](crate::profile::Symbolizer) unwinds it from the
    /// binaries' `.eh_frame` tables, as perf's `--call-graph dwarf` does:
    /// whole chains without frame pointers. The default.
    ///
    /// Either way the stream carries every process' mappings (mapping
    /// records: read from /proc at start, then the kernel's account of
    /// each fork, exec, executable mmap and exit), so a process gone
    /// before its samples are read still resolves.
    #[default]
    StackCopy,
}

/// Checks a command-name prefix the way the kernel's watch list needs it.
pub(crate) fn check_comm_prefix(prefix: &[u8]) -> Result<(), Error> {
    if prefix.is_empty() || prefix.len() >= sys::PT_COMM_LEN as usize || prefix.contains(&0) {
        return Err(Error::invalid(
            "profile.comm_prefix",
            format!(
                "{:?}: use 1 to 15 bytes without NUL (use Profiler::all to sample everything)",
                String::from_utf8_lossy(prefix)
            ),
        ));
    }
    Ok(())
}

impl Profiler {
    pub(super) fn fill_raw(&self, raw: &mut sys::proctap_config) -> Result<(), Error> {
        raw.events |= 1 << EventKind::Sample.id() | 1 << EventKind::Trigger.id();
        if self.hz == 0 {
            return Err(Error::invalid("profile.hz", "0 samples per second; use 1 to 999"));
        }
        raw.profile_hz = self.hz;
        raw.profile_all = u32::from(self.all);
        raw.profile_children = u32::from(self.children);
        if let Some(min) = self.off_cpu {
            let us = u32::try_from(min.as_micros()).ok().filter(|&us| us > 0).ok_or_else(|| {
                Error::invalid("profile.off_cpu", format!("{min:?}: give 1 µs to {} s", u32::MAX / 1_000_000))
            })?;
            raw.events |= 1 << EventKind::Offcpu.id();
            raw.offcpu_min_us = us;
        }
        // Copied stacks unwind with the process' mappings and raw
        // addresses resolve in them: the stream carries them, for
        // processes gone by then. Captures (Targets::mark_capture) may
        // come too.
        raw.events |= 1 << EventKind::Mapping.id() | 1 << EventKind::Capture.id();
        raw.profile_unwind = match self.unwind {
            Unwind::FramePointers => sys::PROCTAP_UNWIND_FP,
            Unwind::StackCopy => sys::PROCTAP_UNWIND_STACK_COPY,
        };
        for prefix in &self.comm_prefixes {
            check_comm_prefix(prefix)?;
        }
        if let Some(&pid) = self.pids.iter().find(|&&pid| pid == 0) {
            return Err(Error::invalid("profile.pid", format!("{pid} is not a process id")));
        }
        Ok(())
    }
}

impl SyntheticSource {
    pub(super) fn fill_raw(&self, raw: &mut sys::proctap_config) {
        raw.events |= 1 << EventKind::Synthetic.id();
        raw.synth_tgid = self.pid;
        let index = knob_index(SYNTH_PAYLOAD).expect("c/events/synthetic.toml declares the knob synth_payload");
        raw.knobs[index as usize] = self.payload_bytes;
        raw.knobs_set |= 1 << index;
        raw.synth_batch = self.events_per_trigger;
        raw.synth_ring_bytes = self.ring_bytes;
        raw.synth_transport = match self.transport {
            SyntheticTransport::Hybrid => sys::PROCTAP_SYNTH_HYBRID,
            SyntheticTransport::Ringbuf => sys::PROCTAP_SYNTH_RINGBUF,
            SyntheticTransport::Perfbuf => sys::PROCTAP_SYNTH_PERFBUF,
        };
    }
}
