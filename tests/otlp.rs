//! OTLP export: the event → LogRecord mapping (no kernel), the exporter's
//! queue and retries against a tiny Rust HTTP server (no kernel), and
//! events traced from real processes reaching a receiver that decodes them
//! with the official Python definitions (tests/fixtures/otlp_receiver.py;
//! `./dev.sh test` installs its opentelemetry-proto package).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proctap::otlp::proto::common::v1::any_value::Value as AnyValue;
use proctap::otlp::{log_record, ExportStats, Exporter, ExporterConfig, LogRecord, OtlpError, ProcessContext};
use proctap::testing::RecordWriter;
use proctap::{Argv, Comm, Config, Event, EventKind, Events, Exec, Exit, Fork, Lost, OomKill, Open, WallTime};
use serde_json::{json, Map, Value};

const TIMEOUT: Duration = Duration::from_secs(20);

// ---- mapping ----

/// A record's attributes as the receiver's JSON gives them.
fn attrs(record: &LogRecord) -> Map<String, Value> {
    record
        .attributes
        .iter()
        .map(|kv| (kv.key.clone(), json_of(kv.value.as_ref().and_then(|v| v.value.as_ref()))))
        .collect()
}

fn json_of(value: Option<&AnyValue>) -> Value {
    match value {
        Some(AnyValue::StringValue(s)) => json!(s),
        Some(AnyValue::IntValue(i)) => json!(i),
        Some(AnyValue::BoolValue(b)) => json!(b),
        Some(AnyValue::DoubleValue(d)) => json!(d),
        Some(AnyValue::ArrayValue(a)) => a.values.iter().map(|v| json_of(v.value.as_ref())).collect(),
        other => panic!("an attribute value of an unexpected type: {other:?}"),
    }
}

/// The event as the tracer would deliver it: encoded as the loader writes
/// records, decoded with a realtime offset.
fn delivered(event: Event, offset: i64) -> Event {
    let mut w = RecordWriter::new();
    w.push(&event);
    let decoded: Vec<Event> = Events::new(w.bytes(), offset).map(|e| e.to_owned_event()).collect();
    decoded.into_iter().next().expect("the record decodes")
}

const OFFSET: i64 = 1_700_000_000_000_000_000;

fn exec_event() -> Event {
    Event::Exec(Exec {
        ts_ns: 5_000,
        time: WallTime::default(),
        pid: 42,
        tid: 42,
        parent_start_ns: 0,
        proc_start_ns: 0,
        ppid: 7,
        uid: 1000,
        gid: 100,
        ns_pid: 3,
        cgroup_id: 99,
        comm: Comm::new(b"true"),
        code_start: 0,
        code_end: 0,
        exe_dev: 0,
        exe_ino: 0,
        argv_size: 0,
        filename: b"/usr/bin/true".to_vec(),
        argv: Argv(b"true\0marker-args\0\xff\0".to_vec()),
        filename_truncated: false,
        argv_truncated: true,
        argv_fault: false,
        data_lost: false,
    })
}

#[test]
fn an_exec_becomes_a_record_with_exactly_the_process_attributes() {
    let event = delivered(exec_event(), OFFSET);
    let context = ProcessContext {
        exec_id: Some("e-42"),
        parent_exec_id: Some("e-7"),
        container_id: Some("c0ffee"),
        pod_uid: Some("pod-1"),
        cgroup: Some("/kubepods/pod-1/c0ffee"),
    };
    let record = log_record(&event, &context).expect("exec is exported");
    assert_eq!(record.event_name, "proctap.exec");
    assert_eq!(record.time_unix_nano, 5_000 + OFFSET as u64);
    assert_eq!(record.observed_time_unix_nano, 0, "the exporter stamps it");
    assert_eq!(record.severity_text, "INFO");
    let expected = json!({
        "process.pid": 42, "process.parent_pid": 7, "process.vpid": 3, "thread.id": 42, "thread.name": "true",
        "process.user.id": 1000, "process.group.id": 100,
        "process.executable.path": "/usr/bin/true", "process.executable.name": "true",
        "process.command": "true", "process.command_args": ["true", "marker-args", "\u{fffd}"],
        "process.args_count": 3, "proctap.cgroup_id": 99, "proctap.exec.argv_truncated": true,
        "proctap.exec_id": "e-42", "proctap.parent_exec_id": "e-7", "container.id": "c0ffee",
        "k8s.pod.uid": "pod-1", "process.linux.cgroup": "/kubepods/pod-1/c0ffee",
    });
    assert_eq!(Value::Object(attrs(&record)), expected);
}

