//! The `arrow` feature: events as Arrow tables hold what their JSON holds.
//!
//! Without a kernel: the columns of known events, typed as the module docs
//! say; any generated event's row equals its JSON object; IPC files of
//! generated events that pyarrow reads back equal to their JSON lines
//! (tests/fixtures/arrow_check.py); the directory's rules. With a kernel: the
//! same check on the files of a real traced run.

mod common;

#[path = "arrow/rows.rs"]
mod rows;
#[path = "json/strategies.rs"]
mod strategies;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use proctap::arrow::arrow_array::cast::AsArray;
use proctap::arrow::arrow_array::types::{UInt32Type, UInt8Type};
use proctap::arrow::arrow_array::{Array, RecordBatch};
use proctap::arrow::arrow_schema::{DataType, TimeUnit};
use proctap::arrow::{record_batches, IpcDir, Tables, JSON_METADATA, TYPE_METADATA};
use proctap::testing::{BatchPipe, RecordWriter};
use proctap::{Argv, Batch, Comm, Config, Event, EventKind, Events, Exec, Exit, Lost, WallTime};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// A batch holding these events, as a tracer hands it over.
fn batch_of(events: &[Event]) -> Batch {
    let mut w = RecordWriter::new();
    for event in events {
        w.push(event);
    }
    let pipe = BatchPipe::new(1, w.bytes().len().max(64));
    pipe.send(w.bytes(), w.records() as u32);
    pipe.events().try_recv().expect("the pipe sends the batch")
}

fn exec() -> Event {
    Event::Exec(Exec {
        ts_ns: 5_000_000_123,
        time: WallTime::default(),
        pid: 42,
        tid: 43,
        parent_start_ns: 0,
        proc_start_ns: 0,
        ppid: 1,
        uid: 1000,
        gid: 100,
        ns_pid: 42,
        cgroup_id: 7,
        comm: Comm::new(b"sh\xff"),
        code_start: 0x1000,
        code_end: 0x2000,
        exe_dev: 65024,
        exe_ino: 99,
        argv_size: 14,
        filename: b"/bin/sh".to_vec(),
        argv: Argv(b"sh\0-c\0\xfe\0exit 3\0".to_vec()),
        filename_truncated: false,
        argv_truncated: true,
        argv_fault: false,
        data_lost: false,
    })
}

fn exit(signal: Option<u8>) -> Event {
    Event::Exit(Exit {
        ts_ns: 9_000_000_000,
        time: WallTime::default(),
        pid: 42,
        tid: 42,
        proc_start_ns: 0,
        ppid: 1,
        comm: Comm::new(b"sh"),
        exit_code: if signal.is_some() { 0 } else { 3 },
        signal,
        core_dumped: signal.is_some(),
        start_ns: 5_000_000_000,
        duration_ns: 0,
        thread_exit: false,
    })
}

fn table(batches: &[(EventKind, RecordBatch)], kind: EventKind) -> &RecordBatch {
    &batches.iter().find(|(k, _)| *k == kind).unwrap_or_else(|| panic!("no {kind} table")).1
}

#[test]
fn exec_columns_are_typed_and_hold_the_event() {
    let batch = batch_of(&[exec(), exit(None), exec()]);
    let batches = record_batches(&batch).unwrap();
    assert_eq!(batches.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [EventKind::Exec, EventKind::Exit]);
    let exec = table(&batches, EventKind::Exec);
    assert_eq!(exec.num_rows(), 2);
    let schema = exec.schema();
    assert_eq!(schema.metadata()[TYPE_METADATA], "exec");
    let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(ty("pid"), DataType::UInt32);
    assert_eq!(ty("time"), DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())));
    assert_eq!(ty("comm"), DataType::Binary);
    assert!(matches!(ty("argv"), DataType::List(item) if item.data_type() == &DataType::Binary));
    assert_eq!(ty("argv_truncated"), DataType::Boolean);
    // argv_size: not in JSON, kept and marked; filename_truncated: only when set.
    assert_eq!(schema.field_with_name("argv_size").unwrap().metadata()[JSON_METADATA], "hidden");
    assert_eq!(schema.field_with_name("filename_truncated").unwrap().metadata()[JSON_METADATA], "if_set");

    let column = |name: &str| exec.column(schema.index_of(name).unwrap()).clone();
    assert_eq!(column("pid").as_primitive::<UInt32Type>().value(1), 42);
    assert_eq!(column("comm").as_binary::<i32>().value(0), b"sh\xff");
    let argv = column("argv");
    let args = argv.as_list::<i32>().value(0);
    let args: Vec<&[u8]> = args.as_binary::<i32>().iter().map(Option::unwrap).collect();
    assert_eq!(args, [&b"sh"[..], b"-c", b"\xfe", b"exit 3"]);
    assert!(column("argv_truncated").as_boolean().value(0));
}

