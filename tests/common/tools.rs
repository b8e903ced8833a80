//! Helpers for tests of the command-line tools: where they are built, and
//! running them as a user would (with a deadline, reading their stats).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// target/<profile>/examples/NAME, next to this test binary.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples").join(name)
}

/// The C dumper `make` builds.
pub fn c_example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("example")
}

/// The dumpers (Rust, then C), when built and the kernel lets us trace;
/// else none, after saying why (under CI=true it fails instead).
pub fn dumpers() -> Vec<PathBuf> {
    static KERNEL: OnceLock<bool> = OnceLock::new();
    let all = [example("dump"), c_example()];
    for path in &all {
        if !path.exists() {
            assert!(!ci(), "CI=true: {} was not built (./dev.sh test runs make first)", path.display());
            eprintln!("SKIPPED: {} not built; run make", path.display());
            return Vec::new();
        }
    }
    // One probe per test binary: a tracer that starts and stops.
    if !*KERNEL.get_or_init(|| super::start(&proctap::Config::new()).is_some()) {
        return Vec::new();
    }
    all.to_vec()
}

/// True when the kernel lacks the socket tracepoints that connection and
/// net_data events need (before Linux 6.3), after asserting that each
/// dumper refuses `args` there with exit status 1 and an error naming the
/// missing tracepoint: the test has then checked what this kernel can do.
pub fn net_unsupported(dumpers: &[PathBuf], args: &[&'static str]) -> bool {
    if super::kernel_has_tracepoint("sock_send_length") {
        return false;
    }
    for dumper in dumpers {
        let out = Command::new(dumper).args(args).args(["--duration", "0"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", dumper.display());
        assert!(stderr.contains("sock_send_length"), "{}: {stderr}", dumper.display());
        eprintln!("UNSUPPORTED on this kernel, as its BTF confirms: tracepoint sock_send_length ({})", stderr.trim());
    }
    true
}

/// Waits for a child, killing it after `limit`; None when it had to be killed.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stderr of a finished child, and its last line parsed as the stats JSON.
pub fn stats_of(child: &mut Child) -> (String, serde_json::Value) {
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let last = err.lines().last().unwrap_or_default();
    let stats = serde_json::from_str(last).unwrap_or(serde_json::Value::Null);
    (err, stats)
}

/// A dumper whose output nobody reads (its stderr piped, for the stats): an
/// unread stdout pipe would fill with every process' events on a busy
/// machine and block it.
pub fn spawn_unread(path: &Path, args: &[&OsStr]) -> Child {
    Command::new(path).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

pub fn spawn_piped(path: &Path, args: &[&OsStr]) -> Child {
    Command::new(path).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

pub fn os(args: &[&'static str]) -> Vec<&'static OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

/// What a dumper run printed.
pub struct Dump {
    pub out: String,
    pub stats: serde_json::Value,
    pub pid: u32,
}

/// Runs a dumper with `args` (and --duration 3) while `act` makes events
/// (once it attached); returns what it printed once it exited 0.
pub fn dump_while(dumper: &Path, args: &[&'static str], act: impl FnOnce()) -> Dump {
    let mut all = os(args);
    all.extend(os(&["--duration", "3"]));
    let mut child = spawn_piped(dumper, &all);
    // Read as it comes: a dumper blocked on a full pipe would lose events.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    std::thread::sleep(Duration::from_millis(1500));
    act();
    let out = reader.join().unwrap();
    let status = wait_for(&mut child, Duration::from_secs(30));
    let (err, stats) = stats_of(&mut child);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}: {err}", dumper.display());
    Dump { out, stats, pid: child.id() }
}

/// The keys of a JSON object, in the order the line has them.
pub fn top_level_keys(line: &str) -> Vec<String> {
    let (mut keys, mut depth, mut in_str, mut escaped, mut start) = (Vec::new(), 0, false, false, 0);
    for (i, c) in line.char_indices() {
        match (in_str, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => {
                in_str = false;
                if depth == 1 && line[i + 1..].starts_with(':') {
                    keys.push(line[start..i].to_string());
                }
            }
            (false, '"') => (in_str, start) = (true, i + 1),
            (false, '{' | '[') => depth += 1,
            (false, '}' | ']') => depth -= 1,
            _ => {}
        }
    }
    keys
}

/// Sends `sig` to `child`.
pub fn signal(child: &Child, sig: i32) {
    // The shell's own kill: /bin/kill (procps) is not on a bare Debian base.
    let ok = Command::new("sh").arg("-c").arg(format!("kill -{sig} {}", child.id())).status().unwrap();
    assert!(ok.success(), "kill -{sig} {}", child.id());
}

/// Waits until the process handles `sig` (its handler is installed): a
/// signal sent then must stop it cleanly, even before tracing started.
pub fn wait_handler(child: &Child, sig: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).map(str::trim).unwrap_or("0");
        if u64::from_str_radix(caught, 16).unwrap_or(0) & (1 << (sig - 1)) != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("{} never installed a handler for signal {sig}", child.id());
}

/// How a child ended after a signal.
pub struct Stopped {
    pub status: Option<ExitStatus>,
    pub stderr: String,
    /// The last stderr line, parsed (Null when it is not JSON).
    pub stats: serde_json::Value,
    /// From the signal to the exit.
    pub took: Duration,
}

/// Sends `sig` to `child` `after` it installed its handler (zero: while it
/// may still be starting), and waits up to 30 s for it to exit.
pub fn stop_by_signal(child: &mut Child, sig: i32, after: Duration) -> Stopped {
    wait_handler(child, sig as u32);
    std::thread::sleep(after);
    let sent = Instant::now();
    signal(child, sig);
    let status = wait_for(child, Duration::from_secs(30));
    let took = sent.elapsed();
    let (stderr, stats) = stats_of(child);
    Stopped { status, stderr, stats, took }
}
