//! The profiler's stacks against the real kernel: symbolized to the
//! fixtures' known functions, through a debug file found by build id when
//! the binary is stripped; whole chains from copied stacks without frame
//! pointers, through libc callbacks and shared libraries, PIE or not; and
//! for processes that exited before their samples were read (the mapping
//! records). Tests take turns (common::profiling::turn).

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::fixture::{self, HotBinaries};
use common::profiling::{collect_for, profile, samples, stop_and_collect, turn, Reaper};
use proctap::profile::{Profile, StackError, Symbolizer, UnwindStop};
use proctap::{Event, MappingChange, Profiler, Unwind};

fn hot(name: &str) -> HotBinaries {
    fixture::build_hot(name)
}

/// Profiles `binary` (a hot fixture) at 199 Hz until `want` samples, learns
/// its files while it runs, then kills it: symbolization happens after the
/// process is gone. Returns its samples and mapping records.
fn profile_then_kill(binary: &std::path::Path, symbolizer: &mut Symbolizer, want: usize, unwind: Unwind) -> Vec<Event> {
    let kids = Reaper(vec![fixture::spawn(binary, &[])]);
    let pid = kids.0[0].id();
    let Some(tracer) = common::start(&profile(Profiler::new().hz(199).pid(pid).unwind(unwind))) else {
        return Vec::new();
    };
    let events = events_until_samples(&tracer, pid, want);
    symbolizer.learn_process(pid).unwrap();
    drop(kids);
    tracer.stop().unwrap();
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_err(), "the process is gone before symbolizing");
    events
}

/// The events of `pid` until `want` samples came (15 s at most).
fn events_until_samples(tracer: &proctap::Tracer, pid: u32, want: usize) -> Vec<Event> {
    common::collect_until(tracer, Duration::from_secs(15), |e| e.pid() == pid, |got| samples(got).count() >= want)
}

/// The samples aggregated at the 199 Hz profile_then_kill samples at, the
/// mapping records learned in stream order.
fn profile_of(events: &[Event], symbolizer: &mut Symbolizer) -> Profile {
    let mut profile = Profile::new(199);
    for event in events {
        match event {
            Event::Mapping(m) => symbolizer.learn_mapping(m),
            Event::Sample(s) => {
                profile.add(s, symbolizer);
            }
            _ => {}
        }
    }
    profile
}

/// The innermost frame of a user-mode sample names hot.c and a line.
fn assert_leaf_has_file_and_line(events: &[Event], symbolizer: &mut Symbolizer) {
    let sample = samples(events).find(|s| s.kernel_stack.is_empty()).expect("a sample taken in user mode");
    let leaf = symbolizer.symbolize_sample(sample).into_iter().next().unwrap();
    let frame = leaf.frames.last().unwrap();
    assert!(frame.file.as_deref().is_some_and(|f| f.ends_with("hot.c")) && frame.line.is_some(), "{leaf:?}");
}

fn assert_hot_profile(profile: &Profile) {
    let top = profile.functions_by_self_samples();
    let names: Vec<&str> = top.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(&names[..2], &[fixture::HOT_LEAF_A, fixture::HOT_LEAF_B], "hottest functions: {top:?}");
    let total = profile.total_samples();
    let (a, b) = (top[0].1, top[1].1);
    // About 3:1 by construction; runs on this VM spread from 58:42 to 77:24
    // at 100 samples (the timer and the loop drift in and out of phase).
    assert!(a > b && a + b >= total * 9 / 10, "leaf_a {a}, leaf_b {b} of {total}");
    assert!(profile.inclusive_samples(fixture::HOT_OUTER) >= total * 9 / 10, "pt_hot_outer is on the stacks");
    assert!(profile.inclusive_samples("main") >= total * 9 / 10, "main is on the stacks");
}

