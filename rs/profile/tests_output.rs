//! Unit tests of the profile's outputs: folded stacks, the thread cap,
//! pprof (read back, and by `go tool pprof` when it is installed).

use prost::Message as _;
use std::io::Read;
use std::process::Command;

use super::tests::{fixture, function_file_offset, map_binary, sample, Fixture, BASE, KERNEL_A, KERNEL_B};
use super::*;
use crate::Errno;

/// Two user stacks, one with kernel frames on top, and three samples with
/// missing stacks.
fn fixture_profile(fx: &mut Fixture) -> (Profile, u64) {
    let (hot, _) = function_file_offset(&fx.binary, "proctap_hot_loop");
    let (main, _) = function_file_offset(&fx.binary, "main");
    map_binary(fx);
    let fo = |file_offset| BASE + file_offset;
    let mut profile = Profile::new(99);
    // Return address after a call into main: +9 lands inside main after the -1.
    let user = [fo(hot + 2), fo(main + 9)];
    for _ in 0..3 {
        profile.add(&sample("prog", &[], &user), &mut fx.symbolizer);
    }
    for _ in 0..2 {
        let mut other_thread = sample("prog", &[KERNEL_B + 0x10, KERNEL_A + 0x21], &user);
        other_thread.tid = 4243;
        profile.add(&other_thread, &mut fx.symbolizer);
    }
    let mut lost = sample("prog", &[], &[]);
    lost.data_lost = true;
    profile.add(&lost, &mut fx.symbolizer);
    let mut fault = sample("prog", &[KERNEL_B + 4], &[]);
    fault.user_stack_error = Some(Errno { errno: 14 });
    profile.add(&fault, &mut fx.symbolizer);
    let mut kfault = sample("prog", &[], &[fo(hot + 2)]);
    kfault.kernel_stack_error = Some(Errno { errno: 22 });
    kfault.ts_ns = 1_000 + 500_000_000;
    let errors = profile.add(&kfault, &mut fx.symbolizer);
    assert_eq!(errors.iter().collect::<Vec<_>>(), [StackError::KernelStack(Errno { errno: 22 })]);
    (profile, hot)
}

