//! Buffer churn: the cost of getting decoded events to a consumer.
//!
//! * allocate_per_event: each record copied into its own Vec and decoded
//!   into an owned Event (the allocate-per-event design).
//! * pooled_buffers: records copied into a recycled buffer, decoded as
//!   borrowed views.
//! * pooled_batches: the tracer's real path: a pooled buffer filled, sent
//!   through the channel as a Batch, iterated, dropped back to the pool.
//!
//! The stream is realistic: exec records with 2-40 arguments and 30-3000
//! bytes of argv, each followed by an exit record. Criterion reports
//! events/s; allocations per event are counted and printed for each path.
//!
//! The decode group isolates the decoder on the same stream: walking the
//! records only (headers, no field decoding), decoding every event, and
//! decoding plus splitting every argv into arguments.
//!
//! The routing group is a consumer of one kind (stack samples) in a stream
//! that also carries exec and exit events: with mixed batches it walks every
//! record to find the samples; with per-kind batches
//! (`Config::per_kind_batches`) it skips the other kinds' batches unread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proctap::testing::{BatchPipe, RecordWriter};
use proctap::{Argv, Comm, Event, EventKind, Events, Exec, Exit, KernelStack, StackSample, UserStack, WallTime};

struct CountingAlloc;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const PAIRS: u32 = 2048;

fn rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

fn exec(i: u32, argv: Vec<u8>) -> Event {
    Event::Exec(Exec {
        ts_ns: u64::from(i) * 1000,
        time: WallTime::default(),
        pid: 1000 + i,
        tid: 1000 + i,
        parent_start_ns: 0,
        proc_start_ns: 0,
        ppid: 1,
        uid: 0,
        gid: 0,
        ns_pid: 1000 + i,
        cgroup_id: 1,
        comm: Comm::new(b"program"),
        code_start: 0,
        code_end: 0,
        exe_dev: 0,
        exe_ino: 0,
        argv_size: argv.len() as u32,
        filename: b"/usr/bin/program".to_vec(),
        argv: Argv(argv),
        filename_truncated: false,
        argv_truncated: false,
        argv_fault: false,
        data_lost: false,
    })
}

fn exit(i: u32) -> Event {
    Event::Exit(Exit {
        ts_ns: u64::from(i) * 1000 + 500,
        time: WallTime::default(),
        pid: 1000 + i,
        tid: 1000 + i,
        proc_start_ns: 0,
        ppid: 1,
        comm: Comm::new(b"program"),
        exit_code: 0,
        signal: None,
        core_dumped: false,
        start_ns: u64::from(i) * 1000,
        duration_ns: 500,
        thread_exit: false,
    })
}

/// A sample with `frames` kernel and user frames.
fn sample(i: u32, frames: usize) -> Event {
    let user: Vec<u8> = (0..frames as u64).flat_map(|f| (0x5555_0000_1000 + f * 64).to_ne_bytes()).collect();
    Event::Sample(StackSample {
        ts_ns: u64::from(i) * 1000 + 250,
        time: WallTime::default(),
        pid: 1000 + i,
        tid: 1000 + i,
        proc_start_ns: 0,
        cpu: 0,
        comm: Comm::new(b"program"),
        cgroup_id: 1,
        kernel_stack_error: None,
        user_stack_error: None,
        kernel_stack: KernelStack((0..frames as u64).flat_map(|f| (0xffff_ffff_8100_0000 + f).to_ne_bytes()).collect()),
        user_stack: UserStack(user),
        user_ip: 0,
        user_sp: 0,
        user_bp: 0,
        user_stack_copy: Vec::new(),
        kernel_mode: false,
        data_lost: false,
    })
}

fn argv(next: &mut impl FnMut() -> u64) -> Vec<u8> {
    let nargs = 2 + (next() % 39) as usize;
    let mut argv = b"/usr/bin/program\0".to_vec();
    for a in 1..nargs {
        let len = 3 + (next() % 120) as usize;
        argv.extend(std::iter::repeat_n(b'a' + (a % 26) as u8, len));
        argv.push(0);
    }
    argv
}

