//! Stopping a tracer on SIGINT or SIGTERM, including a signal that arrives
//! while the tracer is still starting, or after a duration. Shared by the
//! `proctap` command and the `dump` and `profile` examples.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proctap::StopHandle;

/// What runs before the tracer is stopped.
type BeforeStop = Box<dyn FnOnce() + Send>;

/// Stops the tracer on SIGINT or SIGTERM. Install it before starting the
/// tracer: a signal that comes first is remembered, and `arm` stops the
/// tracer at once.
#[derive(Clone, Default)]
pub struct Stopper {
    signalled: Arc<AtomicBool>,
    handle: Arc<Mutex<Option<StopHandle>>>,
    /// Run once, before the tracer is told to stop.
    before: Arc<Mutex<Option<BeforeStop>>>,
}

impl Stopper {
    pub fn install(tool: &str) -> Stopper {
        let stopper = Stopper::default();
        let on_signal = stopper.clone();
        if let Err(err) = ctrlc::set_handler(move || on_signal.stop()) {
            eprintln!("{tool}: cannot handle SIGINT and SIGTERM: {err}");
        }
        stopper
    }

    /// Hands over the tracer's stop handle; stops at once if a signal came.
    pub fn arm(&self, handle: StopHandle) {
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        if self.signalled.load(Ordering::SeqCst) {
            self.stop();
        }
    }

    /// Runs `f` once before stopping the tracer (what must still reach the
    /// stream). Set it before `arm`.
    pub fn before_stop(&self, f: impl FnOnce() + Send + 'static) {
        *self.before.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    pub fn stop(&self) {
        self.signalled.store(true, Ordering::SeqCst);
        if let Some(f) = self.before.lock().unwrap_or_else(|e| e.into_inner()).take() {
            f();
        }
        if let Some(handle) = self.handle.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            handle.stop();
        }
    }

    /// Stops after `duration` (at once for zero), from a timer thread.
    pub fn after(&self, duration: Duration) {
        if duration.is_zero() {
            self.stop();
            return;
        }
        let stopper = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            stopper.stop();
        });
    }
}
