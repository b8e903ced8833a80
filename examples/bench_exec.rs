//! Exec storm benchmark (`make bench-exec`): what tracing exec costs and what
//! it captures, for proctap's dumper and for libbpf-tools' execsnoop.
//!
//!     bench_exec --storm build/bench/storm --child build/bench/pt-storm-child \
//!         --dump target/release/examples/dump --execsnoop /usr/sbin/execsnoop \
//!         [--seconds 10] [--sizes 2x16,16x64,32x128]
//!
//! Run as root. For every argv size NxL (N arguments of L bytes) the storm
//! runs three times: no tracer, proctap's `dump`, `execsnoop`. Progress goes
//! to stderr; a Markdown section with one table per size goes to stdout.
//! Every number in it is measured here; nothing is asserted.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde::Deserialize;

#[path = "bench_util/mod.rs"]
mod bench_util;

const USAGE: &str = "usage: bench_exec --storm PATH --child PATH --dump PATH --execsnoop PATH \
[--seconds S] [--sizes NxL,NxL,...]";
const CHILD_COMM: &str = "pt-storm-child";
const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";
const TRACEFS: &str = "/sys/kernel/tracing";

type Result<T> = std::result::Result<T, String>;

// ---- options ----------------------------------------------------------------

struct Options {
    storm: PathBuf,
    child: PathBuf,
    dump: PathBuf,
    execsnoop: PathBuf,
    seconds: f64,
    sizes: Vec<(u32, u32)>,
}

fn parse_sizes(text: &str) -> Result<Vec<(u32, u32)>> {
    let mut sizes = Vec::new();
    for part in text.split(',') {
        let (n, l) =
            part.split_once('x').ok_or_else(|| format!("--sizes: '{part}' is not NxL (N arguments of L bytes)"))?;
        let n: u32 = n.trim().parse().map_err(|_| format!("--sizes: bad N in '{part}'"))?;
        let l: u32 = l.trim().parse().map_err(|_| format!("--sizes: bad L in '{part}'"))?;
        if l == 0 {
            return Err(format!("--sizes: L must be at least 1 in '{part}'"));
        }
        sizes.push((n, l));
    }
    Ok(sizes)
}

fn parse_options() -> Result<Options> {
    let mut storm = PathBuf::from("build/bench/storm");
    let mut child = PathBuf::from("build/bench/pt-storm-child");
    let mut dump = PathBuf::from("target/release/examples/dump");
    let mut execsnoop = PathBuf::from("/usr/sbin/execsnoop");
    let mut seconds: f64 = 10.0;
    let mut sizes = parse_sizes("2x16,16x64,32x128")?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--storm" => storm = value()?.into(),
            "--child" => child = value()?.into(),
            "--dump" => dump = value()?.into(),
            "--execsnoop" => execsnoop = value()?.into(),
            "--seconds" => {
                let v = value()?;
                seconds = v.parse().map_err(|_| format!("--seconds: not a number: {v}"))?;
                if !seconds.is_finite() || seconds <= 0.0 {
                    return Err("--seconds must be positive".into());
                }
            }
            "--sizes" => sizes = parse_sizes(&value()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(Options { storm, child, dump, execsnoop, seconds, sizes })
}

// ---- small helpers ------------------------------------------------------------

/// Runs a command to completion and returns its stdout, failing on a non-zero exit.
fn run_output(program: &str, args: &[&str]) -> Result<String> {
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

fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A `Key:   value` line of a /proc text file.
fn proc_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| line.strip_prefix(key)?.trim_start().strip_prefix(':').map(|v| v.trim().to_string()))
}

fn is_root() -> Result<bool> {
    let status = read_text("/proc/self/status")?;
    let uid = proc_field(&status, "Uid").ok_or("no Uid in /proc/self/status")?;
    Ok(uid.split_whitespace().next() == Some("0"))
}

