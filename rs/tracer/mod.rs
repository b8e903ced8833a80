//! The running tracer: a poll thread, a pool of reusable batch buffers, and
//! the channel of filled [`Batch`]es (or a handler called on the poll
//! thread: [`Tracer::start_with_handler`], the lowest-latency path; or an
//! async stream: [`Tracer::start_stream`], with the `tokio` feature).

mod batch;
mod stats;
#[cfg(feature = "tokio")]
mod stream;
mod targets;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::binding::Instance;
use crate::config::Config;
use crate::error::Error;

pub use batch::{Batch, BatchPipe};
pub use stats::{KindStats, Stats};
#[cfg(feature = "tokio")]
pub use stream::BatchStream;
pub use targets::Targets;

use batch::{Exchanger, Sink};

/// State shared by the tracer, its poll thread and stop handles.
pub(crate) struct Shared {
    pub(crate) instance: Instance,
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

    /// Like [`Tracer::start`], but batches arrive on an async
    /// [`BatchStream`] for tokio tasks, and [`Tracer::events`] stays empty.
    /// The poll thread never waits on the stream: it holds as many batches as
    /// there are buffers, and a batch that finds the stream dropped is
    /// counted ([`Stats::undelivered`]). Starting loads the BPF programs
    /// and stopping (or dropping the tracer) joins the poll thread after a
    /// final drain: both block for milliseconds, so from a runtime call
    /// them in `spawn_blocking`.
    #[cfg(feature = "tokio")]
    pub fn start_stream(config: &Config) -> Result<(Tracer, BatchStream), Error> {
        // At least 1 (tokio's channel panics on 0): an invalid depth is
        // refused by launch's config check, as typed error.
        let (batches_tx, batches) = tokio::sync::mpsc::channel(config.batches_in_flight_resolved().max(1));
        let (_, events) = bounded(0);
        let tracer = Tracer::launch(config, Sink::Stream(batches_tx), events)?;
        Ok((tracer, BatchStream { batches }))
    }

    fn launch(config: &Config, sink: Sink, events: Receiver<Batch>) -> Result<Tracer, Error> {
        let checked = config.checked()?;
        let instance = Instance::open(&checked.raw)?;
        if let Some(profile) = config.profiler() {
            for &pid in &profile.pids {
                targets::add_target(&instance, pid)?;
            }
            for prefix in &profile.comm_prefixes {
                targets::watch_comm_prefix(&instance, prefix)?;
            }
        }

        let (exchanger, stop_tx) = Exchanger::new(config.batches_in_flight_resolved(), checked.batch_bytes, sink);
        let undelivered = exchanger.undelivered.clone();
        let shared = Arc::new(Shared { instance, stop_tx: Mutex::new(Some(stop_tx)), undelivered });
        let poll = shared.clone();
        let thread =
            std::thread::Builder::new().name("proctap-poll".into()).spawn(move || exchanger.run(&poll.instance))?;
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

    /// Stops copying the bytes of a connection (a `conn_id` of conn_open)
    /// into net_data events: for one an L7 consumer found nothing to parse
    /// on ([`crate::l7::Tracker::take_given_up`]). The kernel then only
    /// counts its bytes; conn_close still has the totals.
    pub fn give_up_connection(&self, conn_id: u64) -> Result<(), Error> {
        self.shared.instance.net_give_up(conn_id).map_err(|errno| Error::System {
            errno,
            message: match errno {
                22 => "giving up on a connection: net_data is off (Config::net_data)".to_string(),
                _ => format!("giving up on a connection: {}", std::io::Error::from_raw_os_error(errno)),
            },
        })
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
        thread
            .join()
            .unwrap_or_else(|_| Err(Error::System { errno: 0, message: "the proctap poll thread panicked".into() }))
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.join();
    }
}
