//! The transport end to end, driven by the synthetic source: every
//! getppid() of this process emits events whose payload is checkable.
//! Tests here share one pid (the synthetic source's filter), so they take
//! turns.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proctap::{Config, Event, EventKind, Stats, Synthetic, SyntheticSource, SyntheticTransport};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn source(transport: SyntheticTransport, payload_bytes: u32, events_per_trigger: u32) -> Config {
    Config::new().exec(false).exit(false).synthetic(SyntheticSource {
        pid: std::process::id(),
        payload_bytes,
        events_per_trigger,
        transport,
        ring_bytes: 0,
    })
}

fn trigger(times: usize) {
    for _ in 0..times {
        std::hint::black_box(std::os::unix::process::parent_id());
    }
}

/// Collects the synthetic events on another thread while the test triggers.
fn collector(tracer: &proctap::Tracer) -> std::thread::JoinHandle<Vec<Synthetic>> {
    let events = tracer.events().clone();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        for batch in events {
            for event in &batch {
                if let Event::Synthetic(s) = event.to_owned_event() {
                    got.push(s);
                }
            }
        }
        got
    })
}

/// Stops the tracer; returns what the collector got and the final stats.
fn stop_and_collect(
    tracer: proctap::Tracer,
    collector: std::thread::JoinHandle<Vec<Synthetic>>,
) -> (Vec<Synthetic>, Stats) {
    tracer.stop_handle().stop();
    let got = collector.join().expect("collector");
    let stats = tracer.stop().expect("stop");
    (got, stats)
}

/// Stops the tracer and reads what it delivered only then (a stalled consumer).
fn stop_then_read(tracer: proctap::Tracer) -> (Vec<Synthetic>, Stats) {
    let reader = collector(&tracer);
    stop_and_collect(tracer, reader)
}

/// Per CPU, the sequence numbers must run 0, 1, 2, ... without a gap.
fn assert_gapless(events: &[Synthetic]) {
    let mut next: HashMap<u16, u64> = HashMap::new();
    for e in events {
        let expect = next.entry(e.cpu).or_insert(0);
        assert_eq!(e.seq, *expect, "cpu {} skipped or repeated an event", e.cpu);
        *expect += 1;
    }
}

#[test]
fn every_transport_delivers_each_event_once_and_intact() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for transport in [SyntheticTransport::Hybrid, SyntheticTransport::Ringbuf, SyntheticTransport::Perfbuf] {
        for payload in [0u32, 5, 8, 100, 4096] {
            // 2 MiB of data pages; bursts of 8 events (33 KiB at most) with
            // pauses for the consumer, so nothing is lost.
            let config = source(transport, payload, 8).argv_max(1).pages_per_cpu(512);
            let Some(tracer) = common::start(&config) else { return };
            let reader = collector(&tracer);
            for _ in 0..100 {
                trigger(1);
                std::thread::sleep(Duration::from_millis(2));
            }
            let (got, stats) = stop_and_collect(tracer, reader);
            let label = format!("{transport:?}, {payload} B");
            assert_eq!(got.len(), 800, "{label}: 100 triggers x 8 events: {stats:?}");
            assert_eq!(stats.synthetic().emitted, 800, "{label}");
            assert_eq!(stats.synthetic().delivered, 800, "{label}");
            assert_eq!((stats.synthetic().meta_lost, stats.synthetic().data_lost, stats.invalid), (0, 0, 0), "{label}");
            assert_gapless(&got);
            for e in &got {
                assert_eq!(e.pid, std::process::id());
                assert!(!e.data_lost, "{label}");
                assert!(e.payload_intact(), "{label}: seq {} payload differs from what the kernel wrote", e.seq);
            }
        }
    }
}

#[test]
fn a_stalled_consumer_gets_counted_losses_and_intact_payloads() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // 8 pages of data (8 records of 4 KiB) and a 16 KiB metadata ring
    // (about 200 records): the data pages run out first, then the ring.
    let config = source(SyntheticTransport::Hybrid, 4096, 16)
        .pages_per_cpu(8)
        .argv_max(1)
        .ringbuf_bytes(16 << 10)
        .batches_in_flight(2);
    let Some(tracer) = common::start(&config) else { return };
    // Nobody reads: the two batch buffers fill, then the rings.
    trigger(100);
    std::thread::sleep(Duration::from_millis(200));
    let (got, stats) = stop_then_read(tracer);
    let s = *stats.synthetic();
    assert!(s.meta_lost > 0 && s.data_lost > 0, "the test must overflow both: {stats:?}");
    // Every attempt is delivered or counted lost, exactly.
    let seqs_seen: u64 = got.len() as u64;
    assert_eq!(s.emitted, s.delivered + stats.abandoned + stats.undelivered, "{stats:?}");
    assert_eq!(s.emitted + s.meta_lost, 1600, "{stats:?}");
    assert!(seqs_seen <= s.delivered);
    for e in &got {
        assert!(e.payload_intact(), "seq {}: a payload was overwritten before it was read", e.seq);
        assert_eq!(e.data_lost, e.payload.is_empty());
    }
    let delivered_without_data = got.iter().filter(|e| e.data_lost).count() as u64;
    assert!(delivered_without_data <= s.data_lost);
    if stats.abandoned + stats.undelivered == 0 {
        assert_eq!(delivered_without_data, s.data_lost, "{stats:?}");
        assert_eq!(seqs_seen, s.delivered);
    }
}