/// utime + stime of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = read_text(format!("/proc/{pid}/stat"))?;
    // Fields after the ")" that closes comm start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').ok_or("malformed /proc/PID/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields.get(i).and_then(|v| v.parse().ok()).ok_or_else(|| format!("/proc/{pid}/stat: no field {}", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// VmHWM (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = read_text(format!("/proc/{pid}/status"))?;
    let hwm = proc_field(&status, "VmHWM").ok_or_else(|| format!("/proc/{pid}/status: no VmHWM"))?;
    hwm.trim_end_matches("kB").trim().parse().map_err(|_| format!("VmHWM: cannot parse '{hwm}'"))
}

/// What a process holds open: BPF program ids (from fdinfo `prog_id`, both
/// program and link fds carry it), and how many BPF links and epoll fds.
#[derive(Default)]
struct HeldFds {
    prog_ids: BTreeSet<u64>,
    links: usize,
    epolls: usize,
}

fn held_fds(pid: u32) -> HeldFds {
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

// ---- bpftool ------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Prog {
    id: u64,
    name: String,
    run_time_ns: u64,
    run_cnt: u64,
}

/// `bpftool -j prog show`: every loaded program with its bpf_stats counters
/// (absent, i.e. zero, for a program that never ran with stats enabled).
fn bpf_progs() -> Result<Vec<Prog>> {
    let text = run_output("bpftool", &["-j", "prog", "show"])?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("bpftool -j prog show: bad JSON: {e}"))?;
    let array = value.as_array().ok_or("bpftool -j prog show: not a JSON array")?;
    Ok(array
        .iter()
        .filter_map(|p| {
            Some(Prog {
                id: p.get("id")?.as_u64()?,
                name: p.get("name").and_then(|n| n.as_str()).unwrap_or("?").to_string(),
                run_time_ns: p.get("run_time_ns").and_then(|v| v.as_u64()).unwrap_or(0),
                run_cnt: p.get("run_cnt").and_then(|v| v.as_u64()).unwrap_or(0),
            })
        })
        .collect())
}

/// The given programs as `bpftool -j prog show` lists them now.
fn prog_snapshot(ids: &BTreeSet<u64>) -> Result<Vec<Prog>> {
    let progs: Vec<Prog> = bpf_progs()?.into_iter().filter(|p| ids.contains(&p.id)).collect();
    if progs.len() != ids.len() {
        return Err(format!("tracer programs {ids:?}: only {} still loaded", progs.len()));
    }
    Ok(progs)
}

/// Per program: run_time_ns and run_cnt grown from `before` to `after`.
fn prog_deltas(before: &[Prog], after: &[Prog]) -> Vec<Prog> {
    after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.id == a.id);
            Prog {
                id: a.id,
                name: a.name.clone(),
                run_time_ns: a.run_time_ns - b.map_or(0, |b| b.run_time_ns),
                run_cnt: a.run_cnt - b.map_or(0, |b| b.run_cnt),
            }
        })
        .collect()
}

// ---- where the machine's CPU time went ------------------------------------------

/// The aggregate line of /proc/stat, in clock ticks (USER_HZ).
#[derive(Clone, Copy, Default)]
struct MachineCpu {
    total: u64,
    idle: u64,
    steal: u64,
}

fn machine_cpu() -> Result<MachineCpu> {
    let stat = read_text("/proc/stat")?;
    let line = stat.lines().find(|l| l.starts_with("cpu ")).ok_or("/proc/stat: no cpu line")?;
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    let v: Vec<u64> = line.split_whitespace().skip(1).take(8).map(|x| x.parse().unwrap_or(0)).collect();
    if v.len() < 8 {
        return Err("/proc/stat: short cpu line".into());
    }
    Ok(MachineCpu { total: v.iter().sum(), idle: v[3] + v[4], steal: v[7] })
}

