//! The running tracer: a poll thread, a pool of reusable batch buffers, and
//! the channel of filled [`Batch`]es.
//!
//! Buffers are allocated once at start. The poll thread fills one, sends it
//! as a `Batch`, and takes the next from the pool; dropping a `Batch` puts
//! its buffer back. When the consumer holds every buffer, the poll thread
//! waits, the kernel's rings fill, and the kernel counts what it must drop:
//! back-pressure never blocks a traced process and never loses silently.
//! [`Tracer::start_with_handler`] skips the channel: the poll thread calls
//! the handler with each batch (the lowest-latency path).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, select, Receiver, Sender};
use parking_lot::Mutex;
use serde::Serialize;

use crate::binding::{sys, Buffer, Exchange, Instance};
use crate::config::Config;
use crate::error::Error;
use crate::event::Events;

/// A filled buffer of events. Iterate it for borrowed [`Event`](crate::Event)
/// views; drop it to recycle the buffer.
pub struct Batch {
    buf: Option<Box<Buffer>>,
    recycle: Sender<Box<Buffer>>,
}

impl Batch {
    /// The events, borrowed from this batch.
    pub fn iter(&self) -> Events<'_> {
        match &self.buf {
            Some(buf) => Events::new(buf.bytes(), buf.realtime_offset_ns()),
            None => Events::new(&[], 0),
        }
    }

    /// Number of records in the batch.
    pub fn len(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.records() as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = crate::Event<&'a [u8]>;
    type IntoIter = Events<'a>;

    fn into_iter(self) -> Events<'a> {
        self.iter()
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            // The pool has room for every buffer; after the tracer is gone
            // the send fails and the buffer is freed.
            let _ = self.recycle.try_send(buf);
        }
    }
}

/// Counters of everything produced, delivered and lost. Every event the
/// kernel saw ends in exactly one of: delivered, meta_lost (not even its
/// metadata fit), or the in-flight/undelivered counters at stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KindStats {
    /// Records the kernel submitted.
    pub emitted: u64,
    /// Records appended to a batch.
    pub delivered: u64,
    /// Metadata ring full: the event is lost entirely (reserve failure).
    pub meta_lost: u64,
    /// Data pages full: the record was delivered without its data.
    pub data_lost: u64,
}

impl KindStats {
    fn is_zero(&self) -> bool {
        *self == KindStats::default()
    }
}

/// Snapshot of a tracer's counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub exec: KindStats,
    pub exit: KindStats,
    /// The synthetic source (benchmarks, self-tests).
    #[serde(skip_serializing_if = "KindStats::is_zero")]
    pub synthetic: KindStats,
    /// Exec events whose argv exceeded the cap.
    pub argv_truncated: u64,
    /// Exec events whose argv could not be read.
    pub argv_fault: u64,
    /// Bytes written into the data pages.
    pub data_bytes: u64,
    /// Records that failed validation and were skipped (a bug if nonzero).
    pub invalid: u64,
    /// Records larger than a batch buffer (impossible with a valid config).
    pub oversize: u64,
    /// Records read at stop with no free buffer left to put them in.
    pub abandoned: u64,
    /// Data spans the consumer could not release (a bug if nonzero).
    pub ring_stalls: u64,
    /// Events in batches sent after every receiver was dropped.
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
    /// Stack samples.
    #[serde(skip_serializing_if = "KindStats::is_zero")]
    pub sample: KindStats,
    /// Processes the kernel started profiling (watched prefix or child).
    #[serde(skip_serializing_if = "KindStats::is_zero")]
    pub trigger: KindStats,
    /// Samples whose kernel stack could not be walked.
    pub kernel_stack_errors: u64,
    /// Samples whose user stack could not be walked.
    pub user_stack_errors: u64,
    /// Processes not profiled because the target filter was full.
    pub targets_full: u64,
    /// Sampling timers attached (one per online CPU when profiling).
    pub perf_events: u64,
    /// Records whose data arrived ahead of an earlier record's on the same
    /// CPU: one program ran nested inside another (a sample taken while a
    /// tracepoint program ran). Each was released in order; this only counts.
    pub nested: u64,
}

impl Stats {
    /// Events delivered to the consumer.
    pub fn events(&self) -> u64 {
        self.kinds().map(|k| k.delivered).sum()
    }

    fn kinds(&self) -> impl Iterator<Item = &KindStats> {
        [&self.exec, &self.exit, &self.synthetic, &self.sample, &self.trigger].into_iter()
    }

    /// Events delivered without their variable data.
    pub fn dropped_data(&self) -> u64 {
        self.kinds().map(|k| k.data_lost).sum()
    }

