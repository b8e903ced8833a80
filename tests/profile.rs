//! The profiler against the real kernel: targets by pid, by command-name
//! prefix (in the kernel at exec) and by fork; samples only of targets;
//! targets leave with their process, also across pid reuse; records intact
//! when samples nest in another program; off-CPU time per blocking
//! function; captures started by cgroup pressure. Stacks and their
//! symbols: tests/profile_stacks.rs. Tests take turns
//! (common::profiling::turn).

mod common;

use std::collections::HashSet;
use std::process::Child;
use std::time::{Duration, Instant};

use common::fixture::{self, HotBinaries};
use common::profiling::{collect_for, profile, sample_pids, samples, stop_and_collect, turn, Reaper};
use proctap::profile::{Profile, Symbolizer};
use proctap::{Config, Event, Profiler, TriggerReason, Unwind};

fn hot(name: &str) -> HotBinaries {
    fixture::build_hot(name)
}

#[test]
fn only_targets_are_sampled_and_system_wide_mode_sees_the_rest() {
    let _turn = turn();
    let bins = hot("untracked");
    let kids = Reaper(vec![fixture::spawn(&bins.plain, &[]), fixture::spawn(&bins.plain, &[])]);
    let (tracked, untracked) = (kids.0[0].id(), kids.0[1].id());

    let Some(tracer) = common::start(&profile(Profiler::new().hz(99).pid(tracked))) else { return };
    // Until 20 samples of the target (a busy machine gives it less CPU),
    // then 300 ms more for any sample of the other to show up.
    let mut events =
        common::collect_until(&tracer, Duration::from_secs(10), |_| true, |got| samples(got).count() >= 20);
    events.extend(collect_for(&tracer, Duration::from_millis(300)));
    let (stats, rest) = stop_and_collect(tracer);
    events.extend(rest);
    let pids = sample_pids(&events);
    assert!(pids.get(&tracked).copied().unwrap_or(0) >= 20, "too few samples of the target: {pids:?}");
    assert_eq!(pids.keys().copied().collect::<Vec<_>>(), vec![tracked], "only the target is sampled");
    assert_eq!(stats.sample().delivered, samples(&events).count() as u64);
    assert_eq!(stats.sample().meta_lost + stats.sample().data_lost + stats.invalid, 0, "{stats:?}");
    assert!(stats.perf_events >= 1);

    // The same two processes, system-wide: the other one shows up, so the
    // filter above is what kept it out.
    let Some(tracer) = common::start(&profile(Profiler::new().hz(99).all(true))) else { return };
    let events = common::collect_until(
        &tracer,
        Duration::from_secs(10),
        |_| true,
        |got| {
            let pids = sample_pids(got);
            pids.contains_key(&tracked) && pids.contains_key(&untracked)
        },
    );
    tracer.stop().unwrap();
    let pids = sample_pids(&events);
    assert!(pids.contains_key(&tracked) && pids.contains_key(&untracked), "system-wide sees both: {pids:?}");
    drop(kids);
}