#[test]
fn folded_output_and_queries() {
    let mut fx = fixture("folded");
    let (profile, _) = fixture_profile(&mut fx);
    let mut out = Vec::new();
    profile.write_folded(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let expected = "\
prog;[stack data lost] 1
prog;[user stack unavailable: EFAULT];fake_kernel_work_[k] 1
prog;main;proctap_hot_loop 3
prog;main;proctap_hot_loop;fake_kernel_entry_[k];fake_kernel_work_[k] 2
prog;proctap_hot_loop;[kernel stack unavailable: EINVAL]_[k] 1
";
    assert_eq!(text, expected);
    assert_eq!(profile.total_samples(), 8);
    let errors = [
        (StackError::KernelStack(Errno { errno: 22 }), 1),
        (StackError::UserStack(Errno { errno: 14 }), 1),
        (StackError::DataLost, 1),
    ];
    assert_eq!(profile.stack_errors(), errors);
    let names: Vec<String> = errors.iter().map(|(e, _)| e.to_string()).collect();
    assert_eq!(names, ["kernel_stack:EINVAL", "user_stack:EFAULT", "data_lost"]);
    let by_self = profile.functions_by_self_samples();
    assert_eq!(by_self[..2], [("fake_kernel_work".to_string(), 3), ("proctap_hot_loop".to_string(), 3)]);
    assert_eq!(profile.inclusive_samples("proctap_hot_loop"), 6);
    assert_eq!(profile.inclusive_samples("main"), 5);
    assert_eq!(profile.inclusive_samples("prog"), 8);

    let mut svg = Vec::new();
    profile.write_flamegraph(&mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("proctap_hot_loop") && svg.contains("</svg>"));

    let per_pid = {
        let mut p = Profile::new(99).pid_in_root(true);
        assert!(p.add(&sample("prog", &[], &[]), &mut fx.symbolizer).is_empty());
        let mut out = Vec::new();
        p.write_folded(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(per_pid, "prog-4242 1\n");
    let _ = std::fs::remove_dir_all(&fx.dir);
}

/// Past max_threads, samples of new threads still count, without pid and tid.
#[test]
fn threads_past_the_cap_count_without_their_pid_and_tid() {
    let mut symbolizer = Symbolizer::new().debuginfod(None);
    let mut profile = Profile::new(99).max_threads(2);
    for tid in [1, 2, 3, 3, 1] {
        let mut s = sample("prog", &[], &[]);
        s.tid = tid;
        profile.add(&s, &mut symbolizer);
    }
    let mut gz = Vec::new();
    profile.write_pprof(&mut gz).unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut raw).unwrap();
    let msg = super::proto::Profile::decode(raw.as_slice()).unwrap();
    let s = |i: i64| msg.string_table[i as usize].as_str();
    let mut by_tid: Vec<(Option<i64>, i64)> =
        msg.sample.iter().map(|x| (x.label.iter().find(|l| s(l.key) == "tid").map(|l| l.num), x.value[0])).collect();
    by_tid.sort();
    assert_eq!(by_tid, [(None, 2), (Some(1), 2), (Some(2), 1)]);
    assert_eq!(profile.total_samples(), 5);
}

/// Past max_stacks, samples whose stack is new still count, under their
/// command name and a marker frame, and nothing of their stacks is kept;
/// stacks already held keep counting in full.
#[test]
fn stacks_past_the_cap_count_under_a_marker() {
    let mut fx = fixture("stack-cap");
    let mut profile = Profile::new(99).max_stacks(2).pid_in_root(true).max_threads(1);
    let (entry, work) = (KERNEL_A + 1, KERNEL_B + 1);
    let stacks: [&[u64]; 4] = [&[entry], &[work], &[work, entry], &[entry, work]];
    for (pid, stack) in [(4242, 0), (4242, 1), (4242, 2), (4242, 0), (7, 3), (7, 2)] {
        let mut s = sample("prog", stacks[stack], &[]);
        (s.pid, s.tid) = (pid, pid);
        profile.add(&s, &mut fx.symbolizer);
    }
    assert_eq!(profile.total_samples(), 6);
    assert_eq!(profile.stacks_not_kept(), 3);
    assert_eq!(profile.distinct_stacks(), 3, "two kept, and one marker stack per command name");
    // The stacks not kept left no locations behind: the two roots, the two
    // kernel functions, the marker.
    assert_eq!(profile.size().1, 5);
    let mut out = Vec::new();
    profile.write_folded(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let counts: u64 = text.lines().map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap()).sum();
    assert_eq!(counts, 6, "{text}");
    let marker = "[stack not kept: the profile holds max_stacks stacks]";
    assert!(text.contains(&format!("prog;{marker} 3\n")), "{text}");
    assert!(text.contains("prog-4242;fake_kernel_entry_[k] 2\n"), "{text}");
    assert!(text.contains("prog-4242;fake_kernel_work_[k] 1\n"), "{text}");
    assert_eq!(profile.inclusive_samples(marker), 3);
    assert_eq!(profile.inclusive_samples("fake_kernel_entry"), 2);
    let _ = std::fs::remove_dir_all(&fx.dir);
}

#[test]
fn pprof_output_is_consistent_and_opens_in_go_pprof() {
    let mut fx = fixture("pprof");
    let (profile, hot) = fixture_profile(&mut fx);
    let mut gz = Vec::new();
    profile.write_pprof(&mut gz).unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut raw).unwrap();
    let msg = super::proto::Profile::decode(raw.as_slice()).expect("a perftools.profiles.Profile");

    let strings = &msg.string_table;
    assert_eq!(strings[0], "");
    let s = |i: i64| strings[i as usize].as_str();
    let value_types: Vec<(&str, &str)> = msg.sample_type.iter().map(|t| (s(t.r#type), s(t.unit))).collect();
    assert_eq!(value_types, [("samples", "count"), ("cpu", "nanoseconds")]);
    let period_type = msg.period_type.as_ref().unwrap();
    assert_eq!((s(period_type.r#type), s(period_type.unit)), ("cpu", "nanoseconds"));
    assert_eq!(s(msg.default_sample_type), "cpu");
    let period = msg.period;
    assert_eq!(period, 1_000_000_000 / 99);
    assert_eq!(msg.time_nanos, 1_700_000_000_000_000_000);
    assert_eq!(msg.duration_nanos, 500_000_000);

    let functions: std::collections::HashMap<u64, &str> = msg.function.iter().map(|f| (f.id, s(f.name))).collect();
    let mappings: std::collections::HashMap<u64, (&str, &str)> =
        msg.mapping.iter().map(|m| (m.id, (s(m.filename), s(m.build_id)))).collect();
    assert!(mappings.values().any(|&(file, id)| file == fx.binary.to_str().unwrap() && id == fx.build_id.to_string()));
    assert!(mappings.values().any(|&(file, _)| file == "[kernel.kallsyms]"));
    let mut locations = std::collections::HashMap::new();
    for location in &msg.location {
        let mapping = location.mapping_id;
        assert!(mapping == 0 || mappings.contains_key(&mapping), "location maps to unknown mapping {mapping}");
        let names: Vec<&str> = location.line.iter().map(|l| functions[&l.function_id]).collect();
        assert!(!names.is_empty());
        locations.insert(location.id, (location.address, names));
    }
    let (hot_address, _) = locations.values().find(|(_, names)| *names.last().unwrap() == "proctap_hot_loop").unwrap();
    assert_eq!(*hot_address, hot + 2);

    let mut total = 0;
    let mut hot_leaf = 0;
    let mut tids = std::collections::HashSet::new();
    for sample in &msg.sample {
        let ids = &sample.location_id;
        assert_eq!(sample.value.len(), 2);
        assert_eq!(sample.value[1], sample.value[0] * period);
        total += sample.value[0];
        let leaf = &locations[&ids[0]].1;
        if leaf[0] == "proctap_hot_loop" {
            hot_leaf += sample.value[0];
        }
        assert_eq!(locations[ids.last().unwrap()].1, ["prog"], "root is the comm");
        let labels: Vec<(&str, &str, i64)> = sample.label.iter().map(|l| (s(l.key), s(l.str), l.num)).collect();
        let tid = if locations[&ids[0]].1 == ["fake_kernel_work"] && ids.len() == 5 { 4243 } else { 4242 };
        assert_eq!(labels, [("comm", "prog", 0), ("pid", "", 4242), ("tid", "", tid)], "{:?}", locations[&ids[0]]);
        tids.insert(tid);
    }
    assert_eq!(tids.len(), 2, "samples of two threads");
    assert_eq!(total, 8);
    assert_eq!(hot_leaf, 3);

    go_pprof_reads(&fx.dir, &gz);
    let _ = std::fs::remove_dir_all(&fx.dir);
}

/// `go tool pprof` itself reads the profile: its samples, functions, and
/// the hot function's count.
fn go_pprof_reads(dir: &std::path::Path, gz: &[u8]) {
    let file = dir.join("profile.pb.gz");
    std::fs::write(&file, gz).unwrap();
    let Ok(go) = Command::new("go")
        .args(["tool", "pprof", "-raw", file.to_str().unwrap()])
        .env("HOME", dir)
        .env("PPROF_TMPDIR", dir)
        .output()
    else {
        // ./dev.sh test installs golang-go, so CI always checks with pprof itself.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: go (golang-go) must be installed to check the profile with `go tool pprof`"
        );
        println!("SKIPPED: go is not installed: no `go tool pprof -raw` check (./dev.sh test installs it)");
        return;
    };
    let stdout = String::from_utf8_lossy(&go.stdout);
    assert!(go.status.success(), "go tool pprof failed: {}{stdout}", String::from_utf8_lossy(&go.stderr));
    for expected in ["PeriodType: cpu nanoseconds", "proctap_hot_loop", "fake_kernel_work", "[stack data lost]"] {
        assert!(stdout.contains(expected), "go tool pprof -raw lacks {expected:?}:\n{stdout}");
    }
    let top = Command::new("go")
        .args(["tool", "pprof", "-top", "-sample_index=samples", file.to_str().unwrap()])
        .env("HOME", dir)
        .env("PPROF_TMPDIR", dir)
        .output()
        .unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(top.lines().any(|l| l.contains("proctap_hot_loop") && l.trim_start().starts_with('3')), "{top}");
}
