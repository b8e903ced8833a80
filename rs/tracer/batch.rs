//! Batches and the buffer exchange with the poll thread.
//!
//! Buffers are allocated once at start. The poll thread fills one, sends it
//! as a `Batch` (or hands it to the handler), and takes the next from the
//! pool; dropping a `Batch` puts its buffer back. When the consumer holds
//! every buffer, the poll thread waits, the kernel's rings fill, and the
//! kernel counts what it must drop: back-pressure never blocks a traced
//! process and never loses silently.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, select, Receiver, Sender};

use crate::binding::{Buffer, Exchange, Instance};
use crate::error::Error;
use crate::event::{EventKind, Events};

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

    /// With [`Config::per_kind_batches`](crate::Config::per_kind_batches):
    /// the kind of every event in the batch (the [`Lost`](crate::Lost)
    /// reports of that kind included). None for a batch of mixed kinds.
    pub fn kind(&self) -> Option<EventKind> {
        self.buf.as_ref().and_then(|b| b.kind()).and_then(EventKind::from_id)
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

/// How long the final drain waits for the consumer to return a buffer.
const STOP_BUFFER_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Where the poll thread puts filled batches.
pub(super) enum Sink {
    /// The channel behind [`Tracer::events`].
    Channel(Sender<Batch>),
    /// The handler of [`Tracer::start_with_handler`], called on the poll
    /// thread (only that thread touches it), and what its panic said.
    Handler { handler: RefCell<Box<dyn FnMut(Batch) + Send>>, panicked: RefCell<Option<String>> },
    /// The channel behind [`super::BatchStream`].
    #[cfg(feature = "tokio")]
    Stream(tokio::sync::mpsc::Sender<Batch>),
}

/// The poll thread's side of the buffer exchange.
pub(super) struct Exchanger {
    pub(super) undelivered: Arc<AtomicU64>,
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
            // Also as many batches as buffers; fails only when dropped.
            #[cfg(feature = "tokio")]
            Sink::Stream(batches) => {
                if batches.try_send(batch).is_err() {
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
    pub(super) fn new(buffers: usize, bytes: usize, sink: Sink) -> (Exchanger, Sender<()>) {
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
    pub(super) fn run(&self, instance: &Instance) -> Result<(), Error> {
        let polled = instance.run(self);
        match &self.sink {
            Sink::Handler { panicked, .. } => match panicked.take() {
                Some(message) => Err(Error::HandlerPanicked { message }),
                None => polled,
            },
            _ => polled,
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
        self.send_as(records, count, None);
    }

    /// Like send, for a batch of one kind (as with per-kind batches).
    pub fn send_kind(&self, records: &[u8], count: u32, kind: EventKind) {
        self.send_as(records, count, Some(kind));
    }

    fn send_as(&self, records: &[u8], count: u32, kind: Option<EventKind>) {
        if let Some(mut buf) = self.exchanger.next_empty() {
            buf.fill_from(records, count);
            if let Some(kind) = kind {
                buf.set_kind(u32::from(kind.id()));
            }
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
    use crate::testing::RecordWriter;
    use crate::{Comm, Event, Exit, WallTime};

    fn exit(pid: u32) -> Event {
        Event::Exit(Exit {
            ts_ns: 1,
            time: WallTime::default(),
            pid,
            tid: pid,
            proc_start_ns: 0,
            ppid: 0,
            exit_code: 0,
            signal: None,
            core_dumped: false,
            start_ns: 0,
            duration_ns: 1,
            comm: Comm::new(b"x"),
            thread_exit: false,
        })
    }

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
            w.push(&exit(pid));
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
            w.push(&exit(pid));
        }
        let mut buf = Buffer::new(4096);
        buf.fill_from(w.bytes(), w.records() as u32);
        let (recycle, _pool) = bounded(1);
        let batch = Batch { buf: Some(buf), recycle };
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.iter().map(|e| e.pid()).collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