#[test]
fn a_watched_prefix_catches_a_process_started_later_within_100_ms() {
    let _turn = turn();
    let bins = hot("trigger");
    let Some(tracer) = common::start(&profile(Profiler::new().hz(99).comm_prefix(&bins.comm[..bins.comm.len() - 1])))
    else {
        return;
    };
    let started = Instant::now();
    let kids = Reaper(vec![fixture::spawn(&bins.named, &[])]);
    let pid = kids.0[0].id();
    let events = common::collect_until(
        &tracer,
        Duration::from_secs(3),
        |e| e.pid() == pid,
        |got| got.iter().filter(|e| matches!(e, Event::Sample(_))).count() >= 3,
    );
    let spawn_to_now = started.elapsed();
    let stats = tracer.stop().unwrap();
    drop(kids);

    let trigger = events
        .iter()
        .find_map(|e| match e {
            Event::Trigger(t) => Some(*t),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no trigger for pid {pid} in {spawn_to_now:?}; stats {stats:?}"));
    assert_eq!(trigger.pid, pid);
    assert_eq!(trigger.ppid, std::process::id());
    assert_eq!(trigger.comm.as_bytes(), bins.comm.as_bytes());
    assert_eq!((trigger.reason, trigger.prefix_len), (TriggerReason::CommPrefix, bins.comm.len() as u32 - 1));
    assert_eq!(stats.trigger().emitted, 1, "exactly one trigger: {stats:?}");

    let first = samples(&events).map(|s| s.ts_ns).min().expect("samples of the triggered process");
    let since_start = Duration::from_nanos(first - trigger.start_ns);
    assert!(
        since_start <= Duration::from_millis(100),
        "first sample {since_start:?} after the process started (99 Hz: expected within 100 ms)"
    );
    // Samples come only after the trigger: the kernel added the pid at exec.
    assert!(first >= trigger.ts_ns);
}

#[test]
fn targets_leave_on_exit_and_do_not_follow_a_reused_pid() {
    let _turn = turn();
    let bins = hot("reuse");
    let Some(tracer) = common::start(&profile(Profiler::new().hz(99))) else { return };
    let targets = tracer.targets();

    let mut first = fixture::spawn(&bins.plain, &[]);
    let pid = first.id();
    targets.add_pid(pid).unwrap();
    assert_eq!(targets.pids().unwrap(), vec![pid]);
    fixture::kill(&mut first);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !targets.pids().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(targets.pids().unwrap(), Vec::<u32>::new(), "the exit removed the target in the kernel");
    // Samples of the first process taken before it ended may still be on
    // their way (an emulated guest is slow): only later ones count below.
    let gone = proctap::monotonic_ns();

    // Another process with the same pid: ask the kernel for pid - 1 as the
    // last one handed out, so the next fork gets pid (retried if another
    // fork takes it first).
    let mut kids = Reaper(Vec::new());
    for _ in 0..20 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let child = fixture::spawn(&bins.plain, &[]);
        let reused = child.id() == pid;
        kids.0.push(child);
        if reused {
            break;
        }
    }
    let second = kids.0.last().unwrap().id();
    assert_eq!(second, pid, "could not get pid {pid} again through ns_last_pid");
    let events = collect_for(&tracer, Duration::from_millis(800));
    let later: Vec<Event> = events.into_iter().filter(|e| e.ts_ns() > gone).collect();
    assert_eq!(sample_pids(&later).get(&pid), None, "the new process of pid {pid} is not a target");
    assert!(targets.pids().unwrap().is_empty());

    // Adding it now samples it: the new process is profiled only when asked.
    targets.add_pid(pid).unwrap();
    let events = common::collect_until(
        &tracer,
        Duration::from_secs(3),
        |e| e.pid() == pid,
        |got| got.iter().any(|e| matches!(e, Event::Sample(_))),
    );
    assert!(samples(&events).count() >= 1, "samples after add_pid");
    tracer.stop().unwrap();
}

#[test]
fn targets_are_added_and_removed_at_run_time_with_typed_errors() {
    let _turn = turn();
    let bins = hot("runtime");
    let mut kids = Reaper(vec![fixture::spawn(&bins.plain, &[])]);
    let pid = kids.0[0].id();
    let Some(tracer) = common::start(&profile(Profiler::new().hz(99))) else { return };
    let targets = tracer.targets();

    let quiet = collect_for(&tracer, Duration::from_millis(300));
    assert_eq!(samples(&quiet).count(), 0, "no targets, no samples");
    targets.add_pid(pid).unwrap();
    targets.add_pid(pid).unwrap(); // twice is fine
    let on =
        common::collect_until(&tracer, Duration::from_secs(10), |e| e.pid() == pid, |got| samples(got).count() >= 5);
    assert!(samples(&on).count() >= 5);
    assert!(targets.remove_pid(pid).unwrap());
    assert!(!targets.remove_pid(pid).unwrap(), "not a target any more");
    // Records already in flight may still arrive; after that, nothing.
    collect_for(&tracer, Duration::from_millis(100));
    let off = collect_for(&tracer, Duration::from_millis(500));
    assert_eq!(samples(&off).count(), 0, "removed: no samples");

    // A thread id is not a process id, a dead pid is not a process.
    let tid = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&tid| tid != std::process::id())
        .expect("the test harness runs tests on threads");
    assert!(matches!(targets.add_pid(tid), Err(proctap::Error::Target { errno: 22, .. })));
    fixture::kill(&mut kids.0[0]);
    assert!(matches!(targets.add_pid(pid), Err(proctap::Error::Target { errno: 3, .. })));
    assert!(targets.pids().unwrap().is_empty(), "a failed add leaves nothing behind");
    assert!(matches!(targets.add_comm_prefix(""), Err(proctap::Error::InvalidConfig { .. })));
    assert!(matches!(targets.add_comm_prefix("sixteen-bytes-xx"), Err(proctap::Error::InvalidConfig { .. })));

    // Running processes matching a new prefix are found by the /proc scan.
    let mut named = fixture::spawn(&bins.named, &[]);
    std::thread::sleep(Duration::from_millis(50)); // past its exec
    let found = targets.add_comm_prefix(&bins.comm).unwrap();
    assert_eq!(found, vec![named.id()]);
    assert!(targets.remove_comm_prefix(&bins.comm).unwrap());
    assert!(!targets.remove_comm_prefix(&bins.comm).unwrap());
    fixture::kill(&mut named);
    let stats = tracer.stop().unwrap();
    assert_eq!(stats.trigger().emitted, 0, "the scan found it, the kernel did not trigger");
    assert!(matches!(targets.add_pid(1), Err(proctap::Error::Target { errno: 3, .. })), "stopped tracer");

    // A tracer that does not profile refuses targets.
    let Some(plain) = common::start(&Config::new()) else { return };
    assert!(matches!(plain.targets().add_pid(std::process::id()), Err(proctap::Error::Target { errno: 22, .. })));
}