/// A batch-sized run of exec+exit records, and its record count.
fn stream() -> (Vec<u8>, u32) {
    let mut w = RecordWriter::new();
    let mut next = rng(0x9e3779b97f4a7c15);
    for i in 0..PAIRS {
        w.push(&exec(i, argv(&mut next)));
        w.push(&exit(i));
    }
    (w.bytes().to_vec(), w.records() as u32)
}

/// A run of records: bytes, record count, and the kind of them all.
type Run = (Vec<u8>, u32, EventKind);

/// The routing stream: exec, sample, exit for each of PAIRS processes, as
/// one mixed run, and as one run per kind. Returns (mixed, per kind, samples).
fn routed_streams() -> ((Vec<u8>, u32), Vec<Run>, u32) {
    let mut next = rng(0x2545f4914f6cdd1d);
    let (mut mixed, mut execs, mut samples, mut exits) =
        (RecordWriter::new(), RecordWriter::new(), RecordWriter::new(), RecordWriter::new());
    for i in 0..PAIRS {
        let (e, s, x) = (exec(i, argv(&mut next)), sample(i, 5 + (next() % 25) as usize), exit(i));
        mixed.push(&e).push(&s).push(&x);
        execs.push(&e);
        samples.push(&s);
        exits.push(&x);
    }
    let run = |w: &RecordWriter, kind| (w.bytes().to_vec(), w.records() as u32, kind);
    let per_kind = vec![run(&execs, EventKind::Exec), run(&samples, EventKind::Sample), run(&exits, EventKind::Exit)];
    ((mixed.bytes().to_vec(), mixed.records() as u32), per_kind, PAIRS)
}

/// What a profiler reads of a sample.
fn consume_sample<B: AsRef<[u8]>>(event: &Event<B>) -> u64 {
    match event {
        Event::Sample(s) => s.kernel_stack.iter().sum::<u64>() + s.user_stack.len() as u64,
        _ => 0,
    }
}

/// A consumer of samples over mixed batches: it walks every record.
fn samples_from_mixed(pipe: &BatchPipe, bytes: &[u8], records: u32) -> u64 {
    pipe.send(bytes, records);
    let batch = pipe.events().recv().unwrap();
    let sum = batch.iter().map(|e| consume_sample(&e)).sum();
    drop(batch);
    sum
}

/// The same over per-kind batches: other kinds' batches are dropped unread.
fn samples_from_per_kind(pipe: &BatchPipe, runs: &[Run]) -> u64 {
    let mut sum = 0;
    for (bytes, records, kind) in runs {
        pipe.send_kind(bytes, *records, *kind);
        let batch = pipe.events().recv().unwrap();
        if batch.kind() == Some(EventKind::Sample) {
            sum += batch.iter().map(|e| consume_sample(&e)).sum::<u64>();
        }
    }
    sum
}

/// Touches what a consumer reads so nothing is optimized away.
fn consume<B: AsRef<[u8]>>(event: &Event<B>) -> u64 {
    match event {
        Event::Exec(e) => u64::from(e.pid) + e.argv.iter().map(|a| a.len() as u64).sum::<u64>(),
        Event::Exit(x) => u64::from(x.pid) + x.duration_ns,
        _ => 0,
    }
}

/// struct pt_hdr: its size, and where its rec_size field is.
const HDR_SIZE: usize = 56;
const REC_SIZE_AT: usize = 48;

fn rec_size(record: &[u8]) -> usize {
    u32::from_ne_bytes(record[REC_SIZE_AT..REC_SIZE_AT + 4].try_into().unwrap()) as usize
}

/// Steps over the records by their size field, decoding nothing.
fn walk(bytes: &[u8]) -> u64 {
    let mut n = 0;
    let mut rest = bytes;
    while rest.len() >= HDR_SIZE {
        let size = rec_size(rest);
        rest = &rest[size..];
        n += 1;
    }
    n
}

