//! Pressure-triggered capture: watch the cgroup v2 pressure (PSI) files
//! of chosen cgroups and say when one stalled longer than a threshold
//! within a window, so that a profiler starts sampling that cgroup's
//! processes only then (Bistouri's core idea).
//!
//! [`PressureWatch::poll`] reads the cumulative stall counters (`total=`
//! µs of `cpu.pressure`, `memory.pressure`, `io.pressure`) and keeps the
//! readings of the last window, so it needs no kernel trigger and no
//! polling of file descriptors: plain reads, as often as the caller polls
//! (every 100 ms or so). Cgroups are found in the v2 tree wherever it is
//! mounted (`/sys/fs/cgroup` on pure v2, `/sys/fs/cgroup/unified` on a
//! v1/v2 hybrid); a process in the root cgroup is watched through the
//! root's files, or the system's (`/proc/pressure`) where the root has none.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A resource PSI accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Cpu,
    Memory,
    Io,
}

impl Resource {
    fn file(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu.pressure",
            Resource::Memory => "memory.pressure",
            Resource::Io => "io.pressure",
        }
    }

    fn system_file(self) -> &'static str {
        match self {
            Resource::Cpu => "/proc/pressure/cpu",
            Resource::Memory => "/proc/pressure/memory",
            Resource::Io => "/proc/pressure/io",
        }
    }
}

/// When to fire: `resource` stalled (some tasks, or with `full` all
/// non-idle tasks at once) over `percent` of the window.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Trigger {
    pub resource: Resource,
    pub full: bool,
    pub percent: f64,
}

impl Trigger {
    /// Parses `RESOURCE:PERCENT` (`cpu:10`, `memory:full:5`): a typed
    /// message saying what to give otherwise.
    pub fn parse(text: &str) -> Result<Trigger, String> {
        let usage = || format!("{text:?}: give RESOURCE[:some|:full]:PERCENT, RESOURCE cpu, memory or io");
        let mut parts = text.split(':');
        let resource = match parts.next() {
            Some("cpu") => Resource::Cpu,
            Some("memory") => Resource::Memory,
            Some("io") => Resource::Io,
            _ => return Err(usage()),
        };
        let (full, percent) = match (parts.next(), parts.next(), parts.next()) {
            (Some(p), None, None) => (false, p),
            (Some("some"), Some(p), None) => (false, p),
            (Some("full"), Some(p), None) => (true, p),
            _ => return Err(usage()),
        };
        let percent: f64 = percent.parse().map_err(|_| usage())?;
        if !(percent > 0.0 && percent <= 100.0) {
            return Err(format!("{text:?}: PERCENT must be above 0 and at most 100"));
        }
        Ok(Trigger { resource, full, percent })
    }
}

/// A trigger that fired for a cgroup.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Fired {
    /// The cgroup, as /proc/PID/cgroup names it (`/` for the root).
    pub cgroup: String,
    /// Its directory in the v2 tree.
    #[serde(skip)]
    pub dir: PathBuf,
    pub trigger: Trigger,
    /// Stalled µs within the window, and the window's length in µs.
    pub stalled_us: u64,
    pub window_us: u64,
}

/// One cgroup watched, with its last window of readings per trigger.
struct Watched {
    dir: PathBuf,
    readings: Vec<VecDeque<(Instant, u64)>>,
}

/// Watches cgroups' pressure against triggers.
pub struct PressureWatch {
    triggers: Vec<Trigger>,
    window: Duration,
    v2_root: PathBuf,
    cgroups: HashMap<String, Watched>,
}

impl PressureWatch {
    /// Fires a trigger when its stall over the last `window` passes it.
    pub fn new(triggers: Vec<Trigger>, window: Duration) -> io::Result<PressureWatch> {
        let v2_root = cgroup2_mount()?;
        Ok(PressureWatch { triggers, window, v2_root, cgroups: HashMap::new() })
    }

