//! The machine as the benchmark drivers see it: commands, /proc readers,
//! kernel settings a run changes (restored by guards) and `bpftool`'s view
//! of loaded BPF programs.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

pub type Result<T> = std::result::Result<T, String>;

pub const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";
pub const TRACEFS: &str = "/sys/kernel/tracing";

// ---- commands and /proc -----------------------------------------------------

/// Runs a command to completion and returns its stdout, failing on a non-zero exit.
pub fn run_output(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{program}: output is not UTF-8"))
}

/// Runs a command to completion with stdout on /dev/null and returns its
/// stderr, failing on a non-zero exit: for programs that report on stderr
/// because stdout is their workload's target.
pub fn run_stderr(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("{program} {}: {}: {}", args.join(" "), out.status, stderr.trim()));
    }
    Ok(stderr)
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`).
pub fn clk_tck() -> Result<u64> {
    run_output("getconf", &["CLK_TCK"])?.trim().parse().map_err(|_| "getconf CLK_TCK: not a number".to_string())
}

/// Whether `setpriv --pdeathsig` exists (util-linux 2.33+), which
/// `TracerProc::spawn` uses to tie a tracer's life to the driver's.
pub fn pdeathsig_available() -> bool {
    run_output("setpriv", &["--help"]).map(|h| h.contains("--pdeathsig")).unwrap_or(false)
}

/// "package version" of the Debian package that installed `path`, or
/// "version unknown".
pub fn package_version(path: &Path) -> String {
    let package = run_output("dpkg-query", &["-S", &path.to_string_lossy()])
        .ok()
        .and_then(|s| s.split(':').next().map(|p| p.trim().to_string()));
    match package {
        Some(p) => match run_output("dpkg-query", &["-W", "-f", "${Version}", &p]) {
            Ok(v) => format!("{p} {v}"),
            Err(_) => p,
        },
        None => "version unknown".into(),
    }
}

/// `git describe --always --dirty` of the working tree, if git can tell.
pub fn git_commit() -> Option<String> {
    run_output("git", &["describe", "--always", "--dirty"]).map(|s| s.trim().to_string()).ok()
}

pub fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A `Key:   value` line of a /proc text file.
pub fn proc_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| line.strip_prefix(key)?.trim_start().strip_prefix(':').map(|v| v.trim().to_string()))
}

pub fn is_root() -> Result<bool> {
    let status = read_text("/proc/self/status")?;
    let uid = proc_field(&status, "Uid").ok_or("no Uid in /proc/self/status")?;
    Ok(uid.split_whitespace().next() == Some("0"))
}

/// The sum of numeric fields of /proc/`who`/stat (`who`: a pid or "self"),
/// numbered as proc(5) numbers them (1 is the pid, 2 comm, 3 state).
fn stat_fields_sum(who: &str, numbers: &[usize]) -> Result<u64> {
    let path = format!("/proc/{who}/stat");
    let stat = read_text(&path)?;
    // comm may hold spaces and parentheses: fields start after its last ")".
    let rest = stat.rsplit_once(')').ok_or_else(|| format!("malformed {path}"))?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    numbers.iter().try_fold(0, |sum, &n| {
        let value: Option<u64> = n.checked_sub(3).and_then(|i| fields.get(i)).and_then(|v| v.parse().ok());
        value.map(|v| sum + v).ok_or_else(|| format!("{path}: no field {n}"))
    })
}

/// utime + stime of a process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    stat_fields_sum(&pid.to_string(), &[14, 15])
}

/// utime + stime of this process's waited-for children (and everything
/// they reaped), in clock ticks.
pub fn children_ticks() -> Result<u64> {
    stat_fields_sum("self", &[16, 17]) // cutime, cstime
}

/// CPU time of every thread of a process so far, in nanoseconds
/// (/proc/PID/task/*/schedstat: exact, unlike clock ticks). Threads that
/// already exited are not in it.
pub fn task_cpu_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let tasks = fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    Ok(tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum())
}

/// VmHWM (peak resident set) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = read_text(format!("/proc/{pid}/status"))?;
    let hwm = proc_field(&status, "VmHWM").ok_or_else(|| format!("/proc/{pid}/status: no VmHWM"))?;
    hwm.trim_end_matches("kB").trim().parse().map_err(|_| format!("VmHWM: cannot parse '{hwm}'"))
}

/// What a process holds open: BPF program ids (from fdinfo `prog_id`, both
/// program and link fds carry it), and how many BPF links and epoll fds.
#[derive(Default)]
pub struct HeldFds {
    pub prog_ids: BTreeSet<u64>,
    pub links: usize,
    pub epolls: usize,
}

pub fn held_fds(pid: u32) -> HeldFds {
    let mut held = HeldFds::default();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else { return held };
    for entry in dir.flatten() {
        let target = fs::read_link(entry.path()).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
        if target == "anon_inode:bpf_link" {
            held.links += 1;
        } else if target == "anon_inode:[eventpoll]" {
            held.epolls += 1;
        }
        let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", entry.file_name().to_string_lossy()))
            .unwrap_or_default();
        if let Some(id) = proc_field(&info, "prog_id").and_then(|v| v.parse().ok()) {
            held.prog_ids.insert(id);
        }
    }
    held
}

/// The aggregate line of /proc/stat, in clock ticks (USER_HZ).
#[derive(Clone, Copy, Default)]
pub struct MachineCpu {
    pub total: u64,
    pub idle: u64,
    pub steal: u64,
}

pub fn machine_cpu() -> Result<MachineCpu> {
    let stat = read_text("/proc/stat")?;
    let line = stat.lines().find(|l| l.starts_with("cpu ")).ok_or("/proc/stat: no cpu line")?;
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    let v: Vec<u64> = line.split_whitespace().skip(1).take(8).map(|x| x.parse().unwrap_or(0)).collect();
    if v.len() < 8 {
        return Err("/proc/stat: short cpu line".into());
    }
    Ok(MachineCpu { total: v.iter().sum(), idle: v[3] + v[4], steal: v[7] })
}

/// How the machine's CPU time was spent while a workload ran as this
/// process's child, in percent of all CPU time (/proc/stat, and the waited-for
/// children's utime+stime of /proc/self/stat).
#[derive(Clone, Copy, Default)]
pub struct CpuShares {
    /// The workload: children waited for meanwhile.
    pub workload_pct: f64,
    pub idle_pct: f64,
    pub steal_pct: f64,
    /// Everything else: other processes, interrupts, a tracer.
    pub rest_pct: f64,
}

impl CpuShares {
    /// Runs `workload` (which must wait for the children it starts) and says
    /// where the machine's CPU time went meanwhile.
    pub fn measure<T>(workload: impl FnOnce() -> Result<T>) -> Result<(T, CpuShares)> {
        let (m0, c0) = (machine_cpu()?, children_ticks()?);
        let result = workload()?;
        let (m1, c1) = (machine_cpu()?, children_ticks()?);
        let total = (m1.total - m0.total).max(1) as f64;
        let share = |ticks: u64| ticks as f64 * 100.0 / total;
        let (workload, idle, steal) = (share(c1 - c0), share(m1.idle - m0.idle), share(m1.steal - m0.steal));
        let rest_pct = 100.0 - workload - idle - steal;
        Ok((result, CpuShares { workload_pct: workload, idle_pct: idle, steal_pct: steal, rest_pct }))
    }

    /// One sentence: "of the machine's CPU time during the storm, the storm
    /// used ...", naming the tracer and its own CPU milliseconds if given.
    pub fn sentence(&self, tracer: Option<(&str, f64)>) -> String {
        let tracer = match tracer {
            Some((label, ms)) => format!(" ({label} itself used {ms:.0} ms of CPU during the storm)"),
            None => String::new(),
        };
        format!(
            "of the machine's CPU time during the storm, the storm used {:.1}%, everything else (tracer, other processes, interrupts) {:.1}%{tracer}, steal {:.1}%, idle {:.1}%",
            self.workload_pct, self.rest_pct, self.steal_pct, self.idle_pct
        )
    }
}

/// The 1-minute load average, as /proc/loadavg prints it ("?" if unreadable).
pub fn load_average() -> String {
    read_text("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

// ---- guards: what a run changes, restored when dropped ----------------------

/// kernel.bpf_stats_enabled = 1 while it lives; the old value back on drop.
pub struct BpfStats(String);

impl BpfStats {
    pub fn enable() -> Result<BpfStats> {
        Self::set("1")
    }

    /// Off while it lives: every program run then skips bpf_stats' clock
    /// reads (for measuring what a program adds, not what it takes).
    pub fn disable() -> Result<BpfStats> {
        Self::set("0")
    }

    fn set(value: &str) -> Result<BpfStats> {
        let old = read_text(BPF_STATS)?.trim().to_string();
        fs::write(BPF_STATS, value).map_err(|e| format!("{BPF_STATS}: {e}"))?;
        Ok(BpfStats(old))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(e) = fs::write(BPF_STATS, &self.0) {
            eprintln!("warning: cannot restore {BPF_STATS} to {}: {e}", self.0);
        }
    }
}

/// tracefs mounted while it lives (libbpf finds tracepoints there): mounts it
/// on /sys/kernel/tracing if neither that nor /sys/kernel/debug/tracing has
/// events, and unmounts it on drop if it did.
pub struct Tracefs {
    mounted: bool,
}

impl Tracefs {
    /// `purpose` ends the note printed when it has to mount: "... for {purpose}".
    pub fn ensure(purpose: &str) -> Result<Tracefs> {
        if Path::new(TRACEFS).join("events").is_dir() || Path::new("/sys/kernel/debug/tracing/events").is_dir() {
            return Ok(Tracefs { mounted: false });
        }
        eprintln!("tracefs is not mounted; mounting it on {TRACEFS} for {purpose} (unmounted at the end)");
        run_output("mount", &["-t", "tracefs", "tracefs", TRACEFS])?;
        Ok(Tracefs { mounted: true })
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = run_output("umount", &[TRACEFS]) {
                eprintln!("warning: cannot unmount {TRACEFS}: {e}");
            }
        }
    }
}

// ---- bpftool ----------------------------------------------------------------

/// One loaded BPF program as `bpftool -j prog show` lists it, with its
/// bpf_stats counters (absent, i.e. zero, for a program that never ran with
/// stats enabled); or, from `prog_deltas`, the counters' growth.
#[derive(Clone, Debug)]
pub struct Prog {
    pub id: u64,
    pub name: String,
    /// bpftool's "type": "tracepoint", "perf_event", ...
    pub kind: String,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// `bpftool -j prog show`: every loaded program.
pub fn bpf_progs() -> Result<Vec<Prog>> {
    let text = run_output("bpftool", &["-j", "prog", "show"])?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("bpftool -j prog show: bad JSON: {e}"))?;
    let array = value.as_array().ok_or("bpftool -j prog show: not a JSON array")?;
    Ok(array
        .iter()
        .filter_map(|p| {
            let text = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
            let num = |k: &str| p.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            Some(Prog {
                id: p.get("id")?.as_u64()?,
                name: text("name"),
                kind: text("type"),
                run_time_ns: num("run_time_ns"),
                run_cnt: num("run_cnt"),
            })
        })
        .collect())
}

/// The given programs as `bpftool -j prog show` lists them now; an error if
/// one of them is no longer loaded.
pub fn prog_snapshot(ids: &BTreeSet<u64>) -> Result<Vec<Prog>> {
    let progs: Vec<Prog> = bpf_progs()?.into_iter().filter(|p| ids.contains(&p.id)).collect();
    if progs.len() != ids.len() {
        return Err(format!("tracer programs {ids:?}: only {} still loaded", progs.len()));
    }
    Ok(progs)
}

/// Per program of `after`: run_time_ns and run_cnt grown since `before`
/// (from zero for a program `before` lacks).
pub fn prog_deltas(before: &[Prog], after: &[Prog]) -> Vec<Prog> {
    after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.id == a.id);
            Prog {
                run_time_ns: a.run_time_ns - b.map_or(0, |b| b.run_time_ns),
                run_cnt: a.run_cnt - b.map_or(0, |b| b.run_cnt),
                ..a.clone()
            }
        })
        .collect()
}