#[test]
fn a_sleeping_consumer_is_woken_by_the_first_event() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(tracer) = common::start(&source(SyntheticTransport::Hybrid, 16, 1)) else { return };
    let mut woken = 0;
    for _ in 0..5 {
        // Idle long enough for the poll thread to go to sleep.
        std::thread::sleep(Duration::from_millis(30));
        let before = tracer.stats().doorbells;
        trigger(1);
        let batch = tracer.events().recv_timeout(Duration::from_secs(5)).expect("the event arrives");
        assert_eq!(batch.len(), 1);
        woken += (tracer.stats().doorbells > before) as u32;
    }
    let (_, stats) = stop_then_read(tracer);
    assert!(stats.sleeps >= 5, "{stats:?}");
    // Each lone event after a sleep rang the doorbell (the 100 ms safety
    // timeout was not what delivered it).
    assert_eq!(woken, 5, "{stats:?}");
    assert_eq!(stats.doorbell_lost, 0);
}

#[test]
fn busy_polling_delivers_without_sleeping() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(tracer) = common::start(&source(SyntheticTransport::Hybrid, 16, 4).busy_poll(true)) else { return };
    let reader = collector(&tracer);
    std::thread::sleep(Duration::from_millis(20));
    trigger(50);
    let (got, stats) = stop_and_collect(tracer, reader);
    assert_eq!(got.len(), 200);
    assert_gapless(&got);
    assert_eq!((stats.sleeps, stats.doorbells), (0, 0), "{stats:?}");
}

#[test]
fn a_handler_on_the_poll_thread_gets_every_event_once() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for busy in [false, true] {
        let got = Arc::new(Mutex::new(Vec::new()));
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let (sink, seen_on) = (got.clone(), threads.clone());
        let config = source(SyntheticTransport::Hybrid, 16, 4).busy_poll(busy);
        let Some(tracer) = common::start_with_handler(&config, move |batch| {
            seen_on.lock().unwrap().insert(std::thread::current().name().map(str::to_owned));
            for event in &batch {
                if let Event::Synthetic(s) = event.to_owned_event() {
                    sink.lock().unwrap().push(s);
                }
            }
        }) else {
            return;
        };
        let channel = tracer.events().clone();
        std::thread::sleep(Duration::from_millis(20));
        trigger(50);
        let stats = tracer.stop().expect("stop");
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 200, "busy_poll {busy}: {stats:?}");
        assert_gapless(&got);
        assert!(got.iter().all(|s| s.payload.len() == 16 && !s.data_lost));
        assert_eq!((stats.synthetic().emitted, stats.synthetic().delivered, stats.undelivered), (200, 200, 0));
        assert_eq!(*threads.lock().unwrap(), HashSet::from([Some("proctap-poll".to_owned())]));
        assert!(channel.recv().is_err(), "the channel carries nothing and is closed");
    }
}

#[test]
fn busy_polling_hands_a_lone_event_over_at_once_and_batches_a_flow() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A flush interval far longer than any wake-up, so "at once" and "held
    // for the interval" cannot be confused.
    let flush = Duration::from_secs(2);
    let config = source(SyntheticTransport::Hybrid, 16, 1).busy_poll(true).flush_interval(flush);
    let (tx, rx) = std::sync::mpsc::channel();
    let Some(tracer) = common::start_with_handler(&config, move |batch| {
        let seqs: Vec<u64> =
            batch.iter().filter_map(|e| if let Event::Synthetic(s) = e { Some(s.seq) } else { None }).collect();
        let _ = tx.send((std::time::Instant::now(), seqs));
    }) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(50));
    let lone = std::time::Instant::now();
    trigger(1);
    let (first_at, first) = rx.recv_timeout(flush).expect("a lone event is handed over before the flush interval");
    assert_eq!(first.len(), 1);
    assert!(first_at - lone < flush / 2, "{:?}", first_at - lone);
    // Right after a hand-over, more events are a flow: one batch, once the
    // interval since that hand-over has passed.
    trigger(5);
    let (_, flow) = rx.recv_timeout(2 * flush).expect("the flow is handed over after the interval");
    assert_eq!(flow.len(), 5, "the flow's events come in one batch");
    let stats = tracer.stop().expect("stop");
    assert_eq!(stats.synthetic().delivered, 6);
}

