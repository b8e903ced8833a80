//! BPF fixtures (tests/fixtures/*.bpf.c) compiled by clang at test time.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

/// Whether this is CI (CI=true), where a missing tool is a failure, not a skip.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The clang to compile fixtures with: $CLANG, clang-19 or clang.
fn clang() -> Option<String> {
    let candidates = std::env::var("CLANG").into_iter().chain(["clang-19".into(), "clang".into()]);
    candidates.into_iter().find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The fixture `name` (tests/fixtures/NAME.bpf.c) compiled into the test
/// target directory, rebuilt when its source or the shared header changed;
/// `None` (after saying why) where clang is missing outside CI.
pub fn fixture(name: &str) -> Option<PathBuf> {
    fixture_with(name, &[])
}

/// The newest modification time of `path` or, for a directory, of the
/// files in it.
fn newest(path: &Path) -> Option<SystemTime> {
    if path.is_dir() {
        let files = std::fs::read_dir(path).ok()?.flatten().map(|e| e.path()).filter(|p| p.is_file());
        files.filter_map(|p| modified(&p)).max()
    } else {
        modified(path)
    }
}

/// [`fixture`] with include directories (relative to the repository's
/// root), whose files count as its inputs too.
pub fn fixture_with(name: &str, includes: &[&str]) -> Option<PathBuf> {
    build(name, includes, None, "v3")
}

/// [`fixture`] for another `-mcpu` (v4 for its instructions).
pub fn fixture_cpu(name: &str, mcpu: &str) -> Option<PathBuf> {
    build(name, &[], None, mcpu)
}

/// [`fixture`] compiled with the macro `define` defined (into its own
/// object, NAME-DEFINE.bpf.o).
pub fn fixture_defined(name: &str, define: &str) -> Option<PathBuf> {
    build(name, &[], Some(define), "v3")
}

fn build(name: &str, includes: &[&str], define: Option<&str>, mcpu: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let includes: Vec<PathBuf> = includes.iter().map(|i| root.join(i)).collect();
    let src = dir.join(format!("{name}.bpf.c"));
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-fixtures");
    std::fs::create_dir_all(&out_dir).expect("create the fixture directory");
    let obj = match define {
        Some(d) => out_dir.join(format!("{name}-{d}.bpf.o")),
        None => out_dir.join(format!("{name}.bpf.o")),
    };
    let inputs = [src.clone(), dir.join("vm.h")].into_iter().chain(includes.iter().cloned());
    let newest_input = inputs.filter_map(|p| newest(&p)).max();
    if modified(&obj).is_some_and(|o| newest_input.is_some_and(|i| o >= i)) {
        return Some(obj);
    }
    let Some(clang) = clang() else {
        assert!(!ci(), "CI=true: clang (clang-19) is needed to build the BPF fixtures");
        eprintln!("SKIPPED: no clang to build the BPF fixture {name}.bpf.c (set CLANG or install clang-19)");
        return None;
    };
    // Tests of one binary run in threads: each compiles to its own file
    // and the rename makes the object appear whole.
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let n = BUILDS.fetch_add(1, Ordering::Relaxed);
    let tmp = obj.with_extension(format!("o.{}.{n}", std::process::id()));
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", &format!("-mcpu={mcpu}")])
        .args(includes.iter().map(|i| format!("-I{}", i.display())))
        .args(define.map(|d| format!("-D{d}")))
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&tmp)
        .status()
        .expect("run clang");
    assert!(status.success(), "{clang} failed to compile {}", src.display());
    std::fs::rename(&tmp, &obj).expect("move the fixture into place");
    Some(obj)
}

/// The bytes of fixture `name`, or `None` when it cannot be built here;
/// `isa` is built for cpu v4.
pub fn fixture_bytes(name: &str) -> Option<Vec<u8>> {
    let path = if name == "isa" { fixture_cpu(name, "v4") } else { fixture(name) };
    path.map(|p| std::fs::read(p).expect("read the fixture"))
}
