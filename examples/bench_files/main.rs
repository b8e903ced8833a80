//! File benchmark (`make bench-files`): what tracing opens and stdout writes
//! costs and what it captures, for proctap's dumper and (opens only) for
//! libbpf-tools' opensnoop.
//!
//!     bench_files --fstorm build/bench/pt-fstorm --dump target/release/examples/dump \
//!         --opensnoop /usr/sbin/opensnoop [--seconds 5] [--write-seconds 3] \
//!         [--write-sizes 64,1K,16K,64K]
//!
//! Run as root. The open storm runs three times: no tracer, proctap's `dump
//! --files`, `opensnoop`. The stdout write storm runs twice per size: no
//! tracer, `dump --stdio --comm pt-fstorm`. Progress goes to stderr; a
//! Markdown section goes to stdout. Every number in it is measured here;
//! nothing is asserted.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

#[path = "../bench_util/mod.rs"]
mod bench_util;
mod capture;
mod report;
mod runs;

use bench_util::system::{
    clk_tck, git_commit, is_root, load_average, pdeathsig_available, run_output, BpfStats, Tracefs,
};
use runs::{Machine, Tool, Workload};

const USAGE: &str = "usage: bench_files --fstorm PATH --dump PATH --opensnoop PATH \
[--seconds S] [--write-seconds S] [--write-sizes BYTES,BYTES,...] (sizes may end in K: 64K)";
/// The storm's command name, which the tracers report.
pub const STORM_COMM: &str = "pt-fstorm";
/// Bytes of the open storm's file name (its directory comes on top).
const NAME_BYTES: usize = 100;
/// dump's write cap at least: the default sizes are captured whole.
const WRITE_MAX_MIN: u64 = 64 << 10;

// ---- options ----------------------------------------------------------------

pub struct Options {
    pub fstorm: PathBuf,
    pub dump: PathBuf,
    pub opensnoop: PathBuf,
    /// The open storm's length.
    pub seconds: f64,
    /// Each write storm's length.
    pub write_seconds: f64,
    pub write_sizes: Vec<u64>,
}

/// "64,1K,16K,64K": bytes, K meaning 1024, each 1 to 1 MiB.
fn parse_sizes(text: &str) -> Result<Vec<u64>, String> {
    text.split(',')
        .map(|part| {
            let part = part.trim();
            let (digits, unit) = match part.strip_suffix(['K', 'k']) {
                Some(d) => (d, 1024),
                None => (part, 1),
            };
            let n: u64 = digits.parse().map_err(|_| format!("--write-sizes: '{part}' is not a size (64, 1K, ...)"))?;
            let bytes = n * unit;
            if !(1..=1 << 20).contains(&bytes) {
                return Err(format!("--write-sizes: {part} is not between 1 byte and 1024K"));
            }
            Ok(bytes)
        })
        .collect()
}

fn parse_seconds(name: &str, text: &str) -> Result<f64, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("{name}: not a number: {text}"))?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{name} must be positive"));
    }
    Ok(seconds)
}

fn parse_options() -> Result<Options, String> {
    let mut opts = Options {
        fstorm: PathBuf::from("build/bench/pt-fstorm"),
        dump: PathBuf::from("target/release/examples/dump"),
        opensnoop: PathBuf::from("/usr/sbin/opensnoop"),
        seconds: 5.0,
        write_seconds: 3.0,
        write_sizes: parse_sizes("64,1K,16K,64K")?,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--fstorm" => opts.fstorm = value()?.into(),
            "--dump" => opts.dump = value()?.into(),
            "--opensnoop" => opts.opensnoop = value()?.into(),
            "--seconds" => opts.seconds = parse_seconds("--seconds", &value()?)?,
            "--write-seconds" => opts.write_seconds = parse_seconds("--write-seconds", &value()?)?,
            "--write-sizes" => opts.write_sizes = parse_sizes(&value()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(opts)
}

impl Options {
    /// dump's --write-max: 64 KiB, or the largest write size if larger.
    pub fn write_max(&self) -> u64 {
        self.write_sizes.iter().copied().max().unwrap_or(0).max(WRITE_MAX_MIN)
    }
}

// ---- the open storm's file --------------------------------------------------

/// The file the open storm opens: empty, in a directory of its own in
/// /dev/shm, with a NAME_BYTES-byte name, so a tracer that cuts paths shows
/// it. Both are removed on drop.
struct TargetFile {
    dir: PathBuf,
    path: String,
}

impl TargetFile {
    fn create() -> Result<TargetFile, String> {
        let dir = PathBuf::from(format!("/dev/shm/proctap-bench-files-{}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e} (is /dev/shm writable?)", dir.display()))?;
        let mut name = String::from("open-storm-target-");
        let letters = (b'a'..=b'z').cycle().take(NAME_BYTES - name.len() - 1).map(char::from);
        name.extend(letters);
        name.push('.');
        let path = dir.join(&name);
        fs::write(&path, b"").map_err(|e| format!("{}: {e}", path.display()))?;
        let path = path.to_str().ok_or("the target path is not UTF-8")?.to_string();
        Ok(TargetFile { dir, path })
    }
}

impl Drop for TargetFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_dir(&self.dir);
    }
}