#[test]
fn an_exit_gives_its_code_signal_and_times() {
    let exit = Exit {
        ts_ns: 3_000_000_000,
        time: WallTime::default(),
        pid: 9,
        tid: 10,
        proc_start_ns: 0,
        ppid: 1,
        comm: Comm::new(b"sh"),
        exit_code: 0,
        signal: Some(9),
        core_dumped: true,
        start_ns: 1_000_000_000,
        duration_ns: 0,
        thread_exit: false,
    };
    let record = log_record(&delivered(Event::Exit(exit), 0), &ProcessContext::default()).unwrap();
    assert_eq!(record.event_name, "proctap.exit");
    assert_eq!(record.time_unix_nano, 3_000_000_000);
    let expected = json!({
        "process.pid": 9, "process.parent_pid": 1, "thread.id": 10, "thread.name": "sh",
        "process.exit.code": 0, "process.exit.time": "1970-01-01T00:00:03.000000000Z",
        "process.creation.time": "1970-01-01T00:00:01.000000000Z", "proctap.exit.duration_ns": 2_000_000_000u64,
        "proctap.exit.signal": 9, "proctap.exit.core_dumped": true,
    });
    assert_eq!(Value::Object(attrs(&record)), expected);
}

#[test]
fn fork_open_and_oom_kill_are_exported_and_other_kinds_are_not() {
    let fork = Event::Fork(Fork {
        ts_ns: 1,
        time: WallTime::default(),
        pid: 5,
        tid: 6,
        child_start_ns: 0,
        proc_start_ns: 0,
        ppid: 1,
        comm: Comm::new(b"make"),
        child_pid: 8,
        child_tid: 8,
        thread: false,
    });
    let open = Event::Open(Open {
        ts_ns: 1,
        time: WallTime::default(),
        pid: 5,
        tid: 5,
        proc_start_ns: 0,
        comm: Comm::new(b"cat"),
        dfd: -100,
        path: b"/etc/hosts".to_vec(),
        flags: 0,
        mode: 0,
        fd: None,
        errno: Some(2),
        path_truncated: false,
        data_lost: false,
    });
    let oom = Event::OomKill(OomKill {
        ts_ns: 1,
        time: WallTime::default(),
        pid: 5,
        proc_start_ns: 0,
        comm: Comm::new(b"hog"),
        cgroup_id: 3,
        total_vm_kb: 10,
        anon_rss_kb: 8,
        file_rss_kb: 1,
        oom_score_adj: 0,
        shmem_rss_kb: 0,
        memcg_id: 4,
        uid: 0,
        trigger_pid: 6,
        trigger_tid: 7,
        trigger_comm: Comm::new(b"alloc"),
    });
    let context = ProcessContext { container_id: Some("abc"), ..ProcessContext::default() };
    let get = |e: Event| log_record(&delivered(e, 0), &context).expect("exported");
    let f = get(fork);
    assert_eq!(f.event_name, "proctap.fork");
    assert_eq!(attrs(&f)["proctap.fork.child_pid"], json!(8));
    assert_eq!(attrs(&f)["container.id"], json!("abc"));
    let o = get(open);
    assert_eq!(o.event_name, "proctap.open");
    let oa = attrs(&o);
    assert_eq!((&oa["file.path"], &oa["proctap.open.errno"]), (&json!("/etc/hosts"), &json!(2)));
    assert!(!oa.contains_key("proctap.open.fd"), "a failed open has no fd");
    let k = get(oom);
    assert_eq!((k.event_name.as_str(), k.severity_text.as_str()), ("proctap.oom_kill", "WARN"));
    assert_eq!(attrs(&k)["proctap.oom.trigger_comm"], json!("alloc"));
    let lost: Event = Event::Lost(Lost { ts_ns: 1, time: WallTime::default(), kind: EventKind::Exec, records: 2 });
    assert!(log_record(&lost, &context).is_none());
}

// ---- the exporter against a tiny Rust server ----

