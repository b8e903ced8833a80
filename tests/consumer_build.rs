//! A crate that depends on proctap by path builds with cargo alone: no
//! clang, bpftool, llvm-strip or libclang (they are shadowed on PATH and in
//! the variables the build reads), only a C compiler, make and libelf's
//! headers. The binary it makes uses README's API, traces an exec, and
//! needs no libbpf or zlib at run time (libelf.so.1 is the one library
//! beyond libc it loads). User tracepoints
//! (PROCTAP_EVENTS) are the one case that needs the BPF toolchain: without
//! proctap's `bpf-rebuild` feature the build says so.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

/// The consumer: README's API, spelled with the types it promises.
const MAIN_RS: &str = r#"
use proctap::{Config, Event, Tracer};

fn main() {
    let marker = format!("pt-consumer-{}", std::process::id());
    let tracer = match Tracer::start(&Config::new()) {
        Ok(tracer) => tracer,
        Err(e) => {
            eprintln!("cannot start: {e}");
            std::process::exit(3);
        }
    };
    let events: &crossbeam_channel::Receiver<proctap::Batch> = tracer.events();
    let child = std::process::Command::new("/bin/true").arg(&marker).status().expect("running /bin/true");
    assert!(child.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let Ok(batch) = events.recv_timeout(std::time::Duration::from_millis(100)) else { continue };
        for event in &batch {
            if let Event::Exec(e) = event {
                let (pid, ppid): (u32, u32) = (e.pid, e.ppid);
                let argv: Vec<&[u8]> = e.argv.iter().collect();
                if argv.iter().any(|a| *a == marker.as_bytes()) {
                    println!("exec pid={pid} ppid={ppid} self={}", std::process::id());
                    tracer.stop().expect("stopping");
                    return;
                }
            }
        }
    }
    eprintln!("no exec event for {marker}");
    std::process::exit(1);
}
"#;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The consumer crate, in a scratch directory, with proctap's lock file so
/// that it resolves to the versions already downloaded (the build runs
/// offline).
fn consumer_crate() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proctap-consumer-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"pt-consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
         proctap = {{ path = {:?} }}\ncrossbeam-channel = \"0.5\"\n\n[workspace]\n",
        root().display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN_RS).unwrap();
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

/// A directory of stand-ins for the BPF toolchain: each records that it was
/// run (in `ran`) and fails.
fn shadow_toolchain(dir: &Path) -> PathBuf {
    let bin = dir.join("shadow");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["clang", "clang-19", "bpftool", "llvm-strip", "llvm-strip-19", "llvm-config", "llvm-config-19"] {
        let script = format!("#!/bin/sh\necho {tool} >> {}\nexit 127\n", dir.join("ran").display());
        let path = bin.join(tool);
        std::fs::write(&path, script).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    bin
}

/// `cargo build --release --offline` of the consumer with the toolchain
/// shadowed; `events` sets PROCTAP_EVENTS.
fn build(dir: &Path, shadow: &Path, events: Option<&Path>) -> std::process::Output {
    let mut cmd = cargo(dir, shadow);
    cmd.args(["build", "--release", "--offline"]);
    if let Some(events) = events {
        cmd.env("PROCTAP_EVENTS", events);
    }
    cmd.output().expect("running cargo")
}

/// cargo in the consumer's directory, with the BPF toolchain shadowed.
fn cargo(dir: &Path, shadow: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let path = format!("{}:{}", shadow.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        // Kept between runs: only the first builds the dependencies.
        .env("CARGO_TARGET_DIR", root().join("target/consumer-build"))
        .env("PATH", path)
        .env("CLANG", shadow.join("clang"))
        .env("BPFTOOL", shadow.join("bpftool"))
        .env("LLVM_STRIP", shadow.join("llvm-strip"))
        .env("LIBCLANG_PATH", shadow)
        .env_remove("PROCTAP_EVENTS")
        .env_remove("RUSTFLAGS");
    cmd
}

#[test]
fn a_dependent_crate_builds_without_the_bpf_toolchain_and_traces() {
    let dir = consumer_crate();
    let shadow = shadow_toolchain(&dir);
    let built = build(&dir, &shadow, None);
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "the consumer did not build:\n{stderr}");
    let ran = std::fs::read_to_string(dir.join("ran")).unwrap_or_default();
    assert!(ran.is_empty(), "the build ran BPF tools: {ran}");
    // libclang is loaded by bindgen, not run: neither bindgen nor clang-sys
    // may be part of the build at all.
    let builds = std::fs::read_dir(root().join("target/consumer-build/release/build")).unwrap();
    let names: Vec<String> = builds.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let libclang: Vec<&String> =
        names.iter().filter(|n| n.starts_with("bindgen-") || n.starts_with("clang-sys-")).collect();
    assert!(libclang.is_empty(), "the consumer's build compiled {libclang:?}");

    let exe = root().join("target/consumer-build/release/pt-consumer");
    // libbpf and zlib are linked in; libelf.so.1 is the one library beyond libc's.
    let dynamic = Command::new("readelf").args(["-d"]).arg(&exe).output().expect("running readelf");
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    let libc = ["libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"];
    let others: Vec<&&str> = needed.iter().filter(|l| !libc.contains(l)).collect();
    assert_eq!(others, [&"libelf.so.1"], "libraries the consumer loads: {needed:?}");

    // Without the bpf-rebuild feature, declared tracepoints are refused, saying what to do.
    let events = dir.join("events.json");
    std::fs::write(&events, r#"[{"tracepoint": "signal:signal_generate", "attributes": ["sig"]}]"#).unwrap();
    let refused = build(&dir, &shadow, Some(&events));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "PROCTAP_EVENTS built without bpf-rebuild");
    assert!(stderr.contains("bpf-rebuild") && stderr.contains("clang"), "{stderr}");

    // Documentation builds as docs.rs makes it (DOCS_RS): no C, no BPF toolchain.
    let docs =
        cargo(&dir, &shadow).args(["doc", "--offline", "--no-deps", "-p", "proctap"]).env("DOCS_RS", "1").output();
    let docs = docs.expect("running cargo doc");
    assert!(docs.status.success(), "cargo doc with DOCS_RS:\n{}", String::from_utf8_lossy(&docs.stderr));
    let page = root().join("target/consumer-build/doc/proctap/struct.Tracer.html");
    assert!(page.exists(), "{} was not written", page.display());

    let run = Command::new(&exe).output().expect("running the consumer");
    let stdout = String::from_utf8_lossy(&run.stdout);
    match run.status.code() {
        Some(0) => assert!(stdout.starts_with("exec pid="), "{stdout}"),
        Some(3) if !common::tools::ci() => {
            eprintln!(
                "SKIPPED: the consumer built, but could not load BPF here: {}",
                String::from_utf8_lossy(&run.stderr)
            )
        }
        _ => panic!("the consumer failed: {:?}\n{stdout}\n{}", run.status, String::from_utf8_lossy(&run.stderr)),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