// ---- main -------------------------------------------------------------------------

fn check_inputs(opts: &Options) -> Result<(), String> {
    if !is_root()? {
        return Err("must run as root (BPF, bpf_stats, /proc of the tracers)".into());
    }
    if !opts.opensnoop.is_file() {
        return Err(format!(
            "opensnoop not found at {}: install it with `apt-get install libbpf-tools`",
            opts.opensnoop.display()
        ));
    }
    for (what, path) in [("--fstorm", &opts.fstorm), ("--dump", &opts.dump)] {
        if !path.is_file() {
            return Err(format!("{what} {}: no such file (build it first: ./dev.sh bench files)", path.display()));
        }
    }
    if opts.fstorm.file_name().and_then(|n| n.to_str()) != Some(STORM_COMM) {
        return Err(format!("--fstorm {}: the program must be named {STORM_COMM} (its comm)", opts.fstorm.display()));
    }
    run_output("bpftool", &["version"]).map_err(|e| format!("bpftool is needed: {e}"))?;
    Ok(())
}

fn machine_setup() -> Result<Machine, String> {
    let pdeathsig = pdeathsig_available();
    if !pdeathsig {
        eprintln!("setpriv --pdeathsig is not available: tracers are started directly");
    }
    Ok(Machine { clk_tck: clk_tck()?, pdeathsig })
}

/// The open storm: no tracer, proctap, opensnoop.
fn open_runs(opts: &Options, machine: &Machine, target: &TargetFile) -> Result<Vec<runs::Run>, String> {
    let workload = Workload::Open { path: &target.path };
    let mut out = Vec::new();
    for tool in [Tool::None, Tool::Proctap, Tool::Opensnoop] {
        eprintln!("[open] {} : {} s storm", tool.label(), opts.seconds);
        out.push(runs::run(opts, machine, tool, &workload)?);
        sleep(Duration::from_millis(500));
    }
    Ok(out)
}

/// The stdout write storm at every size: no tracer, proctap.
fn write_runs(opts: &Options, machine: &Machine) -> Result<Vec<runs::Run>, String> {
    let mut out = Vec::new();
    for &size in &opts.write_sizes {
        for tool in [Tool::None, Tool::Proctap] {
            eprintln!("[write {size} B] {} : {} s storm", tool.label(), opts.write_seconds);
            out.push(runs::run(opts, machine, tool, &Workload::Write { size })?);
            sleep(Duration::from_millis(500));
        }
    }
    Ok(out)
}

fn run(opts: &Options) -> Result<String, String> {
    check_inputs(opts)?;
    let machine = machine_setup()?;
    let load_start = load_average();
    // opensnoop and proctap's open and write programs attach to syscall
    // tracepoints, which libbpf finds in tracefs.
    let _tracefs = Tracefs::ensure("opensnoop and proctap's syscall tracepoints")?;
    let _bpf_stats = BpfStats::enable()?;
    let target = TargetFile::create()?;
    let opens = open_runs(opts, &machine, &target)?;
    let writes = write_runs(opts, &machine)?;

    let mut out = String::new();
    out.push_str("## Files: open storm and stdout write storm, proctap vs opensnoop\n\n");
    out.push_str("Reproduce (as root): `make bench-files`\n\n");
    let _ = writeln!(
        out,
        "Machine: {}. Date: {} (UTC). Load average (1 min, /proc/loadavg) before the first run: {load_start}.{}\n",
        bench_util::machine(),
        bench_util::today(),
        git_commit().map(|c| format!(" proctap at `{c}`.")).unwrap_or_default()
    );
    report::method(&mut out, opts, &target.path);
    report::open_table(&mut out, &opens, &target.path, machine.clk_tck);
    report::write_table(&mut out, opts, &writes, machine.clk_tck);
    Ok(out)
}

fn main() -> ExitCode {
    bench_util::main("bench_files", parse_options, run)
}

/// The path as the report prints it: its length and its directory.
pub fn describe_path(path: &str) -> String {
    let dir = Path::new(path).parent().map(|d| d.display().to_string()).unwrap_or_default();
    format!("{} bytes: a {NAME_BYTES}-byte name in {dir}/", path.len())
}
