//! The profile example's pressure-triggered captures (--psi): a thread
//! that watches the PSI of the cgroups of the chosen processes and, when a
//! trigger fires for one, makes that cgroup's processes profiling targets
//! for the capture window, printing each capture's start and stop as a
//! JSON line on stdout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proctap::profile::psi::{cgroup_processes, Fired, PressureWatch, Trigger};
use proctap::Tracer;

/// What selects the cgroups to watch: processes by pid or command-name
/// prefix (found again every second: processes that start later count).
pub struct Watched {
    pub pids: Vec<u32>,
    pub comm_prefixes: Vec<Vec<u8>>,
}

/// How often pressure is read, and processes looked for.
const POLL: Duration = Duration::from_millis(100);
const RESCAN: Duration = Duration::from_secs(1);

/// A capture running: its cgroup's processes are targets until `until`.
struct Capture {
    pids: Vec<u32>,
    until: Instant,
    fired: Fired,
}

/// Runs the captures until `stop`; returns how many started.
pub fn start(
    tracer: &Tracer,
    triggers: Vec<Trigger>,
    window: Duration,
    watched: Watched,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<u64>> {
    let mut watch = PressureWatch::new(triggers, Duration::from_secs(1))?;
    let targets = tracer.targets();
    Ok(std::thread::spawn(move || {
        let (mut captures, mut started, mut scanned) = (HashMap::<String, Capture>::new(), 0, None::<Instant>);
        while !stop.load(Ordering::Relaxed) {
            if scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
                for pid in chosen(&watched) {
                    let _ = watch.watch_process(pid); // it may have exited
                }
                scanned = Some(Instant::now());
            }
            for fired in watch.poll() {
                if captures.contains_key(&fired.cgroup) {
                    continue;
                }
                let pids: Vec<u32> = cgroup_processes(&fired.dir)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|&pid| pid != std::process::id() && targets.add_pid(pid).is_ok())
                    .collect();
                print_line("start", &fired, &pids);
                started += 1;
                captures.insert(fired.cgroup.clone(), Capture { pids, until: Instant::now() + window, fired });
            }
            let over: Vec<String> =
                captures.iter().filter(|(_, c)| c.until <= Instant::now()).map(|(k, _)| k.clone()).collect();
            for cgroup in over {
                if let Some(c) = captures.remove(&cgroup) {
                    end(&targets, c);
                }
            }
            std::thread::sleep(POLL);
        }
        for (_, c) in captures.drain() {
            end(&targets, c);
        }
        started
    }))
}

fn end(targets: &proctap::Targets, c: Capture) {
    for &pid in &c.pids {
        let _ = targets.remove_pid(pid);
    }
    print_line("stop", &c.fired, &c.pids);
}

fn print_line(state: &str, fired: &Fired, pids: &[u32]) {
    let line = serde_json::json!({
        "type": "capture",
        "state": state,
        "cgroup": fired.cgroup,
        "pids": pids,
        "trigger": {
            "resource": fired.trigger.resource,
            "kind": if fired.trigger.full { "full" } else { "some" },
            "percent": fired.trigger.percent,
            "stalled_us": fired.stalled_us,
            "window_us": fired.window_us,
        },
    });
    println!("{line}");
}

/// The live processes the options name.
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
