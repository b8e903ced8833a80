//! Helpers for tests against the real kernel.
#![allow(dead_code)]

pub mod cgroup;
pub mod fixture;
pub mod profiling;
pub mod tools;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proctap::{Config, Event, Tracer};

/// Starts a tracer, or explains why the kernel tests cannot run here.
/// Under CI=true they must run: any failure to load BPF fails the test.
pub fn start(config: &Config) -> Option<Tracer> {
    started(Tracer::start(config))
}

/// [`start`] for a tracer that hands its batches to `handler`.
pub fn start_with_handler(config: &Config, handler: impl FnMut(proctap::Batch) + Send + 'static) -> Option<Tracer> {
    started(Tracer::start_with_handler(config, handler))
}

/// [`start`] for a tracer that hands its batches to an async stream.
#[cfg(feature = "tokio")]
pub fn start_stream(config: &Config) -> Option<(Tracer, proctap::BatchStream)> {
    started(Tracer::start_stream(config))
}

fn started<T>(result: Result<T, proctap::Error>) -> Option<T> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match result {
        Ok(tracer) => Some(tracer),
        // A test's own mistake, not the machine's: never a skip.
        Err(err @ proctap::Error::InvalidConfig { .. }) => panic!("the test's config is invalid: {err}"),
        // An older kernel: the typed error must name what it lacks, and
        // the kernel's own BTF must confirm it (then the test has asserted
        // what this kernel can do).
        Err(proctap::Error::Unsupported { feature, message }) => {
            let tp = feature.strip_prefix("tracepoint ").unwrap_or_else(|| {
                panic!("proctap says this kernel lacks {feature:?}, which this test cannot check: {message}")
            });
            assert!(
                !kernel_has_tracepoint(tp),
                "proctap says this kernel lacks {feature}, but its BTF has btf_trace_{tp}: {message}"
            );
            eprintln!("UNSUPPORTED on this kernel, as its BTF confirms: {feature} ({message})");
            None
        }
        Err(err) if ci => panic!("CI=true: kernel tests must run, but proctap could not start: {err}"),
        Err(err) => {
            eprintln!("SKIPPED: kernel test needs root and a BPF-capable kernel with BTF: {err}");
            None
        }
    }
}

/// Does the running kernel's BTF have tracepoint `tp` (its btf_trace_
/// typedef, a whole string of the string section)?
fn kernel_has_tracepoint(tp: &str) -> bool {
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("reading /sys/kernel/btf/vmlinux");
    let name = format!("\0btf_trace_{tp}\0");
    btf.windows(name.len()).any(|w| w == name.as_bytes())
}

/// Collects owned events until `done` says so or `timeout` passes.
pub fn collect_until(
    tracer: &Tracer,
    timeout: Duration,
    mut keep: impl FnMut(&Event<&[u8]>) -> bool,
    mut done: impl FnMut(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Ok(batch) = tracer.events().recv_timeout(left.min(Duration::from_millis(100))) {
            got.extend(batch.iter().filter(|e| keep(e)).map(|e| e.to_owned_event()));
        }
    }
    got
}

/// Exec and exit events of each pid in `pids`, once both have arrived.
pub fn exec_and_exit(tracer: &Tracer, pids: &[u32], timeout: Duration) -> HashMap<u32, (Vec<Event>, Vec<Event>)> {
    let want: std::collections::HashSet<u32> = pids.iter().copied().collect();
    let got = collect_until(
        tracer,
        timeout,
        |e| want.contains(&e.pid()),
        |got| pids.iter().all(|p| got.iter().any(|e| matches!(e, Event::Exit(x) if x.pid == *p))),
    );
    let mut map: HashMap<u32, (Vec<Event>, Vec<Event>)> = HashMap::new();
    for e in got {
        let entry = map.entry(e.pid()).or_default();
        match e {
            Event::Exec(_) => entry.0.push(e),
            Event::Exit(_) => entry.1.push(e),
            _ => {}
        }
    }
    map
}

/// A fresh directory with `name` linked to /bin/true: exec'ing the link
/// gives the process the command name `name`.
pub fn true_named(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("proctap-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/bin/true", &link).unwrap();
    (dir, link)
}