fn allocate_per_event(bytes: &[u8]) -> u64 {
    let mut sum = 0;
    let mut rest = bytes;
    while rest.len() >= HDR_SIZE {
        let size = rec_size(rest);
        let record = rest[..size].to_vec(); // one buffer per event
        for event in Events::new(&record, 0) {
            sum += consume(&event.to_owned_event());
        }
        rest = &rest[size..];
    }
    sum
}

fn pooled_buffers(pool: &mut Vec<Vec<u8>>, bytes: &[u8]) -> u64 {
    let mut buf = pool.pop().unwrap_or_default();
    buf.clear();
    buf.extend_from_slice(bytes); // capacity kept from earlier rounds
    let sum = Events::new(&buf, 0).map(|e| consume(&e)).sum();
    pool.push(buf);
    sum
}

fn pooled_batches(pipe: &BatchPipe, bytes: &[u8], records: u32) -> u64 {
    pipe.send(bytes, records);
    let batch = pipe.events().recv().unwrap();
    let sum = batch.iter().map(|e| consume(&e)).sum();
    drop(batch); // back to the pool
    sum
}

fn allocations_per_event(records: u32, mut run: impl FnMut() -> u64) -> f64 {
    black_box(run()); // warm: pools filled
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..10 {
        black_box(run());
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / (10.0 * f64::from(records))
}

fn bench(c: &mut Criterion) {
    let (bytes, records) = stream();
    let mut pool = Vec::new();
    let pipe = BatchPipe::new(4, bytes.len());

    eprintln!(
        "allocations per event: allocate_per_event {:.2}, pooled_buffers {:.2}, pooled_batches {:.4}",
        allocations_per_event(records, || allocate_per_event(&bytes)),
        allocations_per_event(records, || pooled_buffers(&mut pool, &bytes)),
        allocations_per_event(records, || pooled_batches(&pipe, &bytes, records)),
    );

    eprintln!(
        "allocations per event: decode_events {:.4}, decode_and_split_argv {:.4}",
        allocations_per_event(records, || Events::new(&bytes, 0).count() as u64),
        allocations_per_event(records, || Events::new(&bytes, 0).map(|e| consume(&e)).sum()),
    );
    let mut decode = c.benchmark_group("decode");
    decode.throughput(Throughput::Elements(u64::from(records)));
    decode.bench_function("walk_records", |b| b.iter(|| walk(black_box(&bytes))));
    decode.bench_function("decode_events", |b| b.iter(|| Events::new(black_box(&bytes), 0).count()));
    decode.bench_function("decode_and_split_argv", |b| {
        b.iter(|| Events::new(black_box(&bytes), 0).map(|e| consume(&e)).sum::<u64>())
    });
    decode.finish();

    let ((mixed, mixed_records), per_kind, samples) = routed_streams();
    let routing_pipe = BatchPipe::new(4, mixed.len());
    assert_eq!(
        samples_from_mixed(&routing_pipe, &mixed, mixed_records),
        samples_from_per_kind(&routing_pipe, &per_kind),
        "both consumers read the same samples"
    );
    let mut routing = c.benchmark_group("routing");
    routing.throughput(Throughput::Elements(u64::from(samples)));
    routing.bench_function("samples_from_mixed_batches", |b| {
        b.iter(|| samples_from_mixed(&routing_pipe, black_box(&mixed), mixed_records))
    });
    routing.bench_function("samples_from_per_kind_batches", |b| {
        b.iter(|| samples_from_per_kind(&routing_pipe, black_box(&per_kind)))
    });
    routing.finish();

    let mut group = c.benchmark_group("buffer_churn");
    group.throughput(Throughput::Elements(u64::from(records)));
    group.bench_function("allocate_per_event", |b| b.iter(|| allocate_per_event(black_box(&bytes))));
    group.bench_function("pooled_buffers", |b| b.iter(|| pooled_buffers(&mut pool, black_box(&bytes))));
    group.bench_function("pooled_batches", |b| b.iter(|| pooled_batches(&pipe, black_box(&bytes), records)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