/// An HTTP server on loopback that answers its requests with `statuses`
/// in turn (the last one from then on), each on its own connection;
/// counts the requests. Returns its base URL.
fn status_server(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if read_request(&mut stream).is_none() {
                continue;
            }
            let n = count.fetch_add(1, Ordering::SeqCst);
            let status = statuses[n.min(statuses.len() - 1)];
            let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, served)
}

/// Reads one request (headers, then Content-Length bytes of body).
fn read_request(stream: &mut std::net::TcpStream) -> Option<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()
}

fn fast(endpoint: &str) -> ExporterConfig {
    ExporterConfig {
        flush_interval: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
        shutdown_timeout: Duration::from_millis(500),
        ..ExporterConfig::new(endpoint)
    }
}

fn a_record(n: i64) -> LogRecord {
    let event = delivered(exec_event(), n);
    log_record(&event, &ProcessContext::default()).unwrap()
}

/// Polls the exporter's stats until `done` holds.
fn stats_until(exporter: &Exporter, done: impl Fn(&ExportStats) -> bool) -> ExportStats {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let stats = exporter.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_busy_receiver_is_retried_until_it_takes_the_records() {
    let (url, served) = status_server(vec![503, 503, 200]);
    let exporter = Exporter::start(fast(&url)).unwrap();
    for n in 0..5 {
        assert!(exporter.try_send(a_record(n)));
    }
    let stats = stats_until(&exporter, |s| s.sent_records == 5);
    assert_eq!((stats.sent_records, stats.retries, stats.requests), (5, 2, 3), "{stats:?}");
    assert!(stats.last_error.as_deref().is_some_and(|e| e.contains("503")), "{stats:?}");
    let stats = exporter.shutdown();
    assert_eq!((stats.enqueued, stats.queued, stats.rejected, stats.dropped_overflow), (5, 0, 0, 0));
    assert_eq!(served.load(Ordering::SeqCst), 3);
}

#[test]
fn a_refusal_drops_the_batch_and_counts_it_rejected() {
    let (url, _) = status_server(vec![400]);
    let exporter = Exporter::start(fast(&url)).unwrap();
    for n in 0..3 {
        exporter.try_send(a_record(n));
    }
    let stats = stats_until(&exporter, |s| s.rejected == 3);
    assert_eq!((stats.rejected, stats.retries, stats.sent_records, stats.queued), (3, 0, 0, 0), "{stats:?}");
    assert!(stats.last_error.as_deref().is_some_and(|e| e.contains("400")), "{stats:?}");
}

#[test]
fn a_full_queue_drops_and_counts_and_what_it_held_is_delivered_later() {
    // Three refusals take 150 ms or more of backoff: every later record
    // meets a full queue.
    let (url, _) = status_server(vec![503, 503, 503, 200]);
    let exporter = Exporter::start(ExporterConfig { queue_records: 4, ..fast(&url) }).unwrap();
    let accepted: Vec<bool> = (0..10).map(|n| exporter.try_send(a_record(n))).collect();
    assert_eq!(accepted, [[true; 4].as_slice(), &[false; 6]].concat());
    let stats = stats_until(&exporter, |s| s.sent_records == 4);
    assert_eq!((stats.enqueued, stats.dropped_overflow, stats.sent_records, stats.queued), (4, 6, 4, 0), "{stats:?}");
    assert!(exporter.try_send(a_record(11)), "room again once delivered");
}

#[test]
fn shutdown_gives_up_on_a_dead_receiver_within_its_bound_and_counts_the_rest() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again
    let exporter =
        Exporter::start(ExporterConfig { queue_records: 3, ..fast(&format!("http://127.0.0.1:{port}")) }).unwrap();
    for n in 0..5 {
        exporter.try_send(a_record(n));
    }
    stats_until(&exporter, |s| s.retries > 0);
    let started = Instant::now();
    let stats = exporter.shutdown();
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown took {:?}", started.elapsed());
    assert_eq!((stats.enqueued, stats.dropped_overflow, stats.dropped_at_shutdown, stats.sent_records), (3, 2, 3, 0));
    assert!(stats.last_error.is_some());
}