#[test]
fn hottest_frames_symbolize_to_the_fixtures_hot_functions() {
    let _turn = turn();
    let bins = hot("symbols");
    let mut symbolizer = Symbolizer::new();
    // The default, stack copies: unwound after the process exited, from
    // what learn_process read while it ran.
    let got = profile_then_kill(&bins.plain, &mut symbolizer, 200, Unwind::StackCopy);
    if got.is_empty() {
        return;
    }
    let profile = profile_of(&got, &mut symbolizer);
    assert_hot_profile(&profile);
    // File and line come from the binary's DWARF.
    assert_leaf_has_file_and_line(&got, &mut symbolizer);
    // Every output is written and non-empty.
    let (mut folded, mut svg, mut pprof) = (Vec::new(), Vec::new(), Vec::new());
    profile.write_folded(&mut folded).unwrap();
    profile.write_flamegraph(&mut svg).unwrap();
    profile.write_pprof(&mut pprof).unwrap();
    let folded = String::from_utf8(folded).unwrap();
    assert!(folded.lines().any(|l| l.contains("main;pt_hot_outer;pt_hot_leaf_a ")), "{folded}");
    assert!(String::from_utf8_lossy(&svg).contains("pt_hot_leaf_a"));
    assert_eq!(&pprof[..2], &[0x1f, 0x8b], "gzip");
}

#[test]
fn a_stripped_binary_symbolizes_through_its_debug_file_found_by_build_id() {
    let _turn = turn();
    let bins = hot("stripped");
    // Without the debug directory the stripped binary's frames have no names.
    let mut bare = Symbolizer::new().debug_dirs(Vec::new());
    // Frame pointers: raw addresses, which a symbolizer that never saw the
    // process places with the stream's mapping records (made from /proc at
    // the tracer's start for a process already running).
    let got = profile_then_kill(&bins.stripped, &mut bare, 200, Unwind::FramePointers);
    if got.is_empty() {
        return;
    }
    let profile = profile_of(&got, &mut bare);
    assert_eq!(profile.inclusive_samples(fixture::HOT_LEAF_A), 0, "no names without the debug file");

    let name = bins.stripped.file_name().unwrap().as_encoded_bytes();
    let mapped =
        got.iter().any(|e| matches!(e, Event::Mapping(m) if m.change == MappingChange::Mmap && m.path.ends_with(name)));
    assert!(mapped, "a mapping record of the running binary, made at the start");
    let mut symbolizer = Symbolizer::new().debug_dirs(vec![bins.debug_dir.clone()]);
    assert_hot_profile(&profile_of(&got, &mut symbolizer));
    assert_leaf_has_file_and_line(&got, &mut symbolizer);
}

