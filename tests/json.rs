//! The three readers of a record agree: for random events of every kind,
//! the record the Rust encoder writes decodes back to the same event, and
//! the C library's printer (proctap_format_json, the C dumper's output)
//! prints the same JSON bytes as the Rust serializer. Both sides are
//! generated from the registry; this catches a generator that lays a field
//! out, names it or formats it differently on one side. No kernel needed.

use proptest::prelude::*;

use proctap::testing::{format_json, RecordWriter};
use proctap::{Argv, Comm, Event, EventKind, Events, Exec, Lost, WallTime};

#[path = "json/strategies.rs"]
mod strategies;
use strategies::event;

/// The event as decoding gives it back: derived fields filled in.
fn as_decoded(mut event: Event, offset: i64) -> Event {
    let time = WallTime::from_monotonic(event.ts_ns(), offset);
    match &mut event {
        Event::Exec(e) => e.time = time,
        Event::Exit(x) => {
            x.time = time;
            x.duration_ns = x.ts_ns.saturating_sub(x.start_ns);
        }
        Event::Sample(s) => s.time = time,
        Event::Offcpu(s) => s.time = time,
        Event::Trigger(t) => t.time = time,
        Event::Lost(l) => l.time = time,
        Event::Synthetic(s) => s.time = time,
        Event::Fork(f) => f.time = time,
        Event::ExecFailed(f) => f.time = time,
        Event::Open(o) => o.time = time,
        Event::Write(w) => w.time = time,
        Event::OomKill(k) => k.time = time,
        Event::ConnOpen(c) => c.time = time,
        Event::ConnClose(c) => c.time = time,
        Event::NetData(d) => d.time = time,
        Event::Mapping(m) => m.time = time,
        Event::Capture(c) => c.time = time,
        _ => unreachable!("a kind this test does not generate"),
    }
    event
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn rust_and_c_print_the_same_json_and_decoding_round_trips(event in event(), offset in any::<i64>()) {
        let mut w = RecordWriter::new();
        w.push(&event);
        let decoded: Vec<Event> = Events::new(w.bytes(), offset).map(|e| e.to_owned_event()).collect();
        prop_assert_eq!(&decoded, &vec![as_decoded(event, offset)]);
        let rust = serde_json::to_string(&decoded[0]).unwrap();
        let c = format_json(w.bytes(), offset);
        prop_assert_eq!(Some(&rust), c.as_ref(), "C printed something else");
        // And it is JSON.
        prop_assert!(serde_json::from_str::<serde_json::Value>(&rust).is_ok());
    }
}

#[test]
fn the_c_printer_refuses_records_that_break_their_declaration() {
    let mut w = RecordWriter::new();
    w.push(&Event::Lost(Lost { ts_ns: 1, time: WallTime::default(), kind: EventKind::Exec, records: 2 }));
    let good = w.bytes().to_vec();
    assert!(format_json(&good, 0).is_some());
    let mut bad_kind = good.clone();
    bad_kind[56..60].copy_from_slice(&99u32.to_ne_bytes()); // lost_kind (after the header): no such kind
    assert_eq!(format_json(&bad_kind, 0), None);
    let mut bad_flag = good.clone();
    bad_flag[2] = 0x40; // a flag lost records do not have
    assert_eq!(format_json(&bad_flag, 0), None);
    assert_eq!(format_json(&good[..48], 0), None, "shorter than a header");
    let mut unknown = good;
    unknown[0] = 60; // a kind nobody declared
    assert_eq!(format_json(&unknown, 0), None);

    // Lengths that promise more data than the record holds: refused, not
    // read past the end.
    let exec = Exec {
        ts_ns: 1,
        time: WallTime::default(),
        pid: 1,
        tid: 1,
        parent_start_ns: 0,
        proc_start_ns: 0,
        ppid: 0,
        uid: 0,
        gid: 0,
        ns_pid: 1,
        cgroup_id: 1,
        comm: Comm::new(b"x"),
        code_start: 0,
        code_end: 0,
        exe_dev: 0,
        exe_ino: 0,
        argv_size: 0,
        filename: vec![b'f'; 300],
        argv: Argv(Vec::new()),
        filename_truncated: false,
        argv_truncated: false,
        argv_fault: false,
        data_lost: false,
    };
    let mut w = RecordWriter::new();
    w.push(&Event::Exec(exec));
    let whole = w.bytes().to_vec();
    assert!(format_json(&whole, 0).is_some());
    for cut in [whole.len() - 8, 104, 120] {
        assert_eq!(format_json(&whole[..cut], 0), None, "cut to {cut} bytes");
    }
}
