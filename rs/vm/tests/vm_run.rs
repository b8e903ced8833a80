//! The `vm_run` example as an outside test suite runs it: the binary, its
//! JSON line and its errors.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The example's binary, next to this test's (cargo test builds examples);
/// built with cargo when it is not there.
fn vm_run() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(find_or_build).clone()
}

fn find_or_build() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/PROFILE");
    let bin = dir.join("examples").join("vm_run");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // The example in the profile this test was built in (the
        // directory above deps/ is target/debug or target/release).
        let release = dir.file_name().is_some_and(|p| p == "release");
        let profile: &[&str] = if release { &["--release"] } else { &[] };
        let status = Command::new(cargo)
            .args(["build", "--example", "vm_run", "--manifest-path", env!("CARGO_MANIFEST_PATH")])
            .args(profile)
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build --example vm_run failed");
    }
    bin
}

fn run(args: &[&str]) -> Output {
    Command::new(vm_run()).args(args).output().expect("run vm_run")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "vm_run failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).expect("utf-8")
}

#[test]
fn globals_after_three_runs() {
    let Some(obj) = common::fixture("globals") else { return };
    // x = 1, pick = 3: total = 100 + 3 runs of (1 * 3 + table[3] = 7);
    // r0 = total + greeting[0] ('h').
    let out = stdout(&run(&[
        obj.to_str().unwrap(),
        "globals",
        "--ctx-hex",
        "01000000000000000300000000000000",
        "--runs",
        "3",
    ]));
    let expected = concat!(
        r#"{"r0": 234, "maps": {".rodata": [["00000000", "0300000000000000020000000300000005000000070000000b0000000d0000001100000013000000"]], "#,
        r#"".data": [["00000000", "8200000000000000"]], ".data.extra": [["00000000", "0700000000000000"]], "#,
        r#"".bss": [["00000000", "03000000000000000100000000000000"]], ".rodata.str1.1": [["00000000", "68656c6c6f2c20766d00"]]}}"#,
        "\n"
    );
    assert_eq!(out, expected);
}

#[test]
fn every_array_index_and_hash_entry_is_listed() {
    let Some(obj) = common::fixture("maps") else { return };
    // key 3, op 0 (insert into the hash), value 5.
    let out = stdout(&run(&[obj.to_str().unwrap(), "update_maps", "--ctx-hex", "03000000000000000500000000000000"]));
    assert!(out.starts_with(r#"{"r0": 0, "maps": {"arr": [["00000000", "0000000000000000"], "#), "{out}");
    assert!(out.contains(r#"["03000000", "0500000000000000"], ["04000000", "0000000000000000"]"#), "{out}");
    let arr = &out[out.find(r#""arr""#).unwrap()..];
    let arr = &arr[..arr.find("]]").unwrap()];
    assert_eq!(arr.matches(r#"[""#).count(), 8, "all 8 indexes: {arr}");
    assert!(out.contains(r#""hash": [["03000000", "0500000000000000"]]"#), "{out}");
    assert!(out.contains(r#""events": []"#), "a ringbuf has no keys: {out}");
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn errors_go_to_stderr_with_status_1() {
    let Some(obj) = common::fixture("calls") else { return };
    let o = run(&[obj.to_str().unwrap(), "no_such_program"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no program no_such_program") && err.contains("nested_calls"), "{err}");
    let o = run(&["/nonexistent.o", "x"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("usage"));
}

#[test]
#[cfg(target_arch = "x86_64")]
fn the_jit_prints_what_the_interpreter_prints() {
    let Some(obj) = common::fixture("calls") else { return };
    let obj = obj.to_str().unwrap();
    for prog in ["nested_calls", "bounded_loop", "with_bpf_loop"] {
        let ctx = "0102030405060708a1a2a3a4a5a6a7a82a000000ffffffff";
        let interp = stdout(&run(&[obj, prog, "--ctx-hex", ctx, "--runs", "5"]));
        let jit = stdout(&run(&[obj, prog, "--ctx-hex", ctx, "--runs", "5", "--jit"]));
        assert_eq!(jit, interp, "{prog}");
    }
}
