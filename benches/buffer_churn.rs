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

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proctap::testing::{BatchPipe, Common, RecordWriter};
use proctap::{Event, Events};

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

/// A batch-sized run of exec+exit records, and its record count.
fn stream() -> (Vec<u8>, u32) {
    let mut w = RecordWriter::new();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..PAIRS {
        let nargs = 2 + (next() % 39) as usize;
        let mut argv = b"/usr/bin/program\0".to_vec();
        for a in 1..nargs {
            let len = 3 + (next() % 120) as usize;
            argv.extend(std::iter::repeat_n(b'a' + (a % 26) as u8, len));
            argv.push(0);
        }
        let c = Common { pid: 1000 + i, tid: 1000 + i, ts_ns: u64::from(i) * 1000, flags: 0 };
        w.exec(c, 1, 0, b"program", b"/usr/bin/program", &argv);
        w.exit(Common { ts_ns: c.ts_ns + 500, ..c }, 1, b"program", 0, c.ts_ns);
    }
    (w.bytes().to_vec(), w.records() as u32)
}

/// Touches what a consumer reads so nothing is optimized away.
fn consume<B: AsRef<[u8]>>(event: &Event<B>) -> u64 {
    match event {
        Event::Exec(e) => u64::from(e.pid) + e.argv.iter().map(|a| a.len() as u64).sum::<u64>(),
        Event::Exit(x) => u64::from(x.pid) + x.duration_ns,
        _ => 0,
    }
}

/// Steps over the records by their size field, decoding nothing.
fn walk(bytes: &[u8]) -> u64 {
    let mut n = 0;
    let mut rest = bytes;
    while rest.len() >= 48 {
        let size = u32::from_ne_bytes(rest[40..44].try_into().unwrap()) as usize;
        rest = &rest[size..];
        n += 1;
    }
    n
}

fn allocate_per_event(bytes: &[u8]) -> u64 {
    let mut sum = 0;
    let mut rest = bytes;
    while rest.len() >= 48 {
        let size = u32::from_ne_bytes(rest[40..44].try_into().unwrap()) as usize;
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

    let mut group = c.benchmark_group("buffer_churn");
    group.throughput(Throughput::Elements(u64::from(records)));
    group.bench_function("allocate_per_event", |b| b.iter(|| allocate_per_event(black_box(&bytes))));
    group.bench_function("pooled_buffers", |b| b.iter(|| pooled_buffers(&mut pool, black_box(&bytes))));
    group.bench_function("pooled_batches", |b| b.iter(|| pooled_batches(&pipe, black_box(&bytes), records)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