#[test]
fn exit_status_and_loss_reports_have_their_json_columns() {
    let lost = Event::Lost(Lost { ts_ns: 1, time: WallTime::default(), kind: EventKind::Open, records: 9 });
    let batches = record_batches(&batch_of(&[exit(Some(11)), exit(None), lost])).unwrap();
    let exit = table(&batches, EventKind::Exit);
    let column = |name: &str| exit.column(exit.schema().index_of(name).unwrap()).clone();
    let signal = column("signal");
    let signal = signal.as_primitive::<UInt8Type>();
    assert_eq!((signal.value(0), signal.is_null(1)), (11, true));
    let raw = column("exit_status");
    assert_eq!(raw.as_primitive::<UInt32Type>().values(), &[11 | 0x80, 3 << 8]);
    assert!(column("core_dumped").as_boolean().value(0));
    assert_eq!(rows::row_json(exit, 1)["duration_ns"], 4_000_000_000u64);

    let lost = table(&batches, EventKind::Lost);
    assert_eq!(
        rows::row_json(lost, 0),
        serde_json::json!({"ts_ns": 1, "time": "1970-01-01T00:00:00.000000001Z", "kind": "open", "records": 9})
    );
    let kinds = lost.column(2).as_dictionary::<UInt8Type>().values().as_string::<i32>().len();
    assert_eq!(kinds, EventKind::ALL.len(), "the dictionary is every kind's name");
}