/// The hot program built -O2 -fomit-frame-pointer: the frame-pointer walk
/// loses the leaves' callers there; the stack copy, unwound from .eh_frame,
/// gives main;pt_hot_outer;leaf on nearly every sample. Symbolized while the
/// process runs (the unwinder reads its mappings).
#[test]
fn stack_copy_unwinding_gives_whole_chains_without_frame_pointers() {
    let _turn = turn();
    let dir = std::env::temp_dir().join(format!("proctap-unwind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("hot-nofp");
    let built = std::process::Command::new("cc")
        .args(["-O2", "-g", "-fomit-frame-pointer", "-o"])
        .arg(&binary)
        .arg(fixture::hot_source())
        .status()
        .expect("cc");
    assert!(built.success());
    let mut chains = HashMap::new();
    for unwind in [Unwind::StackCopy, Unwind::FramePointers] {
        let kids = Reaper(vec![fixture::spawn(&binary, &[])]);
        let pid = kids.0[0].id();
        let Some(tracer) = common::start(&profile(Profiler::new().hz(199).pid(pid).unwind(unwind))) else { return };
        let events = events_until_samples(&tracer, pid, 200);
        let mut symbolizer = Symbolizer::new();
        let profile = profile_of(&events, &mut symbolizer);
        drop(kids);
        let total = profile.total_samples();
        assert!(total >= 200, "{unwind:?}: {total} samples");
        let whole = profile.inclusive_samples(fixture::HOT_OUTER).min(profile.inclusive_samples("main"));
        chains.insert(format!("{unwind:?}"), (whole, total));
        if unwind == Unwind::StackCopy {
            assert_hot_profile(&profile);
            let mut folded = Vec::new();
            profile.write_folded(&mut folded).unwrap();
            let folded = String::from_utf8(folded).unwrap();
            assert!(folded.lines().any(|l| l.contains("main;pt_hot_outer;pt_hot_leaf_a ")), "{folded}");
        }
    }
    // What the frame-pointer walk misses here (for the record; gcc at -O2
    // without frame pointers leaves it nothing to walk).
    eprintln!("whole chains (main and pt_hot_outer on the stack), of samples: {chains:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Builds tests/fixtures/unwind.c (PIE or not) and its library, -O2
/// -fomit-frame-pointer, into `dir`.
fn build_unwind_fixture(dir: &std::path::Path, pie: bool) -> std::path::PathBuf {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cc = |args: &[&std::ffi::OsStr]| {
        let status = std::process::Command::new("cc").args(args).status().expect("cc");
        assert!(status.success(), "cc {args:?}");
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let lib = dir.join("libptunwind.so");
    let flags = ["-O2", "-g", "-fomit-frame-pointer"].map(os);
    cc(&[&flags[..], &[os("-fPIC"), os("-shared"), os("-o"), lib.into(), fixtures.join("unwind_lib.c").into()]]
        .concat()
        .iter()
        .map(|s| s.as_os_str())
        .collect::<Vec<_>>());
    let exe = dir.join(if pie { "unwind-pie" } else { "unwind-nopie" });
    let mut args = flags.to_vec();
    args.push(os(if pie { "-pie" } else { "-no-pie" }));
    args.extend([os("-o"), exe.clone().into(), fixtures.join("unwind.c").into(), os("-L"), dir.into()]);
    args.extend([os("-lptunwind"), os(&format!("-Wl,-rpath,{}", dir.display()))]);
    cc(&args.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    exe
}

/// Whole chains without frame pointers through a libc callback (qsort
/// calling the program's comparator) and into a shared library's static
/// function, for a PIE and a non-PIE program, with a process that exited
/// before its samples were symbolized.
#[test]
fn stack_copies_unwind_through_libc_callbacks_and_shared_libraries() {
    let _turn = turn();
    let dir = std::env::temp_dir().join(format!("proctap-unwind-chains-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for pie in [true, false] {
        let exe = build_unwind_fixture(&dir, pie);
        let mut symbolizer = Symbolizer::new();
        let got = profile_then_kill(&exe, &mut symbolizer, 300, Unwind::StackCopy);
        if got.is_empty() {
            return;
        }
        assert_whole_chains(&format!("pie={pie}"), &profile_of(&got, &mut symbolizer));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Of the samples whose innermost frame is the qsort callback or the
/// library's inner function, at least 90% carry the whole chain to main.
fn assert_whole_chains(what: &str, profile: &Profile) {
    let mut folded = Vec::new();
    profile.write_folded(&mut folded).unwrap();
    let folded = String::from_utf8(folded).unwrap();
    // (samples whose innermost frame is `leaf`, those with the chain)
    let share = |leaf: &str, chain: &dyn Fn(&str) -> bool| {
        let mut of = (0u64, 0u64);
        for line in folded.lines() {
            let (stack, count) = line.rsplit_once(' ').unwrap();
            if stack.ends_with(&format!(";{leaf}")) {
                of.0 += count.parse::<u64>().unwrap();
                if chain(stack) {
                    of.1 += count.parse::<u64>().unwrap();
                }
            }
        }
        of
    };
    let through_qsort = share("pt_cmp", &|s| {
        // libc's sort frames between the program's caller and its callback.
        s.split_once(";main;pt_sort_phase;").is_some_and(|(_, rest)| rest.matches(';').count() >= 1)
    });
    let into_library = share("pt_lib_inner", &|s| s.contains(";main;pt_lib_phase;pt_lib_spin;pt_lib_inner"));
    for (chain, (all, whole)) in [("qsort callback", through_qsort), ("library", into_library)] {
        assert!(all >= 20 && whole * 10 >= all * 9, "{what} {chain}: {whole} of {all} whole\n{folded}");
    }
}

/// Processes that live 30 ms, caught at exec by their command name and
/// symbolized only after every one has exited, with nothing read from
/// /proc while they ran: the stream's mapping records (fork, exec, each
/// executable mmap) are what the unwinder resolves them with, and each
/// one's exit record follows its mappings.
#[test]
fn processes_that_exit_right_after_their_samples_still_resolve() {
    let _turn = turn();
    let dir = std::env::temp_dir().join(format!("proctap-unwind-short-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = build_unwind_fixture(&dir, true);
    let config = profile(Profiler::new().hz(499).comm_prefix("unwind-pie").unwind(Unwind::StackCopy));
    let Some(tracer) = common::start(&config) else { return };
    let runs = std::thread::spawn(move || {
        (0..40).all(|_| std::process::Command::new(&exe).arg("30").status().is_ok_and(|s| s.success()))
    });
    let mut events = common::collect_until(&tracer, Duration::from_secs(60), |_| true, |_| runs.is_finished());
    assert!(runs.join().unwrap(), "the fixture runs");
    events.extend(collect_for(&tracer, Duration::from_millis(300)));
    events.extend(stop_and_collect(tracer).1);
    let mut pids = HashSet::new();
    let mut symbolizer = Symbolizer::new();
    let mut profile = Profile::new(499);
    let mut changes = HashMap::<_, usize>::new();
    let mut exited = HashSet::new();
    for event in &events {
        match event {
            Event::Mapping(m) => {
                if m.change == MappingChange::Mmap && m.path.ends_with(b"/unwind-pie") {
                    assert!(!exited.contains(&m.pid), "pid {} maps after its exit record", m.pid);
                    pids.insert(m.pid);
                }
                if m.change == MappingChange::Exit {
                    exited.insert(m.pid);
                }
                *changes.entry(format!("{:?}", m.change)).or_default() += 1;
                symbolizer.learn_mapping(m)
            }
            Event::Sample(s) => {
                profile.add(s, &mut symbolizer);
            }
            _ => {}
        }
    }
    assert!(pids.len() >= 40, "mmap records of the fixture for {} processes ({changes:?})", pids.len());
    assert!(pids.iter().all(|pid| std::fs::metadata(format!("/proc/{pid}")).is_err()));
    // Each one's exit is in the stream too: what lets a consumer drop it.
    assert!(
        pids.is_subset(&exited),
        "exit records for {} of {} processes",
        pids.intersection(&exited).count(),
        pids.len()
    );
    assert_whole_chains("short-lived", &profile);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stream is in time order across the side band and the ring: a sample
/// a process took just before it exec'd comes before the exec's mapping
/// record, even within one poll round, so it is unwound with the mappings
/// it ran with. Each `sh` below spins a few milliseconds (sampled at 999 Hz)
/// and then execs.
#[test]
fn samples_taken_before_an_exec_come_before_its_record() {
    let _turn = turn();
    let Some(tracer) = common::start(&profile(Profiler::new().hz(999).all(true))) else { return };
    let script = "for n in $(seq 40); do sh -c 'i=0; while [ $i -lt 4000 ]; do i=$((i+1)); done; exec true'; done";
    let runs = std::thread::spawn(move || std::process::Command::new("sh").args(["-c", script]).status());
    let mut events = common::collect_until(&tracer, Duration::from_secs(60), |_| true, |_| runs.is_finished());
    assert!(runs.join().unwrap().is_ok_and(|s| s.success()), "the workload runs");
    events.extend(stop_and_collect(tracer).1);

    let mut execs = HashMap::<u32, Vec<u64>>::new();
    for event in &events {
        if let Event::Mapping(m) = event {
            if m.change == MappingChange::Exec {
                execs.entry(m.pid).or_default().push(m.ts_ns);
            }
        }
    }
    // Per pid, the newest exec or mmap record delivered so far.
    let mut newest = HashMap::<u32, u64>::new();
    let (mut before_an_exec, mut late) = (0, Vec::new());
    for event in &events {
        match event {
            Event::Mapping(m) if matches!(m.change, MappingChange::Exec | MappingChange::Mmap) => {
                let at = newest.entry(m.pid).or_default();
                *at = (*at).max(m.ts_ns);
            }
            Event::Sample(s) => {
                if execs.get(&s.pid).is_some_and(|at| at.iter().any(|&t| t > s.ts_ns)) {
                    before_an_exec += 1;
                }
                if newest.get(&s.pid).is_some_and(|&t| t > s.ts_ns) {
                    late.push((s.pid, s.ts_ns, newest[&s.pid]));
                }
            }
            _ => {}
        }
    }
    assert!(before_an_exec >= 20, "only {before_an_exec} samples were taken before their process exec'd");
    assert!(late.is_empty(), "{} samples came after a later mapping record of their process: {late:?}", late.len());
}

/// A copied stack too short for its chain says so: with a 512-byte cap the
/// unwinding of the unwind fixture's deeper stacks (qsort's merge sort,
/// libc's start-up frames) runs out of copied bytes before `_start`, and
/// the profile ends those chains with a placeholder instead of passing
/// them off as whole: every chain is whole or marked. With the default
/// cap, none is cut.
#[test]
fn a_chain_cut_by_the_stack_copy_cap_says_so() {
    let _turn = turn();
    let dir = std::env::temp_dir().join(format!("proctap-unwind-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = build_unwind_fixture(&dir, true);
    let mut counts = Vec::new();
    for cap in [512, 16384] {
        let kids = Reaper(vec![fixture::spawn(&exe, &[])]);
        let pid = kids.0[0].id();
        let config = profile(Profiler::new().hz(199).pid(pid)).data_cap("stack_copy_max", cap);
        let Some(tracer) = common::start(&config) else { return };
        let events = events_until_samples(&tracer, pid, 200);
        let mut symbolizer = Symbolizer::new();
        let profile = profile_of(&events, &mut symbolizer);
        drop(kids);
        tracer.stop().unwrap();
        let mut folded = Vec::new();
        profile.write_folded(&mut folded).unwrap();
        let (mut whole, mut cut, mut neither) = (0u64, 0u64, Vec::new());
        for line in String::from_utf8(folded).unwrap().lines() {
            let (stack, count) = line.rsplit_once(' ').unwrap();
            let count: u64 = count.parse().unwrap();
            if stack.contains(";_start;") {
                whole += count;
            } else if stack.contains(";[unwind stopped: end of the stack copy];") {
                cut += count;
            } else {
                neither.push(line.to_string());
            }
        }
        counts.push((cap, whole, cut));
        // The same samples, counted typed.
        let typed = profile.stack_errors().into_iter().find(|(e, _)| *e == StackError::Unwind(UnwindStop::CopyEnds));
        assert_eq!(typed.map_or(0, |(_, n)| n), cut, "{cap} B: {:?}", profile.stack_errors());
        // A sample taken in the kernel with no user frames is the only other form.
        assert!(neither.iter().all(|l| !l.contains(";pt_")), "{cap} B: chains neither whole nor marked: {neither:?}");
    }
    let [(_, _, cut_small), (_, whole, cut_default)] = counts[..] else { unreachable!() };
    assert!(cut_small >= 20, "512 B: {counts:?}");
    assert!(cut_default == 0 && whole >= 180, "16 KiB: {counts:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