    /// Events lost because the metadata ring was full.
    pub fn reserve_failures(&self) -> u64 {
        self.kinds().map(|k| k.meta_lost).sum()
    }

    fn from_raw(raw: &sys::proctap_stats, undelivered: u64) -> Stats {
        let kind = |k: u32| {
            let k = k as usize;
            KindStats {
                emitted: raw.emitted[k],
                delivered: raw.delivered[k],
                meta_lost: raw.meta_lost[k],
                data_lost: raw.data_lost[k],
            }
        };
        Stats {
            exec: kind(sys::PT_KIND_EXEC),
            exit: kind(sys::PT_KIND_EXIT),
            synthetic: kind(sys::PT_KIND_SYNTH),
            argv_truncated: raw.argv_truncated,
            argv_fault: raw.argv_fault,
            data_bytes: raw.data_bytes,
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
            sample: kind(sys::PT_KIND_SAMPLE),
            trigger: kind(sys::PT_KIND_TRIGGER),
            kernel_stack_errors: raw.kstack_err,
            user_stack_errors: raw.ustack_err,
            targets_full: raw.targets_full,
            perf_events: raw.perf_events,
            nested: raw.nested,
        }
    }
}

/// How long the final drain waits for the consumer to return a buffer.
const STOP_BUFFER_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// State shared by the tracer, its poll thread and stop handles.
struct Shared {
    instance: Instance,
    /// Dropped to wake a poll thread that waits for a free buffer.
    stop_tx: Mutex<Option<Sender<()>>>,
    undelivered: Arc<AtomicU64>,
}

impl Shared {
    fn stop(&self) {
        self.stop_tx.lock().take();
        self.instance.stop();
    }
}

/// Where the poll thread puts filled batches.
enum Sink {
    /// The channel behind [`Tracer::events`].
    Channel(Sender<Batch>),
    /// The handler of [`Tracer::start_with_handler`], called on the poll
    /// thread (only that thread touches it), and what its panic said.
    Handler { handler: RefCell<Box<dyn FnMut(Batch) + Send>>, panicked: RefCell<Option<String>> },
}

/// The poll thread's side of the buffer exchange.
struct Exchanger {
    undelivered: Arc<AtomicU64>,
    pool: Receiver<Box<Buffer>>,
    recycle: Sender<Box<Buffer>>,
    sink: Sink,
    stop: Receiver<()>,
}

impl Exchange for Exchanger {
    fn filled(&self, buf: Box<Buffer>) {
        let records = u64::from(buf.records());
        let batch = Batch { buf: Some(buf), recycle: self.recycle.clone() };
        if records == 0 {
            return; // dropping it recycles the buffer
        }
        match &self.sink {
            // The channel holds as many batches as there are buffers: no wait.
            Sink::Channel(events) => {
                if events.try_send(batch).is_err() {
                    self.undelivered.fetch_add(records, Ordering::Relaxed);
                }
            }
            Sink::Handler { handler, panicked } => {
                if self.handler_panicked() {
                    self.undelivered.fetch_add(records, Ordering::Relaxed);
                    return;
                }
                // A panic must not unwind into the C poll loop: keep it, count
                // the batch as undelivered (the handler may have seen part of
                // it) and stop polling (next_empty).
                let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (handler.borrow_mut())(batch)));
                if let Err(payload) = call {
                    self.undelivered.fetch_add(records, Ordering::Relaxed);
                    *panicked.borrow_mut() = Some(panic_message(&*payload));
                }
            }
        }
    }

    fn next_empty(&self) -> Option<Box<Buffer>> {
        if self.handler_panicked() {
            return None;
        }
        if let Ok(buf) = self.pool.try_recv() {
            return Some(buf);
        }
        select! {
            recv(self.pool) -> buf => buf.ok(),
            // Stopping: a consumer still reading returns buffers soon; one
            // that stopped reading gets the rest counted as abandoned.
            recv(self.stop) -> _ => self.pool.recv_timeout(STOP_BUFFER_WAIT).ok(),
        }
    }
}

impl Exchanger {
    /// `buffers` pooled buffers of `bytes` each, feeding `sink`; dropping the
    /// returned sender wakes a poll thread that waits for a buffer.
    fn new(buffers: usize, bytes: usize, sink: Sink) -> (Exchanger, Sender<()>) {
        let (recycle, pool) = bounded(buffers);
        for _ in 0..buffers {
            let _ = recycle.try_send(Buffer::new(bytes));
        }
        let (stop_tx, stop) = bounded(0);
        let undelivered = Arc::new(AtomicU64::new(0));
        (Exchanger { undelivered, pool, recycle, sink, stop }, stop_tx)
    }

