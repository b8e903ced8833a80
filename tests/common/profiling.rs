//! Helpers of the profiler tests (tests/profile.rs, tests/profile_stacks.rs).

use std::collections::HashMap;
use std::process::Child;
use std::sync::Mutex;
use std::time::Duration;

use proctap::{Config, Event, Profiler, StackSample, Tracer};

/// Tests take turns (see [`turn`]).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The profiler tests of one test program run one at a time: the sampler
/// of one would see the other's processes in system-wide mode, and each
/// wants both CPUs for its CPU-bound fixture.
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A config that only profiles.
pub fn profile(profiler: Profiler) -> Config {
    Config::new().exec(false).exit(false).profile(profiler)
}

/// Kills the children when a test ends, also when it fails.
pub struct Reaper(pub Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for child in &mut self.0 {
            super::fixture::kill(child);
        }
    }
}

/// Owned events for `wait`, reading batches as they come.
pub fn collect_for(tracer: &Tracer, wait: Duration) -> Vec<Event> {
    super::collect_until(tracer, wait, |_| true, |_| false)
}

/// Stops the tracer and reads the batches its final drain handed over.
pub fn stop_and_collect(tracer: Tracer) -> (proctap::Stats, Vec<Event>) {
    let rest = tracer.events().clone();
    let stats = tracer.stop().unwrap();
    let events = rest.iter().flat_map(|batch| batch.iter().map(|e| e.to_owned_event()).collect::<Vec<_>>()).collect();
    (stats, events)
}

/// The stack samples among events.
pub fn samples(events: &[Event]) -> impl Iterator<Item = &StackSample> {
    events.iter().filter_map(|e| match e {
        Event::Sample(s) => Some(s),
        _ => None,
    })
}

/// Samples per pid.
pub fn sample_pids(events: &[Event]) -> HashMap<u32, usize> {
    let mut pids = HashMap::new();
    for s in samples(events) {
        *pids.entry(s.pid).or_default() += 1;
    }
    pids
}