/// utime + stime of this process's waited-for children (the storm and
/// everything it reaped), in clock ticks.
fn children_ticks() -> Result<u64> {
    let stat = read_text("/proc/self/stat")?;
    let rest = stat.rsplit_once(')').ok_or("malformed /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields.get(i).and_then(|v| v.parse().ok()).ok_or_else(|| format!("/proc/self/stat: no field {}", i + 3))
    };
    Ok(field(13)? + field(14)?) // cutime, cstime
}

/// The storm's run, and how the machine's CPU time was spent meanwhile.
struct StormRun {
    result: StormResult,
    /// Shares of all CPU time during the storm, in percent.
    storm_pct: f64,
    idle_pct: f64,
    steal_pct: f64,
    /// Everything else: other processes, interrupts, the tracer.
    rest_pct: f64,
}

fn measured_storm(opts: &Options, nargs: u32, arglen: u32) -> Result<StormRun> {
    let (m0, c0) = (machine_cpu()?, children_ticks()?);
    let result = run_storm(opts, nargs, arglen)?;
    let (m1, c1) = (machine_cpu()?, children_ticks()?);
    let total = (m1.total - m0.total).max(1) as f64;
    let share = |ticks: u64| ticks as f64 * 100.0 / total;
    let (storm, idle, steal) = (share(c1 - c0), share(m1.idle - m0.idle), share(m1.steal - m0.steal));
    Ok(StormRun { result, storm_pct: storm, idle_pct: idle, steal_pct: steal, rest_pct: 100.0 - storm - idle - steal })
}

// ---- the storm ------------------------------------------------------------------

#[derive(Deserialize, Clone, Copy)]
struct StormResult {
    execs: u64,
    failed: u64,
    seconds: f64,
    argv_bytes: u64,
    workers: u64,
}

fn run_storm(opts: &Options, nargs: u32, arglen: u32) -> Result<StormResult> {
    let storm = opts.storm.to_string_lossy().into_owned();
    let child = opts.child.to_string_lossy().into_owned();
    let seconds = opts.seconds.to_string();
    let (n, l) = (nargs.to_string(), arglen.to_string());
    let text = run_output(&storm, &["--seconds", &seconds, "--child", &child, "--nargs", &n, "--arglen", &l])?;
    let line = text.lines().last().ok_or("storm printed nothing")?;
    let result: StormResult = serde_json::from_str(line).map_err(|e| format!("storm output '{line}': {e}"))?;
    if result.execs == 0 {
        return Err(format!("storm performed no exec ({} failed)", result.failed));
    }
    Ok(result)
}

// ---- tracer processes -------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    None,
    Proctap,
    Execsnoop,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::None => "no tracer",
            Tool::Proctap => "proctap",
            Tool::Execsnoop => "execsnoop",
        }
    }
}

/// A running tracer. Dropping it kills the process if it still runs and
/// deletes its output files, so no tracer outlives a failing driver.
struct TracerProc {
    tool: Tool,
    child: Child,
    out: PathBuf,
    err: PathBuf,
    reaped: bool,
}

impl TracerProc {
    fn spawn(tool: Tool, program: &Path, args: &[&str], pdeathsig: bool) -> Result<TracerProc> {
        let tag = format!("proctap-bench-{}-{}", std::process::id(), tool.label());
        let out = PathBuf::from(format!("/dev/shm/{tag}.out"));
        let err = PathBuf::from(format!("/dev/shm/{tag}.err"));
        let out_file = File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
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
        Ok(TracerProc { tool, child, out, err, reaped: false })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Fails if the tracer already exited.
    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.reaped = true;
                Err(format!("{} exited early ({status}): {}", self.tool.label(), self.stderr_text().trim()))
            }
            Err(e) => Err(format!("{}: wait: {e}", self.tool.label())),
        }
    }

    /// SIGINT, then wait for a clean exit (SIGKILL after `limit`).
    fn interrupt(&mut self, limit: Duration) -> Result<ExitStatus> {
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
                    return Err(format!("{} did not stop within {limit:?} of SIGINT; killed", self.tool.label()));
                }
                Err(e) => return Err(format!("{}: wait: {e}", self.tool.label())),
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
        let _ = fs::remove_file(&self.out);
        let _ = fs::remove_file(&self.err);
    }
}