#[test]
fn a_panicking_handler_stops_the_tracer_and_its_events_are_counted() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let config = source(SyntheticTransport::Hybrid, 16, 4);
    let Some(tracer) = common::start_with_handler(&config, move |_batch| {
        counter.fetch_add(1, Ordering::Relaxed);
        panic!("handler failed on purpose");
    }) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(20));
    trigger(50);
    // The poll thread stops on its own after the panic: it counts the batch
    // it was handling as undelivered, detaches, and counts what is left in
    // the rings as abandoned.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let settled = |s: &Stats| {
        s.undelivered > 0 && s.synthetic().emitted == s.synthetic().delivered + s.abandoned + s.synthetic().meta_lost
    };
    let mut stats = tracer.stats();
    while !settled(&stats) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        stats = tracer.stats();
    }
    assert!(settled(&stats), "{stats:?}");
    assert_eq!(stats.synthetic().emitted, 200, "{stats:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 1, "the handler is not called again after it panicked");
    assert_eq!(
        stats.undelivered,
        stats.synthetic().delivered,
        "every batch from the panic on is undelivered: {stats:?}"
    );
    match tracer.stop() {
        Err(proctap::Error::HandlerPanicked { message }) => assert_eq!(message, "handler failed on purpose"),
        other => panic!("expected HandlerPanicked, got {other:?}"),
    }
}

#[test]
fn synthetic_config_is_checked() {
    for (config, field) in [
        (source(SyntheticTransport::Hybrid, 4097, 1), "synthetic.payload_bytes"),
        (source(SyntheticTransport::Hybrid, 16, 1025), "synth_batch"),
    ] {
        match config.validate() {
            Err(proctap::Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let no_pid = Config::new().synthetic(SyntheticSource {
        pid: 0,
        payload_bytes: 16,
        events_per_trigger: 1,
        transport: SyntheticTransport::Hybrid,
        ring_bytes: 0,
    });
    assert!(matches!(no_pid.validate(), Err(proctap::Error::InvalidConfig { .. })));
}

/// With per-kind batches each batch holds one kind, and the reports of that
/// kind's losses ride in its batches, where its consumer looks.
#[test]
fn per_kind_batches_hold_one_kind_each_and_its_loss_reports() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let config = source(SyntheticTransport::Hybrid, 64, 64)
        .event(EventKind::Exec, true)
        .per_kind_batches(true)
        .ringbuf_bytes(16 << 10)
        .batches_in_flight(4);
    let Some(tracer) = common::start(&config) else { return };
    let events = tracer.events().clone();
    let (exec_tx, exec_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen: HashMap<EventKind, u64> = HashMap::new();
        let mut lost_reports: HashMap<EventKind, u64> = HashMap::new();
        for batch in events {
            let kind = batch.kind().expect("every batch says its kind");
            for event in &batch {
                match &event {
                    Event::Lost(l) => {
                        assert_eq!(l.kind, kind, "a loss report rides with its kind");
                        *lost_reports.entry(kind).or_default() += l.records;
                    }
                    Event::Exec(e) => {
                        let _ = exec_tx.send(e.pid);
                    }
                    _ => {}
                }
                if !matches!(event, Event::Lost(_)) {
                    assert_eq!(event.kind(), kind, "a {kind} batch holds {kind} events only");
                    *seen.entry(kind).or_default() += 1;
                }
            }
        }
        (seen, lost_reports)
    });
    trigger(50); // 3200 synthetic events: more than the 16 KiB ring holds
                 // The flood shares the ring with the exec: an exec that finds it still
                 // full is lost (and counted), so exec until one gets through, as the
                 // poll thread drains on a busy machine at its own pace.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut arrived = false;
    while !arrived && Instant::now() < deadline {
        let mut child = std::process::Command::new("/bin/true").arg("per-kind").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let wait_until = Instant::now() + Duration::from_millis(500);
        while let Ok(got) = exec_rx.recv_timeout(wait_until.saturating_duration_since(Instant::now())) {
            if got == pid {
                arrived = true;
                break;
            }
        }
    }
    tracer.stop_handle().stop();
    let (seen, lost_reports) = reader.join().unwrap();
    let stats = tracer.stop().unwrap();
    assert!(arrived, "an exec arrived in an exec batch: {stats:?}");
    assert!(stats.synthetic().meta_lost > 0, "the test must overflow the ring: {stats:?}");
    for kind in [EventKind::Synthetic, EventKind::Exec] {
        let reported = lost_reports.get(&kind).copied().unwrap_or(0);
        assert_eq!(reported, stats.kind(kind).meta_lost, "every {kind} loss reported, in {kind} batches");
    }
    assert_eq!(seen.get(&EventKind::Synthetic).copied(), Some(stats.synthetic().delivered));
}
