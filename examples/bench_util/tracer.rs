//! A tracer run as a separate process (proctap's `dump`, a libbpf-tools
//! tool): started with its output in /dev/shm (or thrown away in /dev/null),
//! watched until its BPF programs are attached, stopped with SIGINT.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::system::{bpf_progs, held_fds, run_output, task_cpu_ns, Result};

/// A running tracer. Dropping it kills the process if it still runs and
/// deletes its output files, so no tracer outlives a failing driver.
pub struct TracerProc {
    label: String,
    child: Child,
    /// Where stdout goes: a file of ours, or /dev/null when `discarded`.
    out: PathBuf,
    err: PathBuf,
    /// stdout goes to /dev/null (`spawn_discarding`): not ours to delete,
    /// and its growth tells nothing.
    discarded: bool,
    reaped: bool,
}

impl TracerProc {
    /// Starts `program args` with stdout and stderr in files named after
    /// `label` (which also names it in messages). With `pdeathsig`, it runs
    /// under `setpriv --pdeathsig KILL`.
    pub fn spawn(label: impl Into<String>, program: &Path, args: &[&str], pdeathsig: bool) -> Result<TracerProc> {
        Self::start(label.into(), program, args, pdeathsig, false)
    }

    /// Like `spawn`, but stdout goes to /dev/null: for a tracer whose output
    /// would fill /dev/shm and is counted from its stats instead. `out_path`
    /// is then /dev/null, and `wait_settled` watches its CPU time.
    pub fn spawn_discarding(
        label: impl Into<String>,
        program: &Path,
        args: &[&str],
        pdeathsig: bool,
    ) -> Result<TracerProc> {
        Self::start(label.into(), program, args, pdeathsig, true)
    }

    fn start(label: String, program: &Path, args: &[&str], pdeathsig: bool, discarded: bool) -> Result<TracerProc> {
        let tag = format!("proctap-bench-{}-{label}", std::process::id());
        let out = PathBuf::from(if discarded { "/dev/null".to_string() } else { format!("/dev/shm/{tag}.out") });
        let err = PathBuf::from(format!("/dev/shm/{tag}.err"));
        let out_file = if discarded { File::options().write(true).open(&out) } else { File::create(&out) }
            .map_err(|e| format!("{}: {e}", out.display()))?;
        let err_file = File::create(&err).map_err(|e| format!("{}: {e}", err.display()))?;
        // setpriv execs the tracer (same pid) with a parent-death signal, so
        // it dies with the driver even if the driver is killed outright.
        let mut command = if pdeathsig {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        Ok(TracerProc { label, child, out, err, discarded, reaped: false })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file its stdout goes to.
    pub fn out_path(&self) -> &Path {
        &self.out
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Fails if the tracer already exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.reaped = true;
                Err(format!("{} exited early ({status}): {}", self.label, self.stderr_text().trim()))
            }
            Err(e) => Err(format!("{}: wait: {e}", self.label)),
        }
    }

    /// SIGINT, then wait for a clean exit (SIGKILL after `limit`).
    pub fn interrupt(&mut self, limit: Duration) -> Result<ExitStatus> {
        run_output("kill", &["-INT", &self.pid().to_string()])?;
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.reaped = true;
                    return Err(format!("{} did not stop within {limit:?} of SIGINT; killed", self.label));
                }
                Err(e) => return Err(format!("{}: wait: {e}", self.label)),
            }
        }
    }
}

impl Drop for TracerProc {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !self.discarded {
            let _ = fs::remove_file(&self.out);
        }
        let _ = fs::remove_file(&self.err);
    }
}

/// Waits until the tracer holds newly loaded BPF programs, at least one BPF
/// link (attached) and an epoll fd (its ring/perf buffer is open; execsnoop
/// opens it right after printing its header, which stays in stdio's buffer
/// while stdout is a file), then ~300 ms more. Returns the tracer's program ids:
/// those it holds that were not loaded before it started.
pub fn wait_attached(tracer: &mut TracerProc, before: &BTreeSet<u64>) -> Result<BTreeSet<u64>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_ids = |tracer: &TracerProc| -> Result<BTreeSet<u64>> {
        let held = held_fds(tracer.pid());
        if held.prog_ids.is_empty() || held.links == 0 || held.epolls == 0 {
            return Ok(BTreeSet::new());
        }
        let loaded: BTreeSet<u64> = bpf_progs()?.into_iter().map(|p| p.id).collect();
        Ok(held.prog_ids.iter().copied().filter(|id| loaded.contains(id) && !before.contains(id)).collect())
    };
    loop {
        tracer.check_running()?;
        if !new_ids(tracer)?.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not attach within 30 s: {}", tracer.label, tracer.stderr_text().trim()));
        }
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_millis(300));
    tracer.check_running()?;
    new_ids(tracer)
}

/// After the workload: waits until the tracer's output stopped growing
/// (500 ms without a new byte, 60 s at most), so a backlog it drains after
/// the workload ends is in both its CPU time and its output. A tracer whose
/// output is discarded is waited for with `wait_idle` instead.
pub fn wait_settled(tracer: &mut TracerProc) -> Result<Duration> {
    wait_settled_below(tracer, 0)
}

/// Like `wait_settled`, but the output counts as settled when it grew by at
/// most `trickle` bytes in each of two 250 ms windows in a row: for a tracer
/// that also reports the rest of the machine (other processes' opens keep
/// its output growing slowly, while draining a backlog writes at full speed).
pub fn wait_settled_below(tracer: &mut TracerProc, trickle: u64) -> Result<Duration> {
    if tracer.discarded {
        return wait_idle(tracer);
    }
    let start = Instant::now();
    let size = |t: &TracerProc| fs::metadata(&t.out).map(|m| m.len()).unwrap_or(0);
    let mut last = size(tracer);
    let mut still = 0;
    while still < 2 && start.elapsed() < Duration::from_secs(60) {
        sleep(Duration::from_millis(250));
        tracer.check_running()?;
        let now = size(tracer);
        still = if now.saturating_sub(last) <= trickle { still + 1 } else { 0 };
        last = now;
    }
    Ok(start.elapsed())
}

/// CPU time a tracer may use per 250 ms and still count as idle: 1 ms (0.4 %
/// of a CPU). Draining a backlog keeps a thread busy; an idle proctap poll
/// thread wakes at most every 100 ms to 1 s for microseconds.
const IDLE_CPU_NS: u64 = 1_000_000;

/// After the workload, for a tracer whose output is discarded: waits until
/// it went idle, i.e. its threads' CPU time (/proc/PID/task/*/schedstat, in
/// nanoseconds) grew less than 1 ms in each of two 250 ms windows in a row
/// (60 s at most). A tracer still draining its rings keeps a thread busy and
/// so keeps growing; this stands in for "its output stopped growing".
pub fn wait_idle(tracer: &mut TracerProc) -> Result<Duration> {
    let start = Instant::now();
    let mut last = task_cpu_ns(tracer.pid())?;
    let mut still = 0;
    while still < 2 && start.elapsed() < Duration::from_secs(60) {
        sleep(Duration::from_millis(250));
        tracer.check_running()?;
        let now = task_cpu_ns(tracer.pid())?;
        still = if now.saturating_sub(last) < IDLE_CPU_NS { still + 1 } else { 0 };
        last = now;
    }
    Ok(start.elapsed())
}