/// Waits until the tracer holds newly loaded BPF programs, at least one BPF
/// link (attached) and an epoll fd (its ring/perf buffer is open; execsnoop
/// opens it right after printing its header, which stays in stdio's buffer
/// while stdout is a file), then ~300 ms more. Returns the tracer's program ids:
/// those it holds that were not loaded before it started.
fn wait_attached(tracer: &mut TracerProc, before: &BTreeSet<u64>) -> Result<BTreeSet<u64>> {
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
            return Err(format!("{} did not attach within 30 s: {}", tracer.tool.label(), tracer.stderr_text().trim()));
        }
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_millis(300));
    tracer.check_running()?;
    new_ids(tracer)
}

/// After the storm: waits until the tracer's output stopped growing (500 ms
/// without a new byte, 60 s at most), so a backlog it drains after the storm
/// ends is in both its CPU time and its output.
fn wait_settled(tracer: &mut TracerProc) -> Result<Duration> {
    let start = Instant::now();
    let size = |t: &TracerProc| fs::metadata(&t.out).map(|m| m.len()).unwrap_or(0);
    let mut last = size(tracer);
    let mut still = 0;
    while still < 2 && start.elapsed() < Duration::from_secs(60) {
        sleep(Duration::from_millis(250));
        tracer.check_running()?;
        let now = size(tracer);
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    Ok(start.elapsed())
}

// ---- counting what a tracer captured ------------------------------------------------

/// What a tracer wrote for the storm's execs.
#[derive(Default)]
struct Captured {
    events: u64,
    /// Sum over events of the argv bytes captured (each argument + 1 for its
    /// NUL), each capped at the real argv_bytes.
    argv_bytes: u64,
    /// Events whose whole argv was captured.
    whole: u64,
    /// proctap only: exit events of the storm's children.
    exits: u64,
}

/// A byte string in proctap's JSON: a string, or {"hex": "..."}.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonBytes {
    Text(String),
    Hex { hex: String },
}

impl JsonBytes {
    fn len(&self) -> usize {
        match self {
            JsonBytes::Text(s) => s.len(),
            JsonBytes::Hex { hex } => hex.len() / 2,
        }
    }

    fn is(&self, text: &str) -> bool {
        matches!(self, JsonBytes::Text(s) if s == text)
    }
}

#[derive(Deserialize)]
struct ProctapEvent {
    #[serde(rename = "type")]
    kind: String,
    comm: Option<JsonBytes>,
    #[serde(default)]
    argv: Vec<JsonBytes>,
    #[serde(default)]
    argv_truncated: bool,
    #[serde(default)]
    data_lost: bool,
}

fn count_proctap(path: &Path, argv_bytes: u64) -> Result<Captured> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut captured = Captured::default();
    let mut bad = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        let event: ProctapEvent = match serde_json::from_slice(&line) {
            Ok(event) => event,
            Err(_) => {
                bad += 1;
                continue;
            }
        };
        if !event.comm.as_ref().is_some_and(|c| c.is(CHILD_COMM)) {
            continue;
        }
        match event.kind.as_str() {
            "exec" => {
                let bytes: u64 = event.argv.iter().map(|a| a.len() as u64 + 1).sum();
                captured.events += 1;
                captured.argv_bytes += bytes.min(argv_bytes);
                if bytes == argv_bytes && !event.argv_truncated && !event.data_lost {
                    captured.whole += 1;
                }
            }
            "exit" => captured.exits += 1,
            _ => {}
        }
    }
    if bad > 0 {
        eprintln!("  warning: {bad} proctap output lines were not valid JSON");
    }
    Ok(captured)
}

