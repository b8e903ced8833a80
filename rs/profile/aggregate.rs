//! [`Profile`]: samples counted per stack, and the text/SVG outputs.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::sync::Arc;

use super::errors::{errno_name, SampleErrors, StackError};
use super::intern::Interner;
use super::symbolize::{Frame, Location, Symbolizer};
use crate::{Comm, OffCpuSample, StackSample, UserFrame};

/// Threads told apart by default (see [`Profile::max_threads`]).
const DEFAULT_MAX_THREADS: usize = 10_000;

/// Distinct stacks kept by default (see [`Profile::max_stacks`]).
const DEFAULT_MAX_STACKS: usize = 200_000;

/// Samples aggregated per distinct stack.
///
/// Each stack is rooted at the process' command name (optionally with its
/// pid, see [`pid_in_root`](Self::pid_in_root)), followed by the user frames
/// from the outermost, then the kernel frames (the kernel is the innermost
/// part, as perf shows it). Samples whose stacks are missing still count, under
/// a placeholder frame that says why (`[user stack unavailable: EFAULT]`,
/// `[kernel stack unavailable: ...]`, `[stack data lost]`), so totals match
/// the number of samples received.
///
/// Memory is bounded over long runs: locations, stacks and command names
/// are each stored once, a counted (thread, stack) costs a few integers,
/// and both the threads told apart and the distinct stacks have a cap
/// ([`max_threads`](Self::max_threads), [`max_stacks`](Self::max_stacks))
/// past which samples still count, with less detail.
#[derive(Debug)]
pub struct Profile {
    hz: u32,
    pid_in_root: bool,
    /// Every frame's location (pprof's location ids are these ids).
    pub(super) locations: Interner<Location>,
    /// Stacks of location ids, outermost (the root) first.
    stacks: Interner<[u32]>,
    comms: Interner<str>,
    /// What was counted per thread and stack.
    pub(super) counts: HashMap<Sampled, Tally>,
    /// Threads whose samples carry their pid and tid (at most `max_threads`).
    threads: HashSet<(u32, u32)>,
    max_threads: usize,
    max_stacks: usize,
    /// Samples counted under an over-the-cap stack.
    stacks_not_kept: u64,
    /// Samples per reason their stack is missing or cut short.
    errors: HashMap<StackError, u64>,
    samples: u64,
    /// An off-CPU profile: each stack also sums the time slept.
    pub(super) off_cpu: bool,
    pub(super) first_wall_ns: Option<i64>,
    first_ts_ns: Option<u64>,
    last_ts_ns: Option<u64>,
}

impl Profile {
    /// An empty profile of samples taken `hz` times per second (each sample
    /// stands for `1e9 / hz` ns of CPU time).
    pub fn new(hz: u32) -> Profile {
        Profile {
            hz: hz.max(1),
            pid_in_root: false,
            locations: Interner::default(),
            stacks: Interner::default(),
            comms: Interner::default(),
            counts: HashMap::new(),
            threads: HashSet::new(),
            max_threads: DEFAULT_MAX_THREADS,
            max_stacks: DEFAULT_MAX_STACKS,
            stacks_not_kept: 0,
            errors: HashMap::new(),
            samples: 0,
            off_cpu: false,
            first_wall_ns: None,
            first_ts_ns: None,
            last_ts_ns: None,
        }
    }

    /// An empty off-CPU profile: [`add_off_cpu`](Self::add_off_cpu) adds
    /// sleeps, each weighted by the time it lasted. Folded output and the
    /// flamegraph count microseconds slept; pprof has the sample types
    /// `samples/count` and `off-cpu/nanoseconds`.
    pub fn off_cpu() -> Profile {
        Profile { off_cpu: true, ..Profile::new(1) }
    }

