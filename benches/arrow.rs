//! Arrow conversion (the `arrow` feature): events per second from a batch
//! into column builders, then record batches (`Tables::push` for every
//! event, `Tables::finish` once per batch).
//!
//! * exec_argv: exec events with 2-40 arguments and 30-3000 bytes of argv
//!   (argv is a List<Binary>: one element per argument).
//! * mix: exec, exit, open, stdout write (64-4096 bytes), stack sample
//!   (5-30 frames each side) and connection open (enums, addresses), in
//!   turn.
//!
//! Criterion reports events/s; each case also prints the allocations per
//! event of a steady-state round: the record batches' own structures, once
//! per batch (the builders keep the room of the previous batch, so their
//! buffers are allocated once per batch and never regrow).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proctap::arrow::Tables;
use proctap::testing::{BatchPipe, RecordWriter};
use proctap::{
    Argv, Batch, Comm, ConnOpen, ConnOpenFamily, ConnOpenProtocol, ConnOpenRole, Event, Exec, Exit, KernelStack, Open,
    StackSample, UserStack, WallTime, Write,
};

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

/// Events per batch.
const EVENTS: u32 = 4096;

fn rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

fn argv(next: &mut dyn FnMut() -> u64) -> Vec<u8> {
    let mut argv = b"/usr/bin/program\0".to_vec();
    for a in 1..2 + next() % 39 {
        argv.extend(std::iter::repeat_n(b'a' + (a % 26) as u8, 3 + (next() % 120) as usize));
        argv.push(0);
    }
    argv
}

fn exec(i: u32, next: &mut dyn FnMut() -> u64) -> Event {
    let argv = argv(next);
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
        code_start: 0x5555_0000_0000,
        code_end: 0x5555_0001_0000,
        exe_dev: 65024,
        exe_ino: 4242,
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

fn open(i: u32) -> Event {
    Event::Open(Open {
        ts_ns: u64::from(i) * 1000,
        time: WallTime::default(),
        pid: 1000 + i,
        tid: 1000 + i,
        proc_start_ns: 0,
        comm: Comm::new(b"program"),
        dfd: -100,
        path: b"/etc/ld.so.cache".to_vec(),
        flags: 0o2000000,
        mode: 0,
        fd: Some(3),
        errno: None,
        path_truncated: false,
        data_lost: false,
    })
}

fn write(i: u32, next: &mut dyn FnMut() -> u64) -> Event {
    let len = 64 + next() % 4033;
    Event::Write(Write {
        ts_ns: u64::from(i) * 1000,
        time: WallTime::default(),
        pid: 1000 + i,
        tid: 1000 + i,
        proc_start_ns: 0,
        comm: Comm::new(b"program"),
        fd: 1,
        len,
        offset: u64::from(i) * 4096,
        data: vec![b'x'; len as usize],
        truncated: false,
        data_lost: false,
    })
}

fn sample(i: u32, frames: u64) -> Event {
    let stack = |base: u64| (0..frames).flat_map(|f| (base + f * 64).to_ne_bytes()).collect::<Vec<u8>>();
    Event::Sample(StackSample {
        ts_ns: u64::from(i) * 1000,
        time: WallTime::default(),
        pid: 1000 + i,
        tid: 1000 + i,
        proc_start_ns: 0,
        cpu: 1,
        comm: Comm::new(b"program"),
        cgroup_id: 1,
        kernel_stack_error: None,
        user_stack_error: None,
        kernel_stack: KernelStack(stack(0xffff_ffff_8100_0000)),
        user_stack: UserStack(stack(0x5555_0000_1000)),
        user_ip: 0,
        user_sp: 0,
        user_bp: 0,
        user_stack_copy: Vec::new(),
        kernel_mode: false,
        data_lost: false,
    })
}

fn conn_open(i: u32) -> Event {
    let v4 = i.is_multiple_of(2);
    let remote: SocketAddr = if v4 { "10.1.2.3:443".parse() } else { "[2001:db8::7]:8080".parse() }.unwrap();
    Event::ConnOpen(ConnOpen {
        ts_ns: u64::from(i) * 1000,
        time: WallTime::default(),
        pid: 1000 + i,
        tid: 1000 + i,
        proc_start_ns: 0,
        comm: Comm::new(b"program"),
        fd: 5,
        conn_id: u64::from(i),
        role: ConnOpenRole::Client,
        protocol: ConnOpenProtocol::Tcp,
        family: if v4 { ConnOpenFamily::Ipv4 } else { ConnOpenFamily::Ipv6 },
        local: Some("127.0.0.1:40000".parse().unwrap()),
        remote: Some(remote),
    })
}

/// A batch-sized run of records from `event(i, rng)`.
fn stream(mut event: impl FnMut(u32, &mut dyn FnMut() -> u64) -> Event) -> (Vec<u8>, u32) {
    let mut w = RecordWriter::new();
    let mut next = rng(0x9e3779b97f4a7c15);
    for i in 0..EVENTS {
        w.push(&event(i, &mut next));
    }
    (w.bytes().to_vec(), w.records() as u32)
}

fn mixed(i: u32, next: &mut dyn FnMut() -> u64) -> Event {
    match i % 6 {
        0 => exec(i, next),
        1 => exit(i),
        2 => open(i),
        3 => write(i, next),
        4 => sample(i, 5 + next() % 26),
        _ => conn_open(i),
    }
}

/// Every event of the batch into the tables, then their record batches.
fn convert(tables: &mut Tables, batch: &Batch) -> usize {
    tables.push_batch(batch);
    tables.finish().expect("conversion").iter().map(|(_, b)| b.num_rows()).sum()
}

fn bench_case(c: &mut Criterion, name: &str, (bytes, records): (Vec<u8>, u32)) {
    let pipe = BatchPipe::new(2, bytes.len());
    pipe.send(&bytes, records);
    let batch = pipe.events().recv().unwrap();
    let mut tables = Tables::new();
    convert(&mut tables, &batch);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(convert(&mut tables, &batch), records as usize);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!("arrow/{name}: {:.3} allocations per event", allocations as f64 / f64::from(records));

    let mut group = c.benchmark_group("arrow");
    group.throughput(Throughput::Elements(u64::from(records)));
    group.bench_function(name, |b| b.iter(|| black_box(convert(&mut tables, black_box(&batch)))));
    group.finish();
}

fn arrow(c: &mut Criterion) {
    bench_case(c, "exec_argv", stream(exec));
    bench_case(c, "mix", stream(mixed));
}

criterion_group!(benches, arrow);
criterion_main!(benches);