/// execsnoop's text: "PCOMM PID PPID RET ARGS", ARGS being every captured
/// argument followed by a space, then " ..." when it left arguments out.
fn count_execsnoop(path: &Path, argv_bytes: u64) -> Result<(Captured, bool)> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut raw = Vec::new();
    let mut captured = Captured::default();
    let mut header = false;
    let mut first = true;
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&raw);
        let line = text.strip_suffix('\n').unwrap_or(&text);
        if first {
            first = false;
            if line.starts_with("PCOMM") {
                header = true;
                continue;
            }
        }
        // Four space-separated fields, then the arguments.
        let mut rest = line;
        let mut fields = Vec::with_capacity(4);
        for _ in 0..4 {
            rest = rest.trim_start_matches(' ');
            let end = rest.find(' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        if fields[0] != CHILD_COMM {
            continue;
        }
        let args = rest.strip_prefix(' ').unwrap_or(rest);
        let (args, cut) = match args.strip_suffix(" ...") {
            Some(kept) => (kept, true),
            None => (args, false),
        };
        let args = args.strip_suffix(' ').unwrap_or(args);
        let bytes: u64 = if args.is_empty() { 0 } else { args.split(' ').map(|a| a.len() as u64 + 1).sum() };
        captured.events += 1;
        captured.argv_bytes += bytes.min(argv_bytes);
        if bytes == argv_bytes && !cut {
            captured.whole += 1;
        }
    }
    Ok((captured, header))
}

// ---- one run --------------------------------------------------------------------------

struct RunResult {
    tool: Tool,
    storm: StormResult,
    captured: Captured,
    /// Per tracer program: run_time_ns and run_cnt grown during the storm.
    progs: Vec<Prog>,
    /// How the machine's CPU time was spent during the storm.
    cpu_use: String,
    /// Tracer CPU from just before the storm to when its output settled after it.
    cpu_ticks: u64,
    peak_rss_kib: u64,
    /// What the tracer itself said it lost.
    loss_note: String,
}

/// One sentence on where the machine's CPU time went during the storm.
fn cpu_use(run: &StormRun, tracer: Option<(Tool, f64)>) -> String {
    let tracer = match tracer {
        Some((t, ms)) => format!(" ({} itself used {ms:.0} ms of CPU during the storm)", t.label()),
        None => String::new(),
    };
    format!(
        "of the machine's CPU time during the storm, the storm used {:.1}%, everything else (tracer, other processes, interrupts) {:.1}%{tracer}, steal {:.1}%, idle {:.1}%",
        run.storm_pct, run.rest_pct, run.steal_pct, run.idle_pct
    )
}

fn run_untraced(opts: &Options, nargs: u32, arglen: u32) -> Result<RunResult> {
    let run = measured_storm(opts, nargs, arglen)?;
    Ok(RunResult {
        tool: Tool::None,
        storm: run.result,
        captured: Captured::default(),
        progs: Vec::new(),
        cpu_use: cpu_use(&run, None),
        cpu_ticks: 0,
        peak_rss_kib: 0,
        loss_note: String::new(),
    })
}