/// Each kind's rows against the JSON of its events, in order.
fn assert_rows_are_json(events: &[Event], tables: &[(EventKind, RecordBatch)]) -> Result<(), TestCaseError> {
    for (kind, batch) in tables {
        let want: Vec<&Event> = events.iter().filter(|e| e.kind() == *kind).collect();
        prop_assert_eq!(batch.num_rows(), want.len(), "rows of {}", kind);
        for (row, event) in want.iter().enumerate() {
            let json = rows::comparable(serde_json::to_value(event).unwrap());
            prop_assert_eq!(rows::row_json(batch, row), json, "{} row {}", kind, row);
        }
    }
    prop_assert_eq!(tables.iter().map(|(_, b)| b.num_rows()).sum::<usize>(), events.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_event_converts_and_its_row_is_its_json(
        events in proptest::collection::vec(strategies::event(), 1..8),
        offset in any::<i64>(),
    ) {
        let mut w = RecordWriter::new();
        for event in &events {
            w.push(event);
        }
        let decoded: Vec<Event> = Events::new(w.bytes(), offset).map(|e| e.to_owned_event()).collect();
        let mut tables = Tables::new();
        for event in Events::new(w.bytes(), offset) {
            tables.push(&event);
        }
        assert_rows_are_json(&decoded, &tables.finish().unwrap())?;
        prop_assert!(tables.finish().unwrap().is_empty(), "finish starts the tables over");
    }
}

/// python3 with pyarrow, or a reason to skip (a failure under CI=true).
fn pyarrow() -> bool {
    let ok = Command::new("python3").args(["-c", "import pyarrow"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        let why = "python3 with pyarrow is needed (python3 -m pip install pyarrow; ./dev.sh test installs it)";
        assert!(!common::tools::ci(), "CI=true: {why}");
        eprintln!("SKIPPED: {why}");
    }
    ok
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proctap-arrow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Writes the batches' events into DIR/ipc (IPC files) and DIR/events.json
/// (their JSON lines), then has pyarrow compare them.
fn write_and_check(dir: &Path, batches: &[Batch], rows_per_batch: usize) {
    let mut ipc = IpcDir::create(dir.join("ipc")).unwrap().rows_per_batch(rows_per_batch);
    let mut json = std::io::BufWriter::new(std::fs::File::create(dir.join("events.json")).unwrap());
    for batch in batches {
        ipc.write(batch).unwrap();
        for event in batch {
            serde_json::to_writer(&mut json, &event).unwrap();
            json.write_all(b"\n").unwrap();
        }
    }
    json.flush().unwrap();
    assert!(!ipc.finish().unwrap().is_empty(), "files were written");
    let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arrow_check.py");
    let out = Command::new("python3").arg(check).arg(dir.join("ipc")).arg(dir.join("events.json")).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "arrow_check.py found mismatches:\n{stderr}{stdout}");
    eprintln!("{stdout}");
}

#[test]
fn pyarrow_reads_the_files_of_generated_events_as_their_json() {
    if !pyarrow() {
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = strategies::event();
    let events: Vec<Event> = (0..600).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect();
    let batches: Vec<Batch> = events.chunks(50).map(batch_of).collect();
    let dir = scratch("generated");
    // Small record batches: many per file, the dictionaries repeated.
    write_and_check(&dir, &batches, 16);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_directory_with_an_earlier_trace_is_refused_and_dropping_finishes_files() {
    let dir = scratch("rules");
    let mut ipc = IpcDir::create(&dir).unwrap();
    ipc.write(&batch_of(&[exec()])).unwrap();
    assert!(ipc.path(EventKind::Exec).exists(), "created at the first exec");
    assert!(!ipc.path(EventKind::Exit).exists(), "no exit yet: no file");
    drop(ipc);
    let file = std::fs::read(dir.join("exec.arrow")).unwrap();
    assert!(file.starts_with(b"ARROW1") && file.ends_with(b"ARROW1"), "dropping wrote the footer");
    let err = IpcDir::create(&dir).err().expect("exec.arrow is there");
    assert!(err.to_string().contains("exec.arrow exists") && err.to_string().contains("remove it"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pyarrow_reads_the_files_of_a_traced_run_as_their_json() {
    let config = Config::new().comm_prefix("ptarrow").event(EventKind::Fork, true).event(EventKind::Open, true);
    let Some(tracer) = common::start(&config) else { return };
    if !pyarrow() {
        return;
    }
    let (dir, sh) = common::true_named("ptarrow-sh");
    std::fs::remove_file(&sh).unwrap();
    std::os::unix::fs::symlink("/bin/sh", &sh).unwrap();
    // Opens a file, forks a subshell, and exits 3: exec, open, fork, exit.
    let status = Command::new(&sh).args(["-c", "exec 3</etc/hostname; (exit 0); exit 3"]).status().unwrap();
    assert_eq!(status.code(), Some(3));
    let mut batches = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Ok(batch) = tracer.events().recv_timeout(Duration::from_millis(100)) else { continue };
        let done = batch.iter().any(|e| matches!(e, Event::Exit(x) if x.exit_code == 3));
        batches.push(batch);
        if done {
            break;
        }
    }
    let kinds: Vec<EventKind> = batches.iter().flat_map(|b| b.iter().map(|e| e.kind())).collect();
    for kind in [EventKind::Exec, EventKind::Open, EventKind::Fork, EventKind::Exit] {
        assert!(kinds.contains(&kind), "no {kind} event of the run: {kinds:?}");
    }
    let files = scratch("traced");
    write_and_check(&files, &batches, 4);
    drop(batches);
    tracer.stop().unwrap();
    let _ = std::fs::remove_dir_all(files);
    let _ = std::fs::remove_dir_all(dir);
}
