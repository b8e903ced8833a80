//! Test helper: starts THREADS threads (default 16), then exits with code 5
//! from the main thread, so the kernel ends every thread in parallel
//! (exit_group). proctap must report exactly one process exit for it.
//!
//!     cargo run --release --example exit_group -- [THREADS]

use std::sync::{Arc, Barrier};

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let started = Arc::new(Barrier::new(threads + 1));
    for _ in 0..threads {
        let started = started.clone();
        std::thread::spawn(move || {
            started.wait();
            loop {
                std::thread::park();
            }
        });
    }
    started.wait();
    std::process::exit(5);
}