fn run_traced(opts: &Options, tool: Tool, nargs: u32, arglen: u32, pdeathsig: bool, clk_tck: u64) -> Result<RunResult> {
    let before: BTreeSet<u64> = bpf_progs()?.into_iter().map(|p| p.id).collect();
    let mut tracer = match tool {
        Tool::Proctap => TracerProc::spawn(tool, &opts.dump, &[], pdeathsig)?,
        Tool::Execsnoop => TracerProc::spawn(tool, &opts.execsnoop, &[], pdeathsig)?,
        Tool::None => unreachable!(),
    };
    let ids = wait_attached(&mut tracer, &before)?;
    let progs0 = prog_snapshot(&ids)?;
    let names: Vec<String> = progs0.iter().map(|p| format!("{}#{}", p.name, p.id)).collect();
    eprintln!("  {} (pid {}) attached: {}", tool.label(), tracer.pid(), names.join(", "));

    let cpu0 = cpu_ticks(tracer.pid())?;
    let run = measured_storm(opts, nargs, arglen)?;
    let cpu_mid = cpu_ticks(tracer.pid())?;
    let progs1 = prog_snapshot(&ids)?;
    let storm = run.result;
    let progs = prog_deltas(&progs0, &progs1);
    let settle = wait_settled(&mut tracer)?;
    let cpu1 = cpu_ticks(tracer.pid())?;
    let peak_rss_kib = peak_rss_kib(tracer.pid())?;
    let status = tracer.interrupt(Duration::from_secs(60))?;
    if !status.success() {
        eprintln!("  warning: {} exited with {status}", tool.label());
    }
    let stderr = tracer.stderr_text();
    let (captured, loss_note) = match tool {
        Tool::Proctap => {
            let captured = count_proctap(&tracer.out, storm.argv_bytes)?;
            let stats = stderr
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().filter(|v| v["type"] == "stats"));
            let note = match stats {
                Some(s) => format!(
                    "dump's final stats: events={} exec={} exit={} reserve_failures={} dropped_data={} argv_truncated={}",
                    s["events"], s["exec"], s["exit"], s["reserve_failures"], s["dropped_data"], s["argv_truncated"]
                ),
                None => format!("dump printed no stats line; stderr: {}", stderr.trim()),
            };
            (captured, note)
        }
        _ => {
            let (captured, header) = count_execsnoop(&tracer.out, storm.argv_bytes)?;
            if !header {
                eprintln!("  warning: execsnoop output does not start with its PCOMM header");
            }
            let (mut lost, mut reports) = (0u64, 0u64);
            for line in stderr.lines() {
                // "Lost N events on CPU #C!"
                if let Some(n) = line.strip_prefix("Lost ").and_then(|r| r.split(' ').next()) {
                    lost += n.parse::<u64>().unwrap_or(0);
                    reports += 1;
                }
            }
            (captured, format!("execsnoop's stderr reported {lost} lost events ({reports} \"Lost\" lines)"))
        }
    };
    eprintln!(
        "  {}: storm {} execs ({} failed) in {:.2} s; captured {} exec events{}; output settled {:.1} s after the storm; {}",
        tool.label(),
        storm.execs,
        storm.failed,
        storm.seconds,
        captured.events,
        if tool == Tool::Proctap { format!(" and {} exit events", captured.exits) } else { String::new() },
        settle.as_secs_f64(),
        loss_note
    );
    let runs: u64 = progs.iter().map(|p| p.run_cnt).sum();
    eprintln!(
        "  {}: BPF programs ran {} times for {} execs ({:.2} runs per exec)",
        tool.label(),
        runs,
        storm.execs,
        runs as f64 / storm.execs as f64
    );
    Ok(RunResult {
        tool,
        storm,
        captured,
        cpu_use: cpu_use(&run, Some((tool, (cpu_mid - cpu0) as f64 * 1000.0 / clk_tck as f64))),
        progs,
        cpu_ticks: cpu1 - cpu0,
        peak_rss_kib,
        loss_note,
    })
}

// ---- system state ------------------------------------------------------------------------

/// Restores what the benchmark changed on the machine when dropped.
struct SystemState {
    old_bpf_stats: Option<String>,
    mounted_tracefs: bool,
}

impl SystemState {
    fn prepare() -> Result<SystemState> {
        let mut state = SystemState { old_bpf_stats: None, mounted_tracefs: false };
        // execsnoop attaches to syscall tracepoints, which libbpf finds in tracefs.
        if !Path::new(TRACEFS).join("events").is_dir() && !Path::new("/sys/kernel/debug/tracing/events").is_dir() {
            eprintln!("tracefs is not mounted; mounting it on {TRACEFS} for execsnoop (unmounted at the end)");
            run_output("mount", &["-t", "tracefs", "tracefs", TRACEFS])?;
            state.mounted_tracefs = true;
        }
        let old = read_text(BPF_STATS)?.trim().to_string();
        fs::write(BPF_STATS, "1").map_err(|e| format!("{BPF_STATS}: {e}"))?;
        state.old_bpf_stats = Some(old);
        Ok(state)
    }
}