#[test]
fn children_of_targets_are_profiled_when_asked() {
    let _turn = turn();
    let bins = hot("children");
    let Some(tracer) = common::start(&profile(Profiler::new().hz(99).children(true))) else { return };
    // A shell target that forks the hot program: the child is a target by fork.
    let mut shell = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("read go; {} 700", bins.plain.display()))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let shell_pid = shell.id();
    tracer.targets().add_pid(shell_pid).unwrap();
    use std::io::Write;
    writeln!(shell.stdin.take().unwrap(), "go").unwrap();
    let events = collect_for(&tracer, Duration::from_millis(1200));
    shell.wait().unwrap();
    tracer.stop().unwrap();

    let child = events
        .iter()
        .find_map(|e| match e {
            Event::Trigger(t) if t.reason == TriggerReason::Child && t.ppid == shell_pid => Some(t.pid),
            _ => None,
        })
        .expect("a child trigger for the shell's fork");
    let pids = sample_pids(&events);
    assert!(pids.get(&child).copied().unwrap_or(0) >= 1, "the child was sampled: {pids:?}");
    let sampled: HashSet<u32> = pids.keys().copied().collect();
    assert!(sampled.is_subset(&HashSet::from([shell_pid, child])), "{sampled:?}");
}

/// The frame-pointer walk: frames arrive as raw return addresses, which
/// the symbolizer names through the process' mappings.
#[test]
fn frame_pointer_samples_carry_return_addresses_that_symbolize() {
    let _turn = turn();
    let bins = hot("frames");
    let kids = Reaper(vec![fixture::spawn(&bins.plain, &[])]);
    let pid = kids.0[0].id();
    let fp = Profiler::new().hz(199).pid(pid).unwind(Unwind::FramePointers);
    let Some(tracer) = common::start(&profile(fp)) else { return };
    let events =
        common::collect_until(&tracer, Duration::from_secs(3), |e| e.pid() == pid, |got| samples(got).count() >= 40);
    tracer.stop().unwrap();
    // While the process runs: its /proc maps name the frames.
    let mut symbolizer = Symbolizer::new();
    let mut whole = 0;
    for s in samples(&events) {
        assert!(!s.data_lost && s.user_stack_error.is_none() && s.user_ip == 0, "{s:?}");
        let names: Vec<String> = symbolizer.symbolize_sample(s).iter().map(|l| l.function().to_string()).collect();
        // main -> pt_hot_outer -> leaf, innermost first, with frame pointers.
        let leaf = names.iter().position(|f| f.starts_with("pt_hot_leaf_"));
        let outer = names.iter().position(|f| f == "pt_hot_outer");
        let main = names.iter().position(|f| f == "main");
        if matches!((leaf, outer, main), (Some(l), Some(o), Some(m)) if l < o && o < m) {
            whole += 1;
        }
    }
    drop(kids);
    let total = samples(&events).count();
    if let Some(s) = samples(&events).next() {
        eprintln!("{}", serde_json::to_string(&Event::Sample(s.clone())).unwrap());
    }
    assert!(total >= 40 && whole * 10 >= total * 8, "{whole} of {total} samples name leaf, pt_hot_outer and main");
}

