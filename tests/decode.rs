//! Decoding, JSON and config validation: no kernel needed.

use proctap::testing::RecordWriter;
use proctap::{Argv, Comm, Config, Error, Event, Events, Exec, Exit, WallTime};

fn exec(pid: u32, ts_ns: u64, ppid: u32, uid: u32, comm: &[u8], filename: &[u8], argv: &[u8]) -> Exec {
    Exec {
        ts_ns,
        time: WallTime::default(),
        pid,
        tid: pid,
        parent_start_ns: 0,
        proc_start_ns: 0,
        ppid,
        uid,
        gid: uid,
        ns_pid: pid,
        cgroup_id: 1,
        comm: Comm::new(comm),
        code_start: 0,
        code_end: 0,
        exe_dev: 0,
        exe_ino: 0,
        argv_size: argv.len() as u32,
        filename: filename.to_vec(),
        argv: Argv(argv.to_vec()),
        filename_truncated: false,
        argv_truncated: false,
        argv_fault: false,
        data_lost: false,
    }
}

fn exit(pid: u32, ts_ns: u64, ppid: u32, comm: &[u8], status: u32, start_ns: u64) -> Exit {
    let signal = (status & 0x7f) as u8;
    Exit {
        ts_ns,
        time: WallTime::default(),
        pid,
        tid: pid,
        proc_start_ns: 0,
        ppid,
        exit_code: (status >> 8) as u8,
        signal: (signal != 0).then_some(signal),
        core_dumped: status & 0x80 != 0,
        start_ns,
        duration_ns: 0,
        comm: Comm::new(comm),
        thread_exit: false,
    }
}

fn events(w: &RecordWriter, offset: i64) -> Vec<Event> {
    Events::new(w.bytes(), offset).map(|e| e.to_owned_event()).collect()
}

/// Profiles flush every 100 ms unless told otherwise; other configs every 10 ms.
#[test]
fn a_profile_flushes_less_often_unless_told() {
    use proctap::Profiler;
    use std::time::Duration;
    assert_eq!(Config::new().effective_flush_interval(), Duration::from_millis(10));
    assert_eq!(Config::new().profile(Profiler::new()).effective_flush_interval(), Duration::from_millis(100));
    let told = Config::new().flush_interval(Duration::from_millis(5)).profile(Profiler::new());
    assert_eq!(told.effective_flush_interval(), Duration::from_millis(5));
}

#[test]
fn exec_record_decodes_every_field() {
    let mut w = RecordWriter::new();
    let argv = b"/bin/true\0\0x y\0\xff\xfe\0";
    w.push(&Event::Exec(exec(42, 1_000, 7, 1000, b"true", b"/bin/true", argv)));
    let got = events(&w, 5);
    let [Event::Exec(e)] = &got[..] else { panic!("one exec expected, got {got:?}") };
    assert_eq!((e.pid, e.tid, e.ppid, e.uid, e.gid, e.ns_pid, e.cgroup_id), (42, 42, 7, 1000, 1000, 42, 1));
    assert_eq!(e.ts_ns, 1_000);
    assert_eq!(e.time.unix_ns, 1_005);
    assert_eq!(e.comm.as_bytes(), b"true");
    assert_eq!(e.filename, b"/bin/true");
    let args: Vec<&[u8]> = e.argv.iter().collect();
    assert_eq!(args, vec![&b"/bin/true"[..], b"", b"x y", b"\xff\xfe"]);
    assert_eq!(e.argv.len(), 4);
    assert!(!e.argv_truncated && !e.data_lost);
}

