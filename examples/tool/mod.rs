//! What the command-line examples share: arguments as bytes (command names
//! need not be UTF-8), and stopping on SIGINT or SIGTERM, including a signal
//! that arrives while the tracer is still starting.
#![allow(dead_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proctap::StopHandle;

/// The command line after the program name, as bytes-capable strings.
pub struct Args {
    rest: std::vec::IntoIter<OsString>,
    usage: &'static str,
}

impl Args {
    pub fn new(usage: &'static str) -> Args {
        let rest: Vec<OsString> = std::env::args_os().skip(1).collect();
        Args { rest: rest.into_iter(), usage }
    }

    /// The next option, as text (options are ASCII); an option that is not
    /// text is reported as unknown.
    pub fn next_option(&mut self) -> Option<Result<String, String>> {
        let arg = self.rest.next()?;
        Some(arg.into_string().map_err(|raw| format!("unknown option {raw:?}\n{}", self.usage)))
    }

    /// The value of option `name`, as bytes.
    pub fn value(&mut self, name: &str) -> Result<Vec<u8>, String> {
        self.rest.next().map(|v| v.as_bytes().to_vec()).ok_or_else(|| format!("{name} needs a value\n{}", self.usage))
    }

    pub fn number(&mut self, name: &str) -> Result<u32, String> {
        let v = self.value(name)?;
        std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{name}: not a number: {}", String::from_utf8_lossy(&v)))
    }

    /// Seconds, fractions allowed; 0 means stop at once.
    pub fn seconds(&mut self, name: &str) -> Result<Duration, String> {
        let v = self.value(name)?;
        std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| format!("{name}: not a number of seconds: {}", String::from_utf8_lossy(&v)))
    }
}

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