/// A sample taken while another program of proctap's is between reserving
/// its data and submitting its record (the sampler's timer interrupts the
/// synthetic source, which runs in this process' getppid): both programs
/// reserve from the same CPU's data pages with a compare-and-swap, and the
/// consumer gets the nested record first. Every record must still arrive
/// intact, counted once, and the spans must be released in order.
#[test]
fn samples_nested_inside_another_program_leave_every_record_intact() {
    let _turn = turn();
    let pid = std::process::id();
    let config = Config::new()
        .exec(false)
        .exit(false)
        .pages_per_cpu(256)
        .synthetic(proctap::SyntheticSource {
            pid,
            payload_bytes: 2048,
            events_per_trigger: 64,
            transport: proctap::SyntheticTransport::Hybrid,
            ring_bytes: 0,
        })
        .profile(Profiler::new().hz(999).pid(pid));
    let Some(tracer) = common::start(&config) else { return };
    let events = tracer.events().clone();
    let reader = std::thread::spawn(move || {
        let (mut synthetic, mut samples, mut kernel_samples) = (Vec::new(), 0u64, 0u64);
        for batch in events {
            for event in &batch {
                match event {
                    Event::Synthetic(s) => {
                        assert!(s.payload_intact(), "payload of seq {} on cpu {} intact", s.seq, s.cpu);
                        synthetic.push((s.cpu, s.seq));
                    }
                    Event::Sample(s) => {
                        samples += 1;
                        kernel_samples += u64::from(s.kernel_mode);
                        // Intact, not necessarily whole: copying a thread's user
                        // stack from the timer cannot fault pages in, so a copy can
                        // end in EFAULT (seen once in CI, on a new thread). That is a
                        // typed error, not a damaged record.
                        let user_ok = s.user_stack_error.is_none_or(|e| e.errno == 14);
                        assert!(s.data_lost || user_ok && s.kernel_stack_error.is_none(), "{s:?}");
                    }
                    _ => {}
                }
            }
        }
        (synthetic, samples, kernel_samples)
    });
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && tracer.stats().nested < 20 {
        for _ in 0..100 {
            std::hint::black_box(std::os::unix::process::parent_id());
        }
    }
    let stats = tracer.stop().unwrap();
    let (synthetic, samples, kernel_samples) = reader.join().unwrap();
    eprintln!("nested: {stats:?}");

    assert!(stats.nested > 0, "no sample landed inside the synthetic program: {stats:?}");
    assert!(kernel_samples > 0 && samples == stats.sample().delivered);
    let mut seen = HashSet::new();
    for &(cpu, seq) in &synthetic {
        assert!(seen.insert((cpu, seq)), "seq {seq} on cpu {cpu} delivered twice");
    }
    assert_eq!(synthetic.len() as u64, stats.synthetic().delivered);
    assert_eq!(stats.synthetic().emitted, stats.synthetic().delivered);
    assert_eq!(stats.sample().emitted, stats.sample().delivered);
    assert_eq!((stats.invalid, stats.ring_stalls, stats.abandoned), (0, 0, 0), "{stats:?}");
}

