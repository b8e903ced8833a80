//! The hot test program (tests/fixtures/hot.c), built per test: a plain
//! binary with symbols and DWARF, a stripped copy whose debug information
//! lives only in a separate file found by build id, and copies named after a
//! unique comm. Needs cc, objcopy, strip and readelf (gcc and binutils).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

/// The functions of hot.c, outermost first. pt_hot_leaf_a takes about 3/4
/// of the time, pt_hot_leaf_b about 1/4; both are called from pt_hot_outer,
/// which main calls.
pub const HOT_OUTER: &str = "pt_hot_outer";
pub const HOT_LEAF_A: &str = "pt_hot_leaf_a";
pub const HOT_LEAF_B: &str = "pt_hot_leaf_b";

/// Longest comm the kernel keeps (TASK_COMM_LEN - 1).
pub const COMM_MAX: usize = 15;

pub struct HotBinaries {
    /// std::env::temp_dir()/proctap-fixture-NAME-PID, removed on drop
    /// (kept when PROCTAP_KEEP_FIXTURES is set).
    pub dir: PathBuf,
    /// Built with -O0 -g -fno-omit-frame-pointer (gcc drops the frame of leaf functions at -O1 even then) and a GNU build id: .symtab and DWARF inside.
    pub plain: PathBuf,
    /// `strip --strip-all` of `plain`: no .symtab, no DWARF, same build id.
    pub stripped: PathBuf,
    /// Holds `.build-id/<2 hex>/<38 hex>.debug`, the only copy of the debug information of `stripped`.
    pub debug_dir: PathBuf,
    /// The debug file itself (inside `debug_dir`).
    pub debug_file: PathBuf,
    /// The build id as lowercase hex (40 digits for the default sha1).
    pub build_id: String,
    /// "ptz" + NAME, cut to 15 bytes: the comm of `named`, unique per test name.
    pub comm: String,
    /// A copy of `plain` whose file name is `comm`, so its processes have that comm.
    pub named: PathBuf,
}

/// The source of the hot program.
pub fn hot_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hot.c")
}

/// Runs a build tool, panicking with the reason when it is missing or fails.
fn tool(program: &str, args: &[&str]) -> String {
    let out = match Command::new(program).args(args).stdin(Stdio::null()).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "the test fixture needs `{program}`, which is not installed: install gcc and binutils \
             (`./dev.sh setup` does)"
        ),
        Err(e) => panic!("cannot run {program}: {e}"),
    };
    if !out.status.success() {
        panic!("{program} {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("fixture paths are UTF-8")
}

/// The GNU build id of an ELF file, as `readelf -n` prints it.
pub fn read_build_id(elf: &Path) -> String {
    let notes = tool("readelf", &["-n", path_str(elf)]);
    notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID:").map(|id| id.trim().to_ascii_lowercase()))
        .unwrap_or_else(|| panic!("{}: no GNU build id note (readelf -n)", elf.display()))
}

/// Names of the ELF sections of a file (`readelf -SW`).
pub fn section_names(elf: &Path) -> Vec<String> {
    let text = tool("readelf", &["-SW", path_str(elf)]);
    text.lines()
        .filter_map(|l| {
            // "  [Nr] Name              Type ...": the name follows "] ".
            let rest = l.trim_start().strip_prefix('[')?.split_once(']')?.1;
            let name = rest.split_whitespace().next()?;
            (name.starts_with('.')).then(|| name.to_string())
        })
        .collect()
}

/// `comm` for a test name: "ptz" + name, cut to what the kernel keeps.
pub fn comm_for(name: &str) -> String {
    let mut comm = format!("ptz{name}");
    while comm.len() > COMM_MAX {
        comm.pop();
    }
    comm
}

/// Compiles hot.c for the test `name` into its own temporary directory.
/// `name` must be unique among the tests (it names the directory and the comm).
pub fn build_hot(name: &str) -> HotBinaries {
    assert!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "fixture name {name:?}: use letters, digits, '_' and '-'"
    );
    let dir = std::env::temp_dir().join(format!("proctap-fixture-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));

    let plain = dir.join("hot");
    let source = hot_source();
    tool("cc", &["-O0", "-g", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o", path_str(&plain), path_str(&source)]);
    let build_id = read_build_id(&plain);
    assert!(build_id.len() > 2 && build_id.bytes().all(|b| b.is_ascii_hexdigit()), "odd build id {build_id:?}");

    let debug_dir = dir.join("debug");
    let id_dir = debug_dir.join(".build-id").join(&build_id[..2]);
    std::fs::create_dir_all(&id_dir).unwrap_or_else(|e| panic!("{}: {e}", id_dir.display()));
    let debug_file = id_dir.join(format!("{}.debug", &build_id[2..]));
    tool("objcopy", &["--only-keep-debug", path_str(&plain), path_str(&debug_file)]);
    let stripped = dir.join("hot.stripped");
    tool("strip", &["--strip-all", "-o", path_str(&stripped), path_str(&plain)]);

    let comm = comm_for(name);
    let named = dir.join(&comm);
    // cp, not std::fs::copy: a file this process held open for writing could
    // make a concurrent test's fork+exec of it fail with ETXTBSY.
    tool("cp", &[path_str(&plain), path_str(&named)]);

    HotBinaries { dir, plain, stripped, debug_dir, debug_file, build_id, comm, named }
}

/// Compiles tests/fixtures/`source` (C, with pthreads) into a fresh
/// temporary directory as an executable named `comm` (so its processes have
/// that command name). Returns the executable; the directory is left for the
/// system's temporary-file cleanup.
pub fn build_c(source: &str, comm: &str) -> PathBuf {
    assert!(!comm.is_empty() && comm.len() <= COMM_MAX && !comm.contains('/'), "comm {comm:?}");
    let dir = std::env::temp_dir().join(format!("proctap-fixture-{comm}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(source);
    let exe = dir.join(comm);
    tool("cc", &["-O1", "-Wall", "-pthread", "-o", path_str(&exe), path_str(&src)]);
    exe
}

impl HotBinaries {
    /// A copy of `binary` (one of this fixture's) named `comm`, so the
    /// processes it starts have that comm (at most 15 bytes, no '/').
    pub fn named_copy(&self, binary: &Path, comm: &str) -> PathBuf {
        assert!(
            !comm.is_empty() && comm.len() <= COMM_MAX && !comm.contains('/'),
            "comm {comm:?}: 1 to {COMM_MAX} bytes, no '/'"
        );
        let path = self.dir.join(comm);
        tool("cp", &[path_str(binary), path_str(&path)]);
        path
    }
}

impl Drop for HotBinaries {
    fn drop(&mut self) {
        if std::env::var_os("PROCTAP_KEEP_FIXTURES").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts `path` with `args` (stdin null, stdout piped, stderr inherited).
/// Retries a few times on ETXTBSY, which another test's fork can cause.
pub fn spawn(path: &Path, args: &[&str]) -> Child {
    let mut tries = 0;
    loop {
        match Command::new(path).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                tries += 1;
                sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot start {}: {e}", path.display()),
        }
    }
}

/// Starts `path` with `--ready` added to `args` and returns once it printed
/// "ready", i.e. is about to start its work.
pub fn spawn_ready(path: &Path, args: &[&str]) -> Child {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--ready");
    let mut child = spawn(path, &all);
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    if read.is_err() || line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{} did not print ready (got {line:?}, {read:?})", path.display());
    }
    child
}

/// Kills and reaps a child, ignoring that it may have exited already.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
