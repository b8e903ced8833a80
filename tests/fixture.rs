//! The hot test program the profiler's tests use: it builds, its stripped
//! copy keeps its debug information only under the build-id path, and it runs
//! for as long as it is told. No BPF, no root needed.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::fixture::{self, HOT_LEAF_A, HOT_LEAF_B, HOT_OUTER};

fn symbols(elf: &std::path::Path) -> String {
    let out = std::process::Command::new("readelf").args(["-sW"]).arg(elf).output().expect("readelf");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hot_fixture_builds_with_split_debug_info() {
    let hot = fixture::build_hot("fixture");
    for path in [&hot.plain, &hot.stripped, &hot.named, &hot.debug_file] {
        assert!(path.is_file(), "{} missing", path.display());
    }
    assert_eq!(hot.build_id.len(), 40, "sha1 build id expected, got {}", hot.build_id);
    assert_eq!(
        hot.debug_file,
        hot.debug_dir.join(".build-id").join(&hot.build_id[..2]).join(format!("{}.debug", &hot.build_id[2..]))
    );
    // Same build id everywhere.
    assert_eq!(fixture::read_build_id(&hot.stripped), hot.build_id);
    assert_eq!(fixture::read_build_id(&hot.debug_file), hot.build_id);

    let plain = fixture::section_names(&hot.plain);
    let stripped = fixture::section_names(&hot.stripped);
    let debug = fixture::section_names(&hot.debug_file);
    for s in [".symtab", ".debug_info", ".debug_line"] {
        assert!(plain.iter().any(|n| n == s), "plain binary lacks {s}: {plain:?}");
        assert!(!stripped.iter().any(|n| n == s), "stripped binary still has {s}: {stripped:?}");
        assert!(debug.iter().any(|n| n == s), "debug file lacks {s}: {debug:?}");
    }
    // The hot functions are named in the plain binary and the debug file, and nowhere in the stripped one.
    for f in [HOT_OUTER, HOT_LEAF_A, HOT_LEAF_B] {
        assert!(symbols(&hot.plain).contains(f), "{f} not in the plain binary's symbols");
        assert!(symbols(&hot.debug_file).contains(f), "{f} not in the debug file's symbols");
        assert!(!symbols(&hot.stripped).contains(f), "{f} still in the stripped binary's symbols");
    }
    assert_eq!(hot.comm, "ptzfixture");
    assert_eq!(hot.named.file_name().unwrap(), "ptzfixture");
    assert_eq!(fixture::comm_for("a_very_long_test_name"), "ptza_very_long_");

    let dir = hot.dir.clone();
    drop(hot);
    if std::env::var_os("PROCTAP_KEEP_FIXTURES").is_none() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn hot_fixture_runs_for_the_time_asked() {
    let hot = fixture::build_hot("fixture_runs");
    for binary in [&hot.plain, &hot.stripped] {
        let start = Instant::now();
        let mut child = fixture::spawn_ready(binary, &["300"]);
        let status = child.wait().unwrap();
        let took = start.elapsed();
        assert!(status.success(), "{}: {status}", binary.display());
        assert!(took >= Duration::from_millis(300), "exited after {took:?}, asked for 300 ms");
        assert!(took < Duration::from_secs(10), "still running after {took:?}, asked for 300 ms");
    }

    // --work: a fixed amount of work, reported as one JSON line.
    let mut child = fixture::spawn(&hot.named, &["--work", "20"]);
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out:?}: {e}"));
    assert_eq!(report["units"], 20);
    assert!(report["ns"].as_u64().unwrap() > 0 && report["cpu_ns"].as_u64().unwrap() > 0, "{report}");

    // Without a time it runs until killed.
    let mut child = fixture::spawn_ready(&hot.named, &[]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "exited without being told to");
    // Its comm is the copy's file name.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap();
    assert_eq!(comm.trim_end(), hot.comm);
    fixture::kill(&mut child);
}