/// Off-CPU samples: a program that sleeps 30 ms in nanosleep, 20 ms in a
/// pipe read and 10 ms in a futex wait each round gets those shares of its
/// blocked time, each under its own function; sleeps under the threshold
/// are not reported.
#[test]
fn off_cpu_samples_give_each_blocking_function_its_share_of_blocked_time() {
    let _turn = turn();
    let dir = std::env::temp_dir().join(format!("proctap-offcpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Frame pointers walked by the kernel; and without them (-O2), the
    // stack copied at the switch and unwound here, through libc's wrappers.
    for (name, flags, unwind) in [
        ("sleeper", "-fno-omit-frame-pointer", Unwind::FramePointers),
        ("sleeper-nofp", "-fomit-frame-pointer", Unwind::StackCopy),
    ] {
        let exe = dir.join(name);
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sleeper.c");
        let opt = if unwind == Unwind::StackCopy { "-O2" } else { "-O1" };
        let built = std::process::Command::new("cc")
            .args([opt, "-g", flags, "-pthread", "-o"])
            .arg(&exe)
            .arg(&source)
            .status()
            .expect("cc");
        assert!(built.success());
        let Some(off) = off_cpu_profile(&exe, unwind) else { return };
        let (sleep, pipe, futex) = (
            off.inclusive_blocked_ns("pt_sleep_phase"),
            off.inclusive_blocked_ns("pt_pipe_phase"),
            off.inclusive_blocked_ns("pt_futex_phase"),
        );
        let mut folded = Vec::new();
        off.write_folded(&mut folded).unwrap();
        let folded = String::from_utf8(folded).unwrap();
        let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
        let what = format!("{unwind:?}");
        assert!(
            futex > 0 && (2.5..3.5).contains(&ratio(sleep, futex)),
            "{what}: sleep {sleep} futex {futex}\n{folded}"
        );
        assert!((1.6..2.4).contains(&ratio(pipe, futex)), "{what}: pipe {pipe} futex {futex}\n{folded}");
        // The kernel side says where: in the folded stacks, under the phase,
        // ending where the thread slept (not in the tracer's own program).
        assert!(folded.lines().any(|l| l.contains("pt_pipe_phase;") && l.contains("_[k]")), "{folded}");
        assert!(folded.lines().all(|l| !l.contains("bpf_prog_") && !l.contains("bpf_trace_run")), "{folded}");
        if unwind == Unwind::StackCopy {
            // Whole chains: every sleep of the main thread under main.
            let under_main = off.inclusive_blocked_ns("main");
            assert!(under_main >= (sleep + pipe) * 95 / 100, "{what}: {under_main} ns under main\n{folded}");
            continue;
        }
        let mut pprof = Vec::new();
        off.write_pprof(&mut pprof).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(pprof.as_slice()), &mut raw).unwrap();
        let decoded = <proctap::profile::proto::Profile as prost::Message>::decode(raw.as_slice()).unwrap();
        let s = |i: i64| decoded.string_table[i as usize].as_str();
        let types: Vec<(&str, &str)> = decoded.sample_type.iter().map(|t| (s(t.r#type), s(t.unit))).collect();
        assert_eq!(types, [("samples", "count"), ("off-cpu", "nanoseconds")]);
        let slept: i64 = decoded.sample.iter().map(|x| x.value[1]).sum();
        assert_eq!(slept as u64, off.inclusive_blocked_ns(name), "every ns slept, in pprof too");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The off-CPU profile of 120 sleeps of the sleeper fixture (None: no BPF
/// here, and not under CI).
fn off_cpu_profile(exe: &std::path::Path, unwind: Unwind) -> Option<Profile> {
    let kids = Reaper(vec![fixture::spawn(exe, &[])]);
    let pid = kids.0[0].id();
    let config = profile(Profiler::new().pid(pid).unwind(unwind).off_cpu(Duration::from_millis(5)));
    let tracer = common::start(&config)?;
    let sleeps = |e: &Event<&[u8]>| matches!(e, Event::Offcpu(s) if s.pid == pid);
    // 30 rounds of 60 ms: 90 sleeps of the main thread, 30 of the answerer.
    let events = common::collect_until(&tracer, Duration::from_secs(10), sleeps, |got| got.len() >= 120);
    tracer.stop().unwrap();
    let mut symbolizer = Symbolizer::new();
    let mut off = Profile::off_cpu();
    for e in &events {
        if let Event::Offcpu(s) = e {
            assert!(s.blocked_ns >= 5_000_000, "under the threshold: {s:?}");
            assert_eq!(s.user_ip != 0, unwind == Unwind::StackCopy, "{s:?}");
            off.add_off_cpu(s, &mut symbolizer);
        }
    }
    Some(off)
}

/// Pressure-triggered capture (the profile example's --psi): more busy
/// processes than CPUs in one cgroup make CPU pressure; a capture fires
/// for that cgroup, prints its start and stop, and the profile shows their
/// hot function.
#[test]
fn cpu_pressure_in_a_cgroup_starts_a_capture_of_its_processes() {
    let _turn = turn();
    let bins = hot("psi");
    let cgroup = common::cgroup::V2Cgroup::new("proctap-psi");
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let busy: Vec<Child> = (0..2 * cpus)
        .map(|_| {
            let script = format!("echo $$ > {} && exec {} 15000", cgroup.procs().display(), bins.named.display());
            std::process::Command::new("/bin/sh").arg("-c").arg(script).spawn().unwrap()
        })
        .collect();
    let _kids = Reaper(busy);
    let out = std::env::temp_dir().join(format!("proctap-psi-out-{}", std::process::id()));
    let run = std::process::Command::new(common::tools::example("profile"))
        .args(["--comm", &bins.comm, "--psi", "cpu:20", "--capture-window", "1", "--duration", "4", "--out"])
        .arg(&out)
        .output()
        .expect("the profile example");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{run:?}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let name = format!("/{}", cgroup.dir.file_name().unwrap().to_string_lossy());
    let capture =
        |state: &str| lines.iter().find(|l| l["type"] == "capture" && l["state"] == state && l["cgroup"] == name);
    let start = capture("start").unwrap_or_else(|| panic!("no capture of {name}: {stdout}"));
    assert_eq!(start["trigger"]["resource"], "cpu");
    assert!(start["trigger"]["stalled_us"].as_u64().unwrap() >= 200_000, "{start}");
    assert_eq!(start["targets"], 2 * cpus, "{start}");
    assert!(capture("stop").is_some(), "{stdout}");
    let folded = std::fs::read_to_string(out.join("profile.folded")).unwrap();
    assert!(folded.contains(fixture::HOT_LEAF_A), "{folded}");
    let _ = std::fs::remove_dir_all(&out);
}

/// A capture mark goes into the stream whole, stamped by the loader with
/// the stream's clock; a mark a tracer cannot take is refused with a typed
/// error.
#[test]
fn capture_marks_reach_the_stream_and_bad_ones_are_refused() {
    use proctap::{Capture, CaptureResource, CaptureStall, CaptureState, Error, WallTime};
    let _turn = turn();
    let mark = |cgroup: &[u8]| Capture {
        ts_ns: 0,
        time: WallTime::default(),
        state: CaptureState::Start,
        resource: CaptureResource::Memory,
        stall: CaptureStall::Full,
        targets: 3,
        threshold_us: 100_000,
        window_us: 1_000_000,
        stalled_us: 250_000,
        cgroup: cgroup.to_vec(),
        data_lost: false,
    };
    // Mixed batches, and a batch per kind (the capture kind's own).
    for per_kind in [false, true] {
        let config = profile(Profiler::new().hz(99).comm_prefix("proctap-nomatch")).per_kind_batches(per_kind);
        if !one_capture_mark_arrives(&config, &mark) {
            return;
        }
    }

    // A tracer that does not profile takes none.
    let Some(plain) = common::start(&Config::new().exec(false).exit(true)) else { return };
    let refused = plain.targets().mark_capture(&mark(b"/"));
    plain.stop().unwrap();
    assert!(matches!(refused, Err(Error::Target { errno: 22, .. })), "{refused:?}");
}

/// Marks one valid capture and one that is too long: the valid one, and
/// only it, arrives whole and stamped; after the stop, marks are refused.
/// False when BPF is not available here.
fn one_capture_mark_arrives(config: &Config, mark: &dyn Fn(&[u8]) -> proctap::Capture) -> bool {
    use proctap::{Capture, Error, WallTime};
    let Some(tracer) = common::start(config) else { return false };
    let before = proctap::monotonic_ns();
    tracer.targets().mark_capture(&mark(b"/system.slice/db.service")).unwrap();
    let after = proctap::monotonic_ns();
    let too_long = tracer.targets().mark_capture(&mark(&[b'a'; 5000]));
    assert!(matches!(too_long, Err(Error::Target { errno: 74, .. })), "{too_long:?}");
    let targets = tracer.targets();
    let (_, events) = stop_and_collect(tracer);
    let captures: Vec<&Capture> = events
        .iter()
        .filter_map(|e| match e {
            Event::Capture(c) => Some(c),
            _ => None,
        })
        .collect();
    let [got] = captures[..] else { panic!("one capture event, the valid mark: {captures:?}") };
    assert!((before..=after).contains(&got.ts_ns), "stamped {} outside [{before}, {after}]", got.ts_ns);
    assert_eq!(Capture { ts_ns: 0, time: WallTime::default(), ..got.clone() }, mark(b"/system.slice/db.service"));
    // The stream has ended: a mark now is refused, not dropped.
    let late = targets.mark_capture(&mark(b"/late"));
    assert!(matches!(late, Err(Error::Target { .. })), "{late:?}");
    true
}