impl Drop for SystemState {
    fn drop(&mut self) {
        if let Some(old) = &self.old_bpf_stats {
            if let Err(e) = fs::write(BPF_STATS, old) {
                eprintln!("warning: cannot restore {BPF_STATS} to {old}: {e}");
            }
        }
        if self.mounted_tracefs {
            if let Err(e) = run_output("umount", &[TRACEFS]) {
                eprintln!("warning: cannot unmount {TRACEFS}: {e}");
            }
        }
    }
}

// ---- report --------------------------------------------------------------------------------

/// The 1-minute load average, as /proc/loadavg prints it.
fn load_average() -> String {
    read_text("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "n/a".into()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

fn table(out: &mut String, nargs: u32, arglen: u32, runs: &[RunResult], clk_tck: u64) {
    let argv_bytes = runs[0].storm.argv_bytes;
    let base = runs[0].storm.execs as f64 / runs[0].storm.seconds;
    let _ = writeln!(
        out,
        "### argv {nargs} × {arglen} bytes ({argv_bytes} bytes of argument area per exec, argv[0] and NULs included)\n"
    );
    out.push_str(
        "| tool | exec/s | vs no tracer | events / execs | in-kernel ns per exec | tracer CPU ms per 1000 events | peak RSS MiB | argv bytes captured | events with whole argv |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in runs {
        let rate = r.storm.execs as f64 / r.storm.seconds;
        let mut row = format!("| {} | {:.0} | {:.3} |", r.tool.label(), rate, rate / base);
        if r.tool == Tool::None {
            row.push_str(" — | — | — | — | — | — |");
        } else {
            let c = &r.captured;
            let ns: u64 = r.progs.iter().map(|p| p.run_time_ns).sum();
            let cpu_ms = r.cpu_ticks as f64 * 1000.0 / clk_tck as f64;
            let per_k =
                if c.events == 0 { "n/a".to_string() } else { format!("{:.1}", cpu_ms * 1000.0 / c.events as f64) };
            let _ = write!(
                row,
                " {} ({} / {}) | {:.0} | {} | {:.1} | {} | {} |",
                pct(c.events, r.storm.execs),
                c.events,
                r.storm.execs,
                ns as f64 / r.storm.execs as f64,
                per_k,
                r.peak_rss_kib as f64 / 1024.0,
                pct(c.argv_bytes, c.events * argv_bytes),
                pct(c.whole, c.events),
            );
        }
        out.push_str(&row);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nexec/s: execs that succeeded (child exited 0) over the storm's elapsed seconds. \
vs no tracer: exec/s over the no-tracer run's exec/s. \
events / execs: exec events with comm `{CHILD_COMM}` in the tracer's output file over the execs performed. \
in-kernel ns per exec: growth of bpf_stats `run_time_ns` (`bpftool -j prog show`) over the storm, summed over the tracer's programs, over the execs performed. \
tracer CPU: the tracer's utime+stime (/proc/PID/stat) from just before the storm until its output stopped growing after it, per 1000 captured exec events. \
peak RSS: the tracer's VmHWM (/proc/PID/status) just before it was stopped. \
argv bytes captured: each captured argument's length + 1 for its NUL, capped at the real {argv_bytes} bytes, averaged over captured events. \
whole argv: captured events with all {argv_bytes} bytes and no truncation mark.\n"
    );
    for r in runs {
        let mut note = format!("- {}: ", r.tool.label());
        for p in &r.progs {
            let per_run = if p.run_cnt == 0 { 0.0 } else { p.run_time_ns as f64 / p.run_cnt as f64 };
            let _ = write!(note, "`{}` ran {} times, {per_run:.0} ns each; ", p.name, p.run_cnt);
        }
        if !r.loss_note.is_empty() {
            let _ = write!(note, "{}; ", r.loss_note);
        }
        note.push_str(&r.cpu_use);
        note.push('.');
        out.push_str(&note);
        out.push('\n');
    }
    out.push('\n');
}

fn execsnoop_version(path: &Path) -> String {
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

// ---- main ------------------------------------------------------------------------------------

fn run(opts: &Options) -> Result<String> {
    if !is_root()? {
        return Err("must run as root (BPF, bpf_stats, /proc of the tracers)".into());
    }
    if !opts.execsnoop.is_file() {
        return Err(format!(
            "execsnoop not found at {}: install it with `apt-get install libbpf-tools`",
            opts.execsnoop.display()
        ));
    }
    for (what, path) in [("--storm", &opts.storm), ("--child", &opts.child), ("--dump", &opts.dump)] {
        if !path.is_file() {
            return Err(format!("{what} {}: no such file (build it first)", path.display()));
        }
    }
    run_output("bpftool", &["version"]).map_err(|e| format!("bpftool is needed: {e}"))?;
    let clk_tck: u64 =
        run_output("getconf", &["CLK_TCK"])?.trim().parse().map_err(|_| "getconf CLK_TCK: not a number".to_string())?;
    let pdeathsig = run_output("setpriv", &["--help"]).map(|h| h.contains("--pdeathsig")).unwrap_or(false);
    if !pdeathsig {
        eprintln!("setpriv --pdeathsig is not available: tracers are started directly");
    }
    let machine = bench_util::machine();
    let date = bench_util::today();
    let commit = run_output("git", &["describe", "--always", "--dirty"]).map(|s| s.trim().to_string()).ok();

    let load_start = load_average();
    let _state = SystemState::prepare()?;
    let mut tables = String::new();
    for &(nargs, arglen) in &opts.sizes {
        let mut runs = Vec::new();
        for tool in [Tool::None, Tool::Proctap, Tool::Execsnoop] {
            eprintln!("[{nargs}x{arglen}] {} : {} s storm", tool.label(), opts.seconds);
            let result = match tool {
                Tool::None => run_untraced(opts, nargs, arglen)?,
                _ => run_traced(opts, tool, nargs, arglen, pdeathsig, clk_tck)?,
            };
            eprintln!(
                "  {}: {:.0} exec/s ({} workers)",
                tool.label(),
                result.storm.execs as f64 / result.storm.seconds,
                result.storm.workers
            );
            runs.push(result);
            sleep(Duration::from_millis(500));
        }
        table(&mut tables, nargs, arglen, &runs, clk_tck);
    }

    let mut out = String::new();
    out.push_str("## Exec storm: proctap vs execsnoop\n\n");
    out.push_str("Reproduce (as root): `make bench-exec`\n\n");
    let _ = writeln!(
        out,
        "Machine: {machine}. Date: {date} (UTC). \
Load average (1 min, /proc/loadavg) before the first run: {load_start}.{}\n",
        commit.map(|c| format!(" proctap at `{c}`.")).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "`storm` runs one worker per online CPU, each pinned to its CPU and looping vfork + execve of the static \
`{CHILD_COMM}` (which exits at once) + waitpid for {} s, with N arguments of exactly L printable bytes each. \
Each size runs three times in a row: no tracer; proctap's `dump` with default options (argv cap 16 KiB; it also reports \
every exit, so it emits two events per exec); libbpf-tools' `execsnoop` ({}) with its defaults and no filter. \
Each tracer writes to a file in /dev/shm rather than /dev/null on purpose: completeness and argv fidelity are \
counted from what it wrote, and execsnoop leaves no mark in its output for the events it dropped. \
kernel.bpf_stats_enabled was 1 for every run, which adds a clock read before and after every BPF program run.\n",
        opts.seconds,
        execsnoop_version(&opts.execsnoop)
    );
    out.push_str(&tables);
    Ok(out)
}

fn main() -> ExitCode {
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(msg) => {
            eprintln!("bench_exec: {msg}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(markdown) => {
            print!("{markdown}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("bench_exec: {msg}");
            ExitCode::FAILURE
        }
    }
}