    fn handler_panicked(&self) -> bool {
        matches!(&self.sink, Sink::Handler { panicked, .. } if panicked.borrow().is_some())
    }

    /// The poll loop, then the handler's panic if there was one.
    fn run(&self, instance: &Instance) -> Result<(), Error> {
        let polled = instance.run(self);
        match &self.sink {
            Sink::Handler { panicked, .. } => match panicked.take() {
                Some(message) => Err(Error::HandlerPanicked { message }),
                None => polled,
            },
            Sink::Channel(_) => polled,
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".into()
    }
}

/// The profiler's targets of a running tracer ([`Tracer::targets`]).
/// Operations on a stopped tracer, or one started without
/// [`Config::profile`](crate::Config::profile), fail with [`Error::Target`].
#[derive(Clone)]
pub struct Targets {
    shared: Weak<Shared>,
}

impl Targets {
    /// Profiles process `pid` from now on, until it exits. Fails when it
    /// does not exist (or exits meanwhile), is a thread of another process,
    /// or the filter is full.
    pub fn add_pid(&self, pid: u32) -> Result<(), Error> {
        add_target(&self.instance(&pid)?.instance, pid)
    }

    /// Stops profiling `pid`; false when it was not a target.
    pub fn remove_pid(&self, pid: u32) -> Result<bool, Error> {
        match self.instance(&pid)?.instance.target_remove(pid) {
            Ok(()) => Ok(true),
            Err(ENOENT) => Ok(false),
            Err(errno) => Err(target_error(&pid, errno, "removing it from the filter")),
        }
    }

    /// The processes profiled now, in no order.
    pub fn pids(&self) -> Result<Vec<u32>, Error> {
        let shared = self.instance(&"list")?;
        shared.instance.targets().map_err(|errno| target_error(&"list", errno, "listing the filter"))
    }

    /// Profiles processes whose command name starts with `prefix` (1 to 15
    /// bytes): those that exec from now on are added in the kernel (with a
    /// [`Trigger`](crate::Trigger) event); those running now are found by a
    /// /proc scan and returned.
    pub fn add_comm_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<u32>, Error> {
        let prefix = prefix.as_ref();
        watch_comm_prefix(&self.instance(&String::from_utf8_lossy(prefix))?.instance, prefix)
    }

    /// Stops adding processes for `prefix`; targets it added stay until they
    /// exit or are removed. False when the prefix was not watched.
    pub fn remove_comm_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<bool, Error> {
        let prefix = prefix.as_ref();
        let name = String::from_utf8_lossy(prefix);
        crate::config::check_comm_prefix(prefix)?;
        match self.instance(&name)?.instance.watch_remove(prefix) {
            Ok(()) => Ok(true),
            Err(ENOENT) => Ok(false),
            Err(errno) => Err(target_error(&name, errno, "removing it from the watch list")),
        }
    }

