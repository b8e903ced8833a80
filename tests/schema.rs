//! The JSON reference (prebuilt/proctap.schema.json, generated from the
//! registry) against what is really printed: random events of every kind
//! as the Rust serializer and the C printer write them, and the output of
//! both dumpers on a live system, with every option that adds fields.
//! Checked by Python's jsonschema, another implementation than ours.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use common::tools::{ci, dump_while, dumpers, Dump};
use proctap::testing::{format_json, RecordWriter};

#[path = "json/strategies.rs"]
mod strategies;

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prebuilt/proctap.schema.json")
}

/// Validates every line against the schema (or its `$defs/DEF`); false when
/// the validator is not installed outside CI.
fn validate(name: &str, lines: &[String], def: Option<&str>) -> bool {
    let file = std::env::temp_dir().join(format!("proctap-schema-{name}-{}.jsonl", std::process::id()));
    let mut f = std::fs::File::create(&file).unwrap();
    for line in lines {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema_check.py");
    let out = Command::new("python3").arg(script).arg(schema()).arg(&file).args(def).output();
    let _ = std::fs::remove_file(&file);
    let out = out.expect("python3 (./dev.sh test installs it and jsonschema)");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if stderr.contains("No module named 'jsonschema'") {
        assert!(!ci(), "CI=true: python3's jsonschema is missing (./dev.sh test installs it)");
        eprintln!("SKIPPED: python3 has no jsonschema: pip install jsonschema");
        return false;
    }
    assert!(out.status.success(), "{name}: lines that do not match the schema:\n{stdout}{stderr}");
    assert_eq!(stdout.trim(), format!("ok {}", lines.len()), "{name}");
    true
}

/// 3000 random events of every kind, each as the Rust serializer and as the
/// C library's printer writes it.
#[test]
fn random_events_of_every_kind_match_the_schema() {
    let mut runner = TestRunner::deterministic();
    let strategy = strategies::event();
    let mut lines = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..3000 {
        let event = strategy.new_tree(&mut runner).unwrap().current();
        kinds.insert(event.kind().name());
        lines.push(serde_json::to_string(&event).unwrap());
        let mut writer = RecordWriter::new();
        writer.push(&event);
        lines.push(format_json(writer.bytes(), 0).expect("the C printer knows every kind"));
    }
    assert!(kinds.len() >= 15, "every kind generated: {kinds:?}");
    validate("random", &lines, None);
}

/// Both dumpers, with every option that adds fields, while processes exec,
/// fail to exec, open files and talk HTTP over loopback: every stdout line
/// and the final stats line match.
#[test]
fn both_dumpers_output_matches_the_schema() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l7http.py");
    for dumper in dumpers() {
        let rust = dumper.ends_with("dump");
        let args: &[&'static str] = if rust {
            &["--fork", "--failed-execs", "--files", "--net", "--net-raw", "--exec-ids", "--ancestors", "--containers"]
        } else {
            &["--fork", "--failed-execs", "--files", "--net-raw"]
        };
        let Dump { out, stats, .. } = dump_while(&dumper, args, || {
            Command::new("/bin/sh").args(["-c", "cat /etc/hostname; ls / >/dev/null; exit 3"]).status().unwrap();
            let _ = Command::new("/nonexistent/pt-schema").status();
            let status = Command::new("python3").arg(&script).stdout(std::process::Stdio::null()).status().unwrap();
            assert!(status.success());
        });
        let lines: Vec<String> = out.lines().map(str::to_string).collect();
        let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
        for needle in ["\"type\":\"exec\"", "\"type\":\"exit\"", "\"type\":\"open\"", "\"type\":\"exec_failed\""] {
            assert!(has(needle), "{}: no {needle} line", dumper.display());
        }
        if rust {
            for needle in ["\"type\":\"l7\"", "\"exec_id\":", "\"ancestors\":", "\"container_id\":"] {
                assert!(has(needle), "{}: no {needle}", dumper.display());
            }
        }
        if !validate("dumper", &lines, None) {
            return;
        }
        validate("stats", &[stats.to_string()], Some("stats"));
    }
}