    /// Symbolizes where a thread went to sleep and adds the time it slept.
    /// Returns what went wrong with its stacks, if anything.
    pub fn add_off_cpu<B: AsRef<[u8]>>(
        &mut self,
        sleep: &OffCpuSample<B>,
        symbolizer: &mut Symbolizer,
    ) -> SampleErrors {
        let mut errors = SampleErrors {
            kernel_stack: sleep.kernel_stack_error,
            user_stack: sleep.user_stack_error,
            data_lost: sleep.data_lost,
            unwind: None,
        };
        let thread = self.thread(sleep.pid, sleep.tid);
        let mut stack = vec![self.root(&sleep.comm, thread)];
        let words = |b: &[u8]| -> Vec<u64> {
            b.chunks_exact(8).map(|w| u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]))).collect()
        };
        if sleep.data_lost {
            stack.push(placeholder("[stack data lost]".into(), false));
        } else {
            if let Some(err) = sleep.user_stack_error {
                stack.push(placeholder(format!("[user stack unavailable: {}]", errno_name(err)), false));
            }
            let mut user: Vec<Arc<Location>> = words(sleep.user_stack.as_ref())
                .iter()
                .enumerate()
                .map(|(i, &address)| symbolizer.symbolize_user(sleep.pid, UserFrame::Address(address), i > 0))
                .collect();
            if sleep.user_ip != 0 {
                let regs = (sleep.user_ip, sleep.user_sp, sleep.user_bp);
                user.extend(symbolizer.symbolize_stack_copy(sleep.pid, regs, sleep.user_stack_copy.as_ref()));
                errors.unwind = user.last().and_then(|outermost| symbolizer.unwind_stop(outermost));
            }
            for location in user.into_iter().rev() {
                stack.push(location);
            }
            let kernel = words(sleep.kernel_stack.as_ref());
            let mut kernel: Vec<Arc<Location>> =
                kernel.iter().enumerate().map(|(i, &address)| symbolizer.symbolize_kernel(address, i > 0)).collect();
            // The innermost frames are the tracer's own (the program and the
            // tracepoint's call into it), not where the thread slept. The
            // program has no name once it is unloaded, so everything up to
            // the tracepoint's glue (a kernel function, always named) goes.
            let tracer = |l: &Arc<Location>| {
                let f = l.function();
                ["bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_"].iter().any(|p| f.starts_with(p))
            };
            let ours = kernel.iter().take(4).rposition(tracer).map_or(0, |i| i + 1);
            kernel.drain(..ours);
            for location in kernel.into_iter().rev() {
                stack.push(location);
            }
            if let Some(err) = sleep.kernel_stack_error {
                stack.push(placeholder(format!("[kernel stack unavailable: {}]", errno_name(err)), true));
            }
        }
        let key = self.key(&sleep.comm, thread, stack);
        self.count(key, sleep.blocked_ns, sleep.time.unix_ns, sleep.ts_ns);
        self.count_errors(errors)
    }

    fn count_errors(&mut self, errors: SampleErrors) -> SampleErrors {
        for error in errors.iter() {
            *self.errors.entry(error).or_default() += 1;
        }
        errors
    }

    /// How many samples met each [`StackError`], by error.
    pub fn stack_errors(&self) -> Vec<(StackError, u64)> {
        let mut errors: Vec<(StackError, u64)> = self.errors.iter().map(|(&e, &n)| (e, n)).collect();
        errors.sort();
        errors
    }

    /// Counts one sample of a thread's stack (that slept `blocked_ns`),
    /// taken at these times.
    fn count(&mut self, key: Sampled, blocked_ns: u64, wall_ns: i64, ts_ns: u64) {
        let tally = self.counts.entry(key).or_default();
        tally.samples += 1;
        tally.blocked_ns += blocked_ns;
        self.samples += 1;
        self.first_wall_ns = Some(self.first_wall_ns.map_or(wall_ns, |t| t.min(wall_ns)));
        self.first_ts_ns = Some(self.first_ts_ns.map_or(ts_ns, |t| t.min(ts_ns)));
        self.last_ts_ns = Some(self.last_ts_ns.map_or(ts_ns, |t| t.max(ts_ns)));
    }

    /// Off-CPU: ns slept in stacks that contain `function` anywhere.
    pub fn inclusive_blocked_ns(&self, function: &str) -> u64 {
        self.containing(function).map(|tally| tally.blocked_ns).sum()
    }

    /// The tallies of stacks that contain `function` anywhere.
    fn containing<'a>(&'a self, function: &'a str) -> impl Iterator<Item = &'a Tally> + 'a {
        self.counts
            .iter()
            .filter(move |(key, _)| {
                self.stack(key).iter().any(|&id| self.location(id).frames.iter().any(|f| &*f.function == function))
            })
            .map(|(_, tally)| tally)
    }

    /// What a tally counts for in folded output: samples, or (off-CPU)
    /// microseconds slept.
    fn folded_value(&self, tally: &Tally) -> u64 {
        if self.off_cpu {
            tally.blocked_ns / 1000
        } else {
            tally.samples
        }
    }

    /// How many threads' samples are told apart by pid and tid (pprof's
    /// `pid` and `tid` labels): 10 000 unless set. Samples of threads seen
    /// after that many carry their command name only, so that a long run
    /// through many short-lived processes keeps bounded memory.
    pub fn max_threads(mut self, threads: usize) -> Profile {
        self.max_threads = threads;
        self
    }

    /// The (pid, tid) a sample is counted under, while there is room.
    fn thread(&mut self, pid: u32, tid: u32) -> Option<(u32, u32)> {
        if self.threads.contains(&(pid, tid)) {
            return Some((pid, tid));
        }
        if self.threads.len() >= self.max_threads {
            return None;
        }
        self.threads.insert((pid, tid));
        Some((pid, tid))
    }

    /// Roots stacks at `comm-pid` instead of `comm`, separating processes
    /// that share a command name.
    pub fn pid_in_root(mut self, enabled: bool) -> Profile {
        self.pid_in_root = enabled;
        self
    }

    /// The sampling frequency given to [`new`](Self::new).
    pub fn hz(&self) -> u32 {
        self.hz
    }

    /// CPU time one sample stands for.
    pub fn period_ns(&self) -> u64 {
        1_000_000_000 / u64::from(self.hz)
    }

    /// Samples added so far.
    pub fn total_samples(&self) -> u64 {
        self.samples
    }

    /// Distinct (thread, stack) entries counted so far, and distinct
    /// locations: what the profile holds in memory (see also
    /// [`distinct_stacks`](Self::distinct_stacks)).
    pub fn size(&self) -> (usize, usize) {
        (self.counts.len(), self.locations.len())
    }

    /// Distinct stacks held, whichever threads they were counted for.
    pub fn distinct_stacks(&self) -> usize {
        self.stacks.len()
    }

    /// Symbolizes a sample's stacks and counts it. Returns what went wrong
    /// with its stacks, if anything (also counted: [`stack_errors`](Self::stack_errors)).
    pub fn add<B: AsRef<[u8]>>(&mut self, sample: &StackSample<B>, symbolizer: &mut Symbolizer) -> SampleErrors {
        let mut errors = SampleErrors {
            kernel_stack: sample.kernel_stack_error,
            user_stack: sample.user_stack_error,
            data_lost: sample.data_lost,
            unwind: None,
        };
        let thread = self.thread(sample.pid, sample.tid);
        let mut stack = vec![self.root(&sample.comm, thread)];
        if sample.data_lost {
            stack.push(placeholder("[stack data lost]".into(), false));
        } else {
            if let Some(err) = sample.user_stack_error {
                stack.push(placeholder(format!("[user stack unavailable: {}]", errno_name(err)), false));
            }
            let innermost_first = symbolizer.symbolize_sample(sample);
            errors.unwind = innermost_first.last().and_then(|outermost| symbolizer.unwind_stop(outermost));
            for location in innermost_first.into_iter().rev() {
                stack.push(location);
            }
            if let Some(err) = sample.kernel_stack_error {
                stack.push(placeholder(format!("[kernel stack unavailable: {}]", errno_name(err)), true));
            }
        }
        let key = self.key(&sample.comm, thread, stack);
        self.count(key, 0, sample.time.unix_ns, sample.ts_ns);
        self.count_errors(errors)
    }

    /// The root frame: the command name, with the pid when
    /// [`pid_in_root`](Self::pid_in_root) is on and the thread is told apart.
    fn root(&self, comm: &Comm, thread: Option<(u32, u32)>) -> Arc<Location> {
        let comm = String::from_utf8_lossy(comm.as_bytes());
        let root = match thread {
            Some((pid, _)) if self.pid_in_root => format!("{comm}-{pid}"),
            _ => comm.into_owned(),
        };
        placeholder(root, false)
    }

    /// Where a sample is counted: its thread and stack, or past
    /// [`max_stacks`](Self::max_stacks), its bare command name and a frame
    /// that says the stack was not kept (without pid and tid). Nothing of a
    /// stack that is not kept is stored, its locations included.
    fn key(&mut self, comm: &Comm, thread: Option<(u32, u32)>, stack: Vec<Arc<Location>>) -> Sampled {
        let name = String::from_utf8_lossy(comm.as_bytes());
        let comm = self.comms.intern(&*name);
        // A stack whose locations are all known may be known too; one with a
        // new location is new.
        let known: Option<Vec<u32>> = stack.iter().map(|l| self.locations.get(l)).collect();
        if let Some(id) = known.as_ref().and_then(|ids| self.stacks.get(ids)) {
            return Sampled { comm, thread, stack: id };
        }
        if self.stacks.len() < self.max_stacks {
            let ids: Vec<u32> = stack.into_iter().map(|l| self.locations.intern_arc(l)).collect();
            return Sampled { comm, thread, stack: self.stacks.intern_arc(ids.into()) };
        }
        self.stacks_not_kept += 1;
        let root = self.locations.intern_arc(placeholder(name.into_owned(), false));
        let marker = self.locations.intern_arc(placeholder(NOT_KEPT.into(), false));
        Sampled { comm, thread: None, stack: self.stacks.intern(&[root, marker][..]) }
    }

    /// How many distinct stacks are kept (200 000 unless set). A sample whose
    /// stack is new once the profile holds that many is counted under its
    /// command name and `[stack not kept: ...]`, without pid and tid, so
    /// totals stay exact and memory stays bounded however many distinct
    /// stacks a long run meets (those marker stacks add one per command name).
    pub fn max_stacks(mut self, stacks: usize) -> Profile {
        self.max_stacks = stacks;
        self
    }

    /// Samples counted under `[stack not kept: ...]` (see
    /// [`max_stacks`](Self::max_stacks)).
    pub fn stacks_not_kept(&self) -> u64 {
        self.stacks_not_kept
    }

    /// The counted stack of a key: location ids, outermost first.
    pub(super) fn stack(&self, key: &Sampled) -> &[u32] {
        self.stacks.resolve(key.stack)
    }

    /// The command name of a key.
    pub(super) fn comm(&self, key: &Sampled) -> &str {
        self.comms.resolve(key.comm)
    }

    pub(super) fn location(&self, id: u32) -> &Location {
        self.locations.resolve(id)
    }

    /// Wall-clock span from the first to the last sample.
    pub(super) fn duration_ns(&self) -> u64 {
        match (self.first_ts_ns, self.last_ts_ns) {
            (Some(first), Some(last)) => last - first,
            _ => 0,
        }
    }

    /// One line per distinct stack of names, `root;outer;...;inner count`,
    /// sorted. Stacks that differ only in addresses within the same
    /// functions, or only in the thread, are one line: folded stacks name
    /// functions, not addresses.
    fn folded_lines(&self) -> Vec<String> {
        let mut merged: HashMap<String, u64> = HashMap::new();
        for (key, tally) in &self.counts {
            let mut line = String::new();
            for &id in self.stack(key) {
                let location = self.location(id);
                for frame in location.frames.iter().rev() {
                    if !line.is_empty() {
                        line.push(';');
                    }
                    line.extend(frame.function.chars().map(|c| match c {
                        ';' => ':',
                        '\n' | '\r' => ' ',
                        c => c,
                    }));
                    if location.kernel {
                        line.push_str("_[k]");
                    }
                }
            }
            *merged.entry(line).or_default() += self.folded_value(tally);
        }
        let mut lines: Vec<String> = merged
            .into_iter()
            .filter(|&(_, count)| count > 0)
            .map(|(stack, count)| format!("{stack} {count}"))
            .collect();
        lines.sort();
        lines
    }

    /// Writes Brendan Gregg's folded stack format: one line per distinct
    /// stack, `root;outermost;...;innermost COUNT`, sorted. Function names
    /// only; kernel functions end in `_[k]`, inlined functions are frames
    /// of their own.
    pub fn write_folded(&self, out: &mut impl Write) -> io::Result<()> {
        for line in self.folded_lines() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// Writes a flamegraph SVG (inferno); with no samples, an SVG that says so.
    pub fn write_flamegraph(&self, out: &mut impl Write) -> io::Result<()> {
        let lines = self.folded_lines();
        if lines.is_empty() {
            return writeln!(
                out,
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40"><text x="10" y="25">CPU profile: no samples at {} Hz</text></svg>"#,
                self.hz
            );
        }
        let mut options = inferno::flamegraph::Options::default();
        if self.off_cpu {
            options.title = "Off-CPU profile".into();
            options.subtitle = Some(format!("{} sleeps", self.samples));
            options.count_name = "µs".into();
        } else {
            options.title = "CPU profile".into();
            options.subtitle = Some(format!("{} samples at {} Hz", self.samples, self.hz));
            options.count_name = "samples".into();
        }
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
    }

    /// Writes a gzip-compressed pprof profile (`perftools.profiles.Profile`),
    /// as `go tool pprof` and other pprof readers open it: sample types
    /// `samples/count` and `cpu/nanoseconds`.
    pub fn write_pprof(&self, out: &mut impl Write) -> io::Result<()> {
        super::pprof::write(self, out)
    }

    /// Functions by the number of samples in which they were the innermost
    /// frame, hottest first (ties by name). Names as in [`Frame::function`],
    /// without the `_[k]` suffix.
    pub fn functions_by_self_samples(&self) -> Vec<(String, u64)> {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for (key, tally) in &self.counts {
            if let Some(frame) = self.stack(key).last().and_then(|&id| self.location(id).frames.first()) {
                *counts.entry(&frame.function).or_insert(0) += tally.samples;
            }
        }
        let mut out: Vec<(String, u64)> = counts.into_iter().map(|(f, c)| (f.to_string(), c)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Samples whose stack contains `function` anywhere (each sample counted once).
    pub fn inclusive_samples(&self, function: &str) -> u64 {
        self.containing(function).map(|tally| tally.samples).sum()
    }
}

/// What one count is kept under: ids into the profile's interners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Sampled {
    /// The command name ([`Profile::comm`]).
    comm: u32,
    /// (pid, tid); `None` past [`Profile::max_threads`] or
    /// [`Profile::max_stacks`].
    pub thread: Option<(u32, u32)>,
    /// The stack ([`Profile::stack`]).
    stack: u32,
}

/// What was counted of one [`Sampled`] stack.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Tally {
    pub samples: u64,
    /// Off-CPU: ns slept.
    pub blocked_ns: u64,
}

/// The frame under which samples of stacks past the cap are counted.
const NOT_KEPT: &str = "[stack not kept: the profile holds max_stacks stacks]";

/// A frame that is no code address: the root or a missing-stack marker.
fn placeholder(name: String, kernel: bool) -> Arc<Location> {
    let frames = vec![Frame { function: name.into(), file: None, line: None }];
    Arc::new(Location { kernel, module: None, build_id: None, address: 0, frames, symbolized: false })
}
