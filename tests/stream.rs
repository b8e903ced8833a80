//! The async stream of batches (the `tokio` feature) on a current-thread
//! runtime: it never blocks the runtime's one thread, it ends after the
//! tracer stops, and batches filled after it was dropped are counted.

mod common;

use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use proctap::{Config, Event, EventKind};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `work` on a current-thread runtime of its own thread; fails the test
/// if it has not finished within TIMEOUT (a blocked runtime never returns).
fn on_current_thread_runtime<T: Send + 'static>(work: impl std::future::Future<Output = T> + Send + 'static) -> T {
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let _ = done_tx.send(rt.block_on(work));
    });
    done.recv_timeout(TIMEOUT + Duration::from_secs(10)).expect("the runtime's thread did not finish: blocked")
}

/// Starts a process named `name` and returns its pid once it has exited.
fn run_named(name: &str) -> u32 {
    let (dir, link) = common::true_named(name);
    let mut child = Command::new(&link).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(dir);
    pid
}

#[test]
fn batches_reach_a_task_while_another_task_of_the_same_thread_runs_and_the_stream_ends_at_stop() {
    let Some((tracer, mut stream)) = common::start_stream(&Config::new()) else { return };
    let (seen, started, ended) = on_current_thread_runtime(async move {
        // The process is started by another task of this one thread, which
        // runs only while the consumer below waits: a consumer that blocked
        // the thread would never see it.
        let producer = tokio::spawn(async {
            tokio::task::yield_now().await;
            run_named("ptstreamexec")
        });
        let seen = tokio::time::timeout(TIMEOUT, async {
            while let Some(batch) = stream.next_batch().await {
                let exec = batch.iter().find_map(|e| match e {
                    Event::Exec(x) if x.comm.as_bytes() == b"ptstreamexec" => Some(x.pid),
                    _ => None,
                });
                if exec.is_some() {
                    return exec;
                }
            }
            None
        })
        .await
        .expect("no exec of ptstreamexec within the timeout");
        let started = producer.await.unwrap();
        // Stopping joins the poll thread: off the runtime's thread.
        let stats = tokio::task::spawn_blocking(move || tracer.stop()).await.unwrap().unwrap();
        let ended = tokio::time::timeout(TIMEOUT, async { while stream.next_batch().await.is_some() {} }).await.is_ok();
        assert_eq!(stats.undelivered, 0, "{stats:?}");
        (seen, started, ended)
    });
    assert_eq!(seen, Some(started), "the exec seen is the process the other task started");
    assert!(ended, "the stream did not end after the tracer stopped");
}

#[test]
fn batches_filled_after_the_stream_is_dropped_are_counted_as_undelivered() {
    let Some((tracer, stream)) = common::start_stream(&Config::new()) else { return };
    drop(stream);
    let pids: Vec<u32> = (0..5).map(|_| run_named("ptstreamgone")).collect();
    // The stop's final drain takes every exec and exit of these processes
    // off the ring, into batches that find no stream.
    let stats = tracer.stop().unwrap();
    assert!(stats.kind(EventKind::Exit).delivered >= pids.len() as u64, "{stats:?}");
    let ours = 2 * pids.len() as u64; // an exec and an exit each
    assert!(stats.undelivered >= ours, "undelivered {} < {ours}: {stats:?}", stats.undelivered);
    assert_eq!(stats.lost(), stats.undelivered + stats.reserve_failures(), "{stats:?}");
}