    fn instance(&self, target: &dyn std::fmt::Display) -> Result<Arc<Shared>, Error> {
        self.shared.upgrade().ok_or_else(|| Error::Target {
            target: target.to_string(),
            errno: ESRCH,
            message: "the tracer has stopped".into(),
        })
    }
}

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EINVAL: i32 = 22;
const E2BIG: i32 = 7;

fn target_error(target: &dyn std::fmt::Display, errno: i32, doing: &str) -> Error {
    let message = match errno {
        ESRCH => "no such process (it may have exited)".to_string(),
        E2BIG => format!("the target filter is full ({} processes); remove some first", sys::PT_TARGETS_MAX),
        EINVAL => "not possible here: is this tracer profiling (Config::profile), and is this a process id rather than a thread id?".to_string(),
        _ => format!("{doing}: {}", std::io::Error::from_raw_os_error(errno)),
    };
    Error::Target { target: target.to_string(), errno, message }
}

fn add_target(instance: &Instance, pid: u32) -> Result<(), Error> {
    instance.target_add(pid).map_err(|errno| target_error(&pid, errno, "adding it to the filter"))
}

/// Watches a prefix in the kernel first, then scans /proc: a process that
/// execs in between is caught by one or the other (adding twice is a no-op).
fn watch_comm_prefix(instance: &Instance, prefix: &[u8]) -> Result<Vec<u32>, Error> {
    let name = String::from_utf8_lossy(prefix);
    crate::config::check_comm_prefix(prefix)?;
    instance.watch_add(prefix).map_err(|errno| target_error(&name, errno, "adding it to the watch list"))?;
    let mut found = Vec::new();
    let proc_dir = std::fs::read_dir("/proc")
        .map_err(|e| Error::System { errno: e.raw_os_error().unwrap_or(0), message: format!("scanning /proc: {e}") })?;
    for entry in proc_dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(comm) = std::fs::read(entry.path().join("comm")) else { continue };
        let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
        if !comm.starts_with(prefix) {
            continue;
        }
        match instance.target_add(pid) {
            Ok(()) => found.push(pid),
            Err(ESRCH) => {} // exited since the scan read it
            Err(errno) => return Err(target_error(&pid, errno, "adding it to the filter")),
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// A running tracer. Events arrive as [`Batch`]es on [`Tracer::events`].
/// Dropping it (or [`Tracer::stop`]) detaches every BPF program.
pub struct Tracer {
    shared: Arc<Shared>,
    events: Receiver<Batch>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

/// Stops a tracer from another thread or a signal-handling thread.
#[derive(Clone)]
pub struct StopHandle {
    shared: Weak<Shared>,
}

impl StopHandle {
    /// Asks the tracer to stop after a final drain; its event channel then
    /// closes. Does nothing if the tracer is gone.
    pub fn stop(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.stop();
        }
    }
}

impl Tracer {
    /// Loads and attaches the BPF programs and starts the poll thread, which
    /// sends filled batches to [`Tracer::events`].
    pub fn start(config: &Config) -> Result<Tracer, Error> {
        let (events_tx, events) = bounded(config.batches_in_flight_resolved());
        Tracer::launch(config, Sink::Channel(events_tx), events)
    }

    /// Like [`Tracer::start`], but the poll thread calls `handler` with each
    /// filled batch instead of sending it through a channel, and
    /// [`Tracer::events`] stays empty. No hand-off to another thread: with
    /// [`Config::busy_poll`] this is the lowest-latency path, one CPU kept
    /// busy in all. The handler should be quick; a slow one delays polling,
    /// the kernel's rings fill and their losses are counted. Batches it keeps
    /// (or sends elsewhere) come back to the pool when dropped; while it holds
    /// every buffer, polling waits.
    pub fn start_with_handler(config: &Config, handler: impl FnMut(Batch) + Send + 'static) -> Result<Tracer, Error> {
        let (_, events) = bounded(0);
        let sink = Sink::Handler { handler: RefCell::new(Box::new(handler)), panicked: RefCell::new(None) };
        Tracer::launch(config, sink, events)
    }

    fn launch(config: &Config, sink: Sink, events: Receiver<Batch>) -> Result<Tracer, Error> {
        config.validate()?;
        let raw = config.to_raw()?;
        let instance = Instance::open(&raw)?;
        if let Some(profile) = config.profiler() {
            for &pid in &profile.pids {
                add_target(&instance, pid)?;
            }
            for prefix in &profile.comm_prefixes {
                watch_comm_prefix(&instance, prefix)?;
            }
        }

        let (exchanger, stop_tx) =
            Exchanger::new(config.batches_in_flight_resolved(), config.batch_bytes_resolved(), sink);
        let undelivered = exchanger.undelivered.clone();
        let shared = Arc::new(Shared { instance, stop_tx: Mutex::new(Some(stop_tx)), undelivered });
        let poll = shared.clone();
        let thread = std::thread::Builder::new()
            .name("proctap-poll".into())
            .spawn(move || exchanger.run(&poll.instance))?;
        Ok(Tracer { shared, events, thread: Some(thread) })
    }

    /// The stream of batches. Clone it freely; it closes after stop. Always
    /// empty for a tracer started with [`Tracer::start_with_handler`].
    pub fn events(&self) -> &Receiver<Batch> {
        &self.events
    }

    /// A handle that can stop this tracer from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle { shared: Arc::downgrade(&self.shared) }
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        Stats::from_raw(&self.shared.instance.stats(), self.shared.undelivered.load(Ordering::Relaxed))
    }

    /// The profiler's targets, to change while tracing (from any thread).
    pub fn targets(&self) -> Targets {
        Targets { shared: Arc::downgrade(&self.shared) }
    }

    /// Kernel ids of this tracer's BPF programs.
    pub fn prog_ids(&self) -> Vec<u32> {
        self.shared.instance.prog_ids()
    }

    /// Stops after a final drain and returns the final counters. Batches
    /// already sent stay readable from cloned receivers.
    pub fn stop(mut self) -> Result<Stats, Error> {
        self.join()?;
        Ok(self.stats())
    }

    fn join(&mut self) -> Result<(), Error> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        self.shared.stop();
        thread.join().unwrap_or_else(|_| {
            Err(Error::System { errno: 0, message: "the proctap poll thread panicked".into() })
        })
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// The pooled batch path without a kernel: a free buffer is filled, sent as
/// a Batch, and recycled when the Batch drops. For tests and benchmarks.
#[doc(hidden)]
pub struct BatchPipe {
    exchanger: Exchanger,
    events: Receiver<Batch>,
    _stop: Sender<()>,
}

impl BatchPipe {
    pub fn new(buffers: usize, bytes: usize) -> BatchPipe {
        let (events_tx, events) = bounded(buffers);
        let (exchanger, stop) = Exchanger::new(buffers, bytes, Sink::Channel(events_tx));
        BatchPipe { exchanger, events, _stop: stop }
    }

    /// Copies records into a pooled buffer and sends it, as the poll loop does.
    pub fn send(&self, records: &[u8], count: u32) {
        if let Some(mut buf) = self.exchanger.next_empty() {
            buf.fill_from(records, count);
            self.exchanger.filled(buf);
        }
    }

    pub fn events(&self) -> &Receiver<Batch> {
        &self.events
    }
}

#[cfg(test)]
mod pool {
    use super::*;
    use crate::testing::{Common, RecordWriter};

    #[test]
    fn dropping_a_batch_returns_its_buffer_and_reuses_the_allocation() {
        let (recycle, pool) = bounded::<Box<Buffer>>(2);
        recycle.send(Buffer::new(4096)).unwrap();
        let buf = pool.try_recv().unwrap();
        let addr = buf.bytes().as_ptr();
        let batch = Batch { buf: Some(buf), recycle: recycle.clone() };
        assert!(pool.try_recv().is_err(), "the buffer is lent to the batch");
        drop(batch);
        let back = pool.try_recv().expect("buffer back in the pool");
        assert_eq!(back.bytes().as_ptr(), addr, "the same allocation comes back");
    }

    fn exchanger(buffers: usize) -> (Exchanger, Receiver<Batch>, Sender<()>) {
        let (events_tx, events) = bounded(buffers);
        let (ex, stop_tx) = Exchanger::new(buffers, 1024, Sink::Channel(events_tx));
        (ex, events, stop_tx)
    }

    fn filled_buffer(ex: &Exchanger, pids: std::ops::Range<u32>) -> Box<Buffer> {
        let mut w = RecordWriter::new();
        for pid in pids {
            w.exit(Common { pid, tid: pid, ts_ns: 1, flags: 0 }, 0, b"x", 0, 0);
        }
        let mut buf = ex.next_empty().expect("a free buffer");
        buf.fill_from(w.bytes(), w.records() as u32);
        buf
    }

    #[test]
    fn exchanger_sends_filled_batches_and_recycles_empty_buffers() {
        let (ex, events, _stop) = exchanger(2);
        let empty = ex.next_empty().unwrap();
        ex.filled(empty); // no records: straight back to the pool
        assert!(events.try_recv().is_err());
        let buf = filled_buffer(&ex, 1..4);
        ex.filled(buf);
        let batch = events.try_recv().expect("a batch");
        assert_eq!(batch.iter().map(|e| e.pid()).collect::<Vec<_>>(), vec![1, 2, 3]);
        // Both buffers are lendable again once the batch is dropped.
        let one = ex.next_empty().unwrap();
        drop(batch);
        let two = ex.next_empty().unwrap();
        drop((one, two));
    }

    #[test]
    fn exchanger_waits_for_the_consumer_and_wakes_on_stop() {
        let (ex, events, stop) = exchanger(2);
        let a = filled_buffer(&ex, 1..2);
        let b = filled_buffer(&ex, 2..3);
        ex.filled(a);
        ex.filled(b);
        // The consumer holds both buffers: the next request waits until stop.
        let waiter = std::thread::spawn(move || ex.next_empty().is_none());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "must wait while the consumer holds every buffer");
        drop(stop);
        assert!(waiter.join().unwrap(), "stop ends the wait without a buffer");
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn exchanger_counts_events_nobody_can_receive() {
        let (ex, events, _stop) = exchanger(2);
        drop(events);
        let buf = filled_buffer(&ex, 1..6);
        ex.filled(buf);
        assert_eq!(ex.undelivered.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn batch_iterates_records_written_into_its_buffer() {
        let mut w = RecordWriter::new();
        for pid in 1..=3 {
            w.exit(Common { pid, tid: pid, ts_ns: 1, flags: 0 }, 0, b"x", 0, 0);
        }
        let mut buf = Buffer::new(4096);
        buf.fill_from(w.bytes(), w.records() as u32);
        let (recycle, _pool) = bounded(1);
        let batch = Batch { buf: Some(buf), recycle };
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.iter().map(|e| e.pid()).collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