#[test]
fn exec_flags_decode_each_to_its_own_field() {
    let mut w = RecordWriter::new();
    let base = exec(1, 1, 0, 0, b"x", b"", b"");
    w.push(&Event::Exec(Exec { data_lost: true, ..base.clone() }));
    w.push(&Event::Exec(Exec { argv_truncated: true, ..base.clone() }));
    w.push(&Event::Exec(Exec { argv_fault: true, filename_truncated: true, ..base }));
    let got: Vec<(bool, bool, bool, bool)> = events(&w, 0)
        .into_iter()
        .map(|e| match e {
            Event::Exec(e) => (e.data_lost, e.argv_truncated, e.argv_fault, e.filename_truncated),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(got, vec![(true, false, false, false), (false, true, false, false), (false, false, true, true)]);
}

#[test]
fn truncated_argv_tail_without_nul_is_kept() {
    let mut w = RecordWriter::new();
    w.push(&Event::Exec(exec(1, 1, 0, 0, b"x", b"/x", b"a\0bc")));
    let Event::Exec(e) = &events(&w, 0)[0] else { panic!() };
    assert_eq!(e.argv.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"bc"]);
}

#[test]
fn exit_codes_decode_status_signal_and_core() {
    let mut w = RecordWriter::new();
    // The kernel's status words, written over what the encoder made of
    // status 0 (struct pt_exit: 80 bytes, status at 68, as the generated C
    // header asserts), so the decoder is checked against the kernel's
    // encoding, not against the generated encoder's.
    let statuses: [(u32, u64); 4] = [
        (3 << 8, 1_000),    // exit(3)
        (9, 4_000),         // SIGKILL
        (0x80 | 11, 6_000), // SIGSEGV, core; start after ts
        (0, 0),             // exit(0)
    ];
    for (i, (_, start)) in statuses.iter().enumerate() {
        w.push(&Event::Exit(exit(10 + i as u32, 5_000, 1, b"x", 0, *start)));
    }
    let mut bytes = w.bytes().to_vec();
    for (i, (status, _)) in statuses.iter().enumerate() {
        bytes[i * 88 + 76..i * 88 + 80].copy_from_slice(&status.to_ne_bytes()); // struct pt_exit's status
    }
    let got: Vec<_> = Events::new(&bytes, 0)
        .map(|e| e.to_owned_event())
        .map(|e| match e {
            Event::Exit(x) => (x.pid, x.exit_code, x.signal, x.core_dumped, x.duration_ns),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (10, 3, None, false, 4_000),
            (11, 0, Some(9), false, 1_000),
            (12, 0, Some(11), true, 0),
            (13, 0, None, false, 5_000),
        ]
    );
}

#[test]
fn unknown_kinds_are_skipped_and_a_short_tail_ends_iteration() {
    let mut w = RecordWriter::new();
    w.push(&Event::Exit(exit(1, 1, 0, b"a", 0, 0)));
    w.unknown(99, 64);
    w.push(&Event::Exit(exit(2, 1, 0, b"b", 0, 0)));
    let all = w.bytes().to_vec();
    assert_eq!(Events::new(&all, 0).map(|e| e.pid()).collect::<Vec<_>>(), vec![1, 2]);
    // Cut inside the last record: it must not decode as garbage.
    let cut = &all[..all.len() - 8];
    assert_eq!(Events::new(cut, 0).map(|e| e.pid()).collect::<Vec<_>>(), vec![1]);
    // Garbage size field.
    let mut bad = all.clone();
    bad[48..52].copy_from_slice(&u32::MAX.to_ne_bytes()); // rec_size of the first record (struct pt_hdr)
    assert_eq!(Events::new(&bad, 0).count(), 0);
    // Unaligned input decodes the same.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&all);
    assert_eq!(Events::new(&shifted[1..], 0).map(|e| e.pid()).collect::<Vec<_>>(), vec![1, 2]);
}

#[test]
fn json_matches_the_documented_format() {
    let mut w = RecordWriter::new();
    w.push(&Event::Exec(exec(42, 1_500_000_000, 7, 0, b"true", b"/bin/true", b"/bin/true\0\0\xff\0")));
    w.push(&Event::Exit(exit(42, 2_000_000_000, 7, b"true", 9, 1_500_000_000)));
    let got: Vec<String> = Events::new(w.bytes(), 1_700_000_000_000_000_000 - 1_000_000_000)
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect();
    assert_eq!(
        got[0],
        r#"{"type":"exec","ts_ns":1500000000,"time":"2023-11-14T22:13:20.500000000Z","pid":42,"tid":42,"proc_start_ns":0,"ppid":7,"parent_start_ns":0,"uid":0,"gid":0,"ns_pid":42,"cgroup_id":1,"comm":"true","code_start":0,"code_end":0,"exe_dev":0,"exe_ino":0,"filename":"/bin/true","argv":["/bin/true","",{"hex":"ff"}],"argv_truncated":false,"data_lost":false}"#
    );
    assert_eq!(
        got[1],
        r#"{"type":"exit","ts_ns":2000000000,"time":"2023-11-14T22:13:21.000000000Z","pid":42,"tid":42,"proc_start_ns":0,"ppid":7,"comm":"true","exit_code":0,"signal":9,"core_dumped":false,"start_ns":1500000000,"duration_ns":500000000,"thread_exit":false}"#
    );
    // Owned events serialize identically.
    let owned: Vec<String> = Events::new(w.bytes(), 1_700_000_000_000_000_000 - 1_000_000_000)
        .map(|e| serde_json::to_string(&e.to_owned_event()).unwrap())
        .collect();
    assert_eq!(owned, got);
}

#[test]
fn hex_encoding_round_trips_arbitrary_bytes() {
    let arg: Vec<u8> = (0u8..=255).collect();
    let mut argv = arg.iter().map(|&b| if b == 0 { 1 } else { b }).collect::<Vec<u8>>();
    argv.push(0);
    let mut w = RecordWriter::new();
    w.push(&Event::Exec(exec(1, 1, 0, 0, b"x", b"/x", &argv)));
    let json: serde_json::Value = serde_json::to_value(Events::new(w.bytes(), 0).next().unwrap()).unwrap();
    let hex = json["argv"][0]["hex"].as_str().expect("non-UTF-8 argument as {\"hex\":...}");
    let decoded: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    assert_eq!(decoded, argv[..argv.len() - 1]);
}

#[test]
fn wall_time_formats_rfc3339() {
    let t = |ns: i64| WallTime { unix_ns: ns }.to_string();
    assert_eq!(t(0), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(t(951_782_400_000_000_001), "2000-02-29T00:00:00.000000001Z");
    assert_eq!(t(1_709_164_799_999_999_999), "2024-02-28T23:59:59.999999999Z");
    assert_eq!(t(4_107_542_400_000_000_000), "2100-03-01T00:00:00.000000000Z");
    assert_eq!(t(-1), "1969-12-31T23:59:59.999999999Z");
    assert_eq!(WallTime::from_monotonic(10, -3).unix_ns, 7);
}

fn invalid_field(config: Config) -> String {
    match config.validate() {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn config_validation_names_the_field() {
    assert!(Config::new().validate().is_ok());
    assert!(Config::new().argv_max(1 << 20).validate().is_ok(), "1 MiB argv sizes its own pages");
    assert_eq!(invalid_field(Config::new().argv_max(0)), "argv_max");
    assert_eq!(invalid_field(Config::new().argv_max((1 << 20) + 1)), "argv_max");
    assert_eq!(invalid_field(Config::new().pages_per_cpu(3)), "pages_per_cpu");
    assert_eq!(invalid_field(Config::new().pages_per_cpu(2)), "pages_per_cpu"); // < one record
    assert_eq!(invalid_field(Config::new().pages_per_cpu(1024)), "pages_per_cpu"); // > 4 MiB
    assert_eq!(invalid_field(Config::new().ringbuf_bytes(1000)), "ringbuf_bytes");
    assert_eq!(invalid_field(Config::new().ringbuf_bytes(2048)), "ringbuf_bytes");
    assert_eq!(invalid_field(Config::new().flush_interval(std::time::Duration::ZERO)), "flush_interval");
    assert_eq!(invalid_field(Config::new().flush_interval(std::time::Duration::from_secs(11))), "flush_interval");
    assert_eq!(invalid_field(Config::new().pid(0)), "pids");
    assert_eq!(invalid_field((0..1025).fold(Config::new(), |c, p| c.pid(p + 1))), "pids");
    assert_eq!(invalid_field(Config::new().comm_prefix("0123456789abcdef")), "comm_prefix");
    assert_eq!(invalid_field(Config::new().comm_prefix(b"a\0b")), "comm_prefix");
    assert_eq!(invalid_field(Config::new().exec(false).exit(false)), "events");
    assert_eq!(invalid_field(Config::new().batch_bytes(4096)), "batch_bytes");
    assert_eq!(invalid_field(Config::new().batches_in_flight(1)), "batches_in_flight");
    // Writes: fds 0 and up, at most 8 (given twice counts once), 0 B to 1 MiB.
    assert!((0..8).fold(Config::new(), |c, fd| c.capture_fd(fd)).stdio().validate().is_ok());
    assert!(Config::new().stdio().write_max(0).validate().is_ok(), "lengths and positions only");
    assert!(Config::new().stdio().write_max(1 << 20).validate().is_ok(), "1 MiB writes size their own pages");
    assert_eq!(invalid_field((0..9).fold(Config::new(), |c, fd| c.capture_fd(fd))), "capture_fd");
    assert_eq!(invalid_field(Config::new().capture_fd(-1)), "capture_fd");
    assert_eq!(invalid_field(Config::new().stdio().write_max((1 << 20) + 1)), "write_max");
    // Only tracepoints declared at build (PROCTAP_EVENTS); exec is a kind, not one.
    assert_eq!(invalid_field(Config::new().tracepoint("nope:nothing_here")), "tracepoint");
    assert_eq!(invalid_field(Config::new().tracepoint("exec")), "tracepoint");
}