    /// Watches the cgroup process `pid` is in (once per cgroup); returns it.
    pub fn watch_process(&mut self, pid: u32) -> io::Result<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        let cgroup = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or_else(|| io::Error::other(format!("process {pid} is in no cgroup v2")))?
            .to_string();
        let dir = self.v2_root.join(cgroup.trim_start_matches('/'));
        let n = self.triggers.len();
        self.cgroups.entry(cgroup.clone()).or_insert_with(|| Watched { dir, readings: vec![VecDeque::new(); n] });
        Ok(cgroup)
    }

    /// The cgroups watched.
    pub fn cgroups(&self) -> impl Iterator<Item = &str> {
        self.cgroups.keys().map(String::as_str)
    }

    /// Reads every watched cgroup's counters and returns the triggers that
    /// fired (a cgroup whose files went away is dropped). A trigger starts
    /// over after it fired: the next firing needs a new window of stall.
    pub fn poll(&mut self) -> Vec<Fired> {
        let now = Instant::now();
        let window_us = self.window.as_micros() as u64;
        let mut fired = Vec::new();
        let mut gone = Vec::new();
        for (cgroup, w) in &mut self.cgroups {
            for (i, t) in self.triggers.iter().enumerate() {
                let Some(total) = read_total(&w.dir, *t) else {
                    gone.push(cgroup.clone());
                    break;
                };
                let readings = &mut w.readings[i];
                readings.push_back((now, total));
                while readings.len() > 2 && now.duration_since(readings[1].0) >= self.window {
                    readings.pop_front();
                }
                let &(first_at, first) = readings.front().unwrap_or(&(now, total));
                let span = now.duration_since(first_at);
                let stalled = total.saturating_sub(first);
                if span >= self.window.mul_f64(0.9) && stalled as f64 >= t.percent / 100.0 * span.as_micros() as f64 {
                    fired.push(Fired {
                        cgroup: cgroup.clone(),
                        dir: w.dir.clone(),
                        trigger: *t,
                        stalled_us: stalled,
                        window_us,
                    });
                    readings.clear();
                }
            }
        }
        for cgroup in gone {
            self.cgroups.remove(&cgroup);
        }
        fired
    }
}

/// The processes in a cgroup (its `cgroup.procs`).
pub fn cgroup_processes(dir: &Path) -> io::Result<Vec<u32>> {
    Ok(std::fs::read_to_string(dir.join("cgroup.procs"))?.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// The `total=` (µs stalled) of the trigger's line in the cgroup's
/// pressure file, or the system's for a root without one.
fn read_total(dir: &Path, t: Trigger) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(t.resource.file()))
        .or_else(|_| std::fs::read_to_string(t.resource.system_file()))
        .ok()?;
    parse_total(&text, t.full)
}

fn parse_total(text: &str, full: bool) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(if full { "full " } else { "some " }))?;
    line.split_whitespace().find_map(|f| f.strip_prefix("total="))?.parse().ok()
}

/// Where the cgroup2 hierarchy is mounted.
fn cgroup2_mount() -> io::Result<PathBuf> {
    crate::config::cgroup::cgroup2_mount_point(&std::fs::read_to_string("/proc/self/mountinfo")?).ok_or_else(|| {
        io::Error::other("no cgroup2 hierarchy is mounted: mount -t cgroup2 none /sys/fs/cgroup/unified")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_parse_or_say_what_to_give() {
        assert_eq!(Trigger::parse("cpu:10"), Ok(Trigger { resource: Resource::Cpu, full: false, percent: 10.0 }));
        assert_eq!(Trigger::parse("io:full:2.5"), Ok(Trigger { resource: Resource::Io, full: true, percent: 2.5 }));
        assert_eq!(Trigger::parse("memory:some:5").map(|t| t.resource), Ok(Resource::Memory));
        for bad in ["gpu:10", "cpu", "cpu:0", "cpu:101", "cpu:half:3", "cpu:x", "cpu:full:1:2"] {
            assert!(Trigger::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn totals_come_from_the_asked_line() {
        let text =
            "some avg10=1.00 avg60=0.50 avg300=0.10 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=789\n";
        assert_eq!(parse_total(text, false), Some(123456));
        assert_eq!(parse_total(text, true), Some(789));
        assert_eq!(parse_total("some avg10=1.00\n", false), None);
    }
}