#[test]
fn config_mistakes_are_typed_errors() {
    let err = Exporter::start(ExporterConfig::new("localhost:4318")).err().expect("no scheme");
    assert!(matches!(err, OtlpError::InvalidEndpoint { .. }), "{err}");
    let slow = ExporterConfig { max_backoff: Duration::from_secs(3), ..ExporterConfig::new("http://x") };
    assert!(matches!(Exporter::start(slow), Err(OtlpError::InvalidConfig { field: "max_backoff", .. })));
    let empty = ExporterConfig { queue_records: 0, ..ExporterConfig::new("http://x") };
    assert!(matches!(Exporter::start(empty), Err(OtlpError::InvalidConfig { field: "queue_records", .. })));
}

// ---- real processes, the Python receiver ----

/// tests/fixtures/otlp_receiver.py, appending to `out`.
struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    fn start(port: u16, out: &Path) -> Receiver {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp_receiver.py");
        let mut child = Command::new("python3")
            .arg(fixture)
            .arg(port.to_string())
            .arg(out)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with the opentelemetry-proto package (./dev.sh test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.strip_prefix("PORT ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("the receiver did not start (is `python3 -m pip install opentelemetry-proto` done?): {line:?}")
        });
        Receiver { child, port }
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn output_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("proctap-otlp-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The records received so far whose process.pid is one of `pids`.
fn received(out: &Path, pids: &[u32]) -> Vec<Value> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    // A line the receiver is still writing is not read yet.
    let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    complete
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("the receiver writes JSON lines"))
        .filter(|r| r["attributes"]["process.pid"].as_u64().is_some_and(|p| pids.contains(&(p as u32))))
        .collect()
}

