//! Pressure-triggered capture (Bistouri's core idea): a thread watches the
//! PSI of the cgroups of chosen processes and, when a [`Trigger`] fires for
//! one, makes that cgroup's processes profiling targets for a window. Each
//! capture's start and stop go into the stream as
//! [`Capture`] events ([`Targets::mark_capture`]), in time
//! order with the samples they bracket.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use proctap::{Config, Profiler, Tracer};
//! # use proctap::profile::{capture, psi::Trigger};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Profiling on, with no targets until pressure fires.
//! let tracer = Tracer::start(&Config::new().profile(Profiler::new().hz(99)))?;
//! let watched = capture::Watched { pids: vec![1234], comm_prefixes: vec![b"postgres".to_vec()] };
//! let triggers = vec![Trigger::parse("cpu:20")?];
//! let captures = capture::start(tracer.targets(), triggers, Duration::from_secs(5), watched)?;
//! // ... Event::Capture and Event::Sample arrive on tracer.events() ...
//! let started = captures.stop(); // before tracer.stop(): the last stops are in the stream
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::psi::{cgroup_processes, Fired, PressureWatch, Resource, Trigger};
use crate::{Capture, CaptureResource, CaptureStall, CaptureState, Targets, WallTime};

/// What selects the cgroups to watch: processes by pid or command-name
/// prefix (looked for again every second: processes that start later count).
#[derive(Clone, Debug, Default)]
pub struct Watched {
    pub pids: Vec<u32>,
    pub comm_prefixes: Vec<Vec<u8>>,
}

/// How often pressure is read, and processes looked for.
const POLL: Duration = Duration::from_millis(100);
const RESCAN: Duration = Duration::from_secs(1);
/// The window PSI stalls are measured over.
const WINDOW: Duration = Duration::from_secs(1);

/// A capture running: its cgroup's processes are targets until `until`.
struct Running {
    pids: Vec<u32>,
    until: Instant,
    fired: Fired,
}

/// The captures' thread ([`start`]).
pub struct Captures {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<u64>>>,
    started: Mutex<u64>,
}

impl Captures {
    /// Ends the captures running (their targets go, their stop is marked)
    /// and the thread; returns how many captures started. Call it before
    /// stopping the tracer, so that the last stops are in the stream. Later
    /// calls return the same count.
    pub fn stop(&self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(thread) = thread {
            *started = thread.join().unwrap_or(0);
        }
        *started
    }
}

impl Drop for Captures {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts watching on a thread: captures run until [`Captures::stop`].
/// Fails when no pressure file can be read (no cgroup v2 hierarchy with PSI).
pub fn start(
    targets: Targets,
    triggers: Vec<Trigger>,
    window: Duration,
    watched: Watched,
) -> std::io::Result<Captures> {
    let mut watch = PressureWatch::new(triggers, WINDOW)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        let stop = stopped;
        let (mut running, mut started, mut scanned) = (HashMap::<String, Running>::new(), 0, None::<Instant>);
        while !stop.load(Ordering::Relaxed) {
            if scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
                for pid in chosen(&watched) {
                    let _ = watch.watch_process(pid); // it may have exited
                }
                scanned = Some(Instant::now());
            }
            for fired in watch.poll() {
                if running.contains_key(&fired.cgroup) {
                    continue;
                }
                let found: Vec<u32> = cgroup_processes(&fired.dir)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|&pid| pid != std::process::id())
                    .collect();
                // Marked before its targets are added: no sample of theirs
                // comes before the start.
                mark(&targets, CaptureState::Start, &fired, found.len());
                let pids: Vec<u32> = found.into_iter().filter(|&pid| targets.add_pid(pid).is_ok()).collect();
                started += 1;
                running.insert(fired.cgroup.clone(), Running { pids, until: Instant::now() + window, fired });
            }
            let now = Instant::now();
            let over: Vec<String> = running.iter().filter(|(_, c)| c.until <= now).map(|(k, _)| k.clone()).collect();
            for cgroup in over {
                if let Some(c) = running.remove(&cgroup) {
                    end(&targets, c);
                }
            }
            std::thread::sleep(POLL);
        }
        for (_, c) in running.drain() {
            end(&targets, c);
        }
        started
    });
    Ok(Captures { stop, thread: Mutex::new(Some(thread)), started: Mutex::new(0) })
}

/// Its targets go first, then the stop is marked: no sample of theirs
/// comes after it.
fn end(targets: &Targets, c: Running) {
    for &pid in &c.pids {
        let _ = targets.remove_pid(pid);
    }
    mark(targets, CaptureState::Stop, &c.fired, c.pids.len());
}

/// The capture event of a trigger that fired (a stopped tracer takes none).
fn mark(targets: &Targets, state: CaptureState, fired: &Fired, pids: usize) {
    let _ = targets.mark_capture(&capture_event(state, fired, pids));
}

fn capture_event(state: CaptureState, fired: &Fired, pids: usize) -> Capture {
    let t = fired.trigger;
    Capture {
        ts_ns: 0,
        time: WallTime::default(),
        state,
        resource: match t.resource {
            Resource::Cpu => CaptureResource::Cpu,
            Resource::Memory => CaptureResource::Memory,
            Resource::Io => CaptureResource::Io,
        },
        stall: if t.full { CaptureStall::Full } else { CaptureStall::Some },
        targets: u32::try_from(pids).unwrap_or(u32::MAX),
        threshold_us: (t.percent / 100.0 * fired.window_us as f64) as u64,
        window_us: fired.window_us,
        stalled_us: if state == CaptureState::Start { fired.stalled_us } else { 0 },
        cgroup: fired.cgroup.as_bytes().to_vec(),
        data_lost: false,
    }
}

/// The live processes `watched` names.
fn chosen(watched: &Watched) -> Vec<u32> {
    let mut pids = watched.pids.clone();
    if !watched.comm_prefixes.is_empty() {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(comm) = std::fs::read(entry.path().join("comm")) else { continue };
            let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
            if watched.comm_prefixes.iter().any(|p| comm.starts_with(p)) {
                pids.push(pid);
            }
        }
    }
    pids
}