/// Waits until the exec and the exit of every pid arrived.
fn exec_and_exit_of(out: &Path, pids: &[u32]) -> Vec<Value> {
    let complete = |got: &[Value]| {
        pids.iter().all(|&pid| {
            ["proctap.exec", "proctap.exit"]
                .iter()
                .all(|name| got.iter().any(|r| r["event_name"] == *name && r["attributes"]["process.pid"] == pid))
        })
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let got = received(out, pids);
        if complete(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "no exec and exit of {pids:?} after {TIMEOUT:?}; got {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn one<'a>(records: &'a [Value], name: &str, pid: u32) -> &'a Value {
    let found: Vec<_> =
        records.iter().filter(|r| r["event_name"] == name && r["attributes"]["process.pid"] == pid).collect();
    assert_eq!(found.len(), 1, "{name} of {pid}: {records:?}");
    found[0]
}

fn run(program: &Path, args: &[&str]) -> u32 {
    let mut child = Command::new(program).args(args).spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Feeds every exported event of the tracer to the exporter until the
/// tracer stops, from a scoped thread; `body` runs meanwhile.
fn exporting<T>(tracer: proctap::Tracer, exporter: &Exporter, body: impl FnOnce() -> T) -> T {
    let events = tracer.events().clone();
    std::thread::scope(|s| {
        s.spawn(move || {
            for batch in events {
                for event in &batch {
                    if let Some(record) = log_record(&event, &ProcessContext::default()) {
                        exporter.try_send(record);
                    }
                }
            }
        });
        let result = body();
        tracer.stop().expect("the tracer stops");
        result
    })
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[test]
fn exec_and_exit_of_known_processes_arrive_with_their_attributes() {
    let Some(tracer) = common::start(&Config::new()) else { return };
    let out = output_file("known");
    let receiver = Receiver::start(0, &out);
    let exporter = Exporter::start(ExporterConfig {
        flush_interval: Duration::from_millis(100),
        ..ExporterConfig::new(format!("http://127.0.0.1:{}", receiver.port))
    })
    .unwrap();
    let begin = now_ns();
    let (truth, shell) = exporting(tracer, &exporter, || {
        let truth = run(Path::new("/bin/true"), &["marker-args"]);
        let shell = run(Path::new("/bin/sh"), &["-c", "exit 3"]);
        exec_and_exit_of(&out, &[truth, shell]);
        (truth, shell)
    });
    let got = received(&out, &[truth, shell]);
    let me = std::process::id();
    let exec = one(&got, "proctap.exec", truth);
    assert_eq!(exec["attributes"]["process.executable.path"], "/bin/true");
    assert_eq!(exec["attributes"]["process.command_args"], json!(["/bin/true", "marker-args"]));
    assert_eq!(exec["attributes"]["process.parent_pid"], me);
    assert_eq!(exec["resource"]["service.name"], "proctap");
    assert_eq!(exec["scope"], "proctap");
    let time = exec["time_unix_nano"].as_u64().unwrap();
    assert!(time >= begin - 1_000_000_000 && time <= now_ns(), "exec at {time}, test began at {begin}");
    assert!(exec["observed_time_unix_nano"].as_u64().unwrap() >= time);
    assert_eq!(one(&got, "proctap.exit", truth)["attributes"]["process.exit.code"], 0);
    let sh = one(&got, "proctap.exec", shell);
    assert_eq!(sh["attributes"]["process.executable.path"], "/bin/sh");
    assert_eq!(sh["attributes"]["process.command_args"], json!(["/bin/sh", "-c", "exit 3"]));
    assert_eq!(one(&got, "proctap.exit", shell)["attributes"]["process.exit.code"], 3);
    let stats = exporter.shutdown();
    assert_eq!((stats.rejected, stats.dropped_at_shutdown), (0, 0), "{stats:?}");
    let _ = std::fs::remove_file(out);
}

/// Only processes named ptotlp-NAME: exactly one exec and one exit each;
/// `name` is the test's own link to /bin/true.
fn markers(name: &str) -> (Config, PathBuf, PathBuf) {
    let name = format!("ptotlp-{name}");
    let (dir, link) = common::true_named(&name);
    (Config::new().comm_prefix(name), dir, link)
}

#[test]
fn events_from_while_the_receiver_was_down_arrive_once_it_is_back() {
    let (config, dir, mark) = markers("restart");
    let Some(tracer) = common::start(&config) else { return };
    let out = output_file("restart");
    let receiver = Receiver::start(0, &out);
    let port = receiver.port;
    let config =
        ExporterConfig { max_backoff: Duration::from_millis(200), ..fast(&format!("http://127.0.0.1:{port}")) };
    let exporter = Exporter::start(config).unwrap();
    let (before, down, after) = exporting(tracer, &exporter, || {
        let before = run(&mark, &["before"]);
        exec_and_exit_of(&out, &[before]);
        receiver.stop();
        let down: Vec<u32> = (0..3).map(|n| run(&mark, &[&format!("down-{n}")])).collect();
        let stats = stats_until(&exporter, |s| s.retries > 0);
        assert!(stats.retries > 0, "the exporter never found the receiver gone: {stats:?}");
        assert!(received(&out, &down).is_empty(), "nothing can arrive while the receiver is down");
        let _back = Receiver::start(port, &out);
        exec_and_exit_of(&out, &down);
        let after = run(&mark, &["after"]);
        exec_and_exit_of(&out, &[after]);
        (before, down, after)
    });
    let all: Vec<u32> = [before, after].into_iter().chain(down.iter().copied()).collect();
    assert_eq!(received(&out, &all).len(), 2 * all.len(), "each record once");
    let stats = exporter.shutdown();
    assert_eq!(
        (stats.sent_records, stats.dropped_overflow, stats.rejected, stats.dropped_at_shutdown),
        (10, 0, 0, 0),
        "{stats:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(out);
}

#[test]
fn with_the_receiver_down_a_tiny_queue_keeps_its_bound_and_delivers_what_it_kept() {
    let (config, dir, mark) = markers("bound");
    let Some(tracer) = common::start(&config) else { return };
    let out = output_file("bound");
    let port = Receiver::start(0, &out).stop();
    let config = ExporterConfig { queue_records: 4, ..fast(&format!("http://127.0.0.1:{port}")) };
    let exporter = Exporter::start(config).unwrap();
    let pids = exporting(tracer, &exporter, || {
        let pids: Vec<u32> = (0..5).map(|n| run(&mark, &[&format!("n{n}")])).collect();
        let stats = stats_until(&exporter, |s| s.enqueued + s.dropped_overflow == 10);
        assert_eq!((stats.enqueued, stats.dropped_overflow), (4, 6), "{stats:?}");
        let _back = Receiver::start(port, &out);
        let stats = stats_until(&exporter, |s| s.sent_records == 4);
        assert_eq!(stats.sent_records, 4, "{stats:?}");
        pids
    });
    assert_eq!(received(&out, &pids).len(), 4, "what the queue held, once each");
    let stats = exporter.shutdown();
    assert_eq!((stats.sent_records, stats.dropped_overflow, stats.queued), (4, 6, 0), "{stats:?}");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(out);
}
