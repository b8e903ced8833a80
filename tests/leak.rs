//! After a tracer is dropped nothing of proctap stays in the kernel.
//! Its own test binary: no other tracer runs while it looks.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use proctap::Config;

fn bpftool(args: &[&str]) -> (bool, String) {
    let tool = ["/usr/sbin/bpftool", "/usr/bin/bpftool", "bpftool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("bpftool");
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("running bpftool: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn dropping_the_tracer_leaves_no_program_link_or_map() {
    let Some(tracer) = common::start(&Config::new()) else { return };
    let ids = tracer.prog_ids();
    assert_eq!(ids.len(), 2, "exec and exit programs");
    for id in &ids {
        let (ok, out) = bpftool(&["prog", "show", "id", &id.to_string()]);
        assert!(ok && (out.contains("pt_exec") || out.contains("pt_exit")), "program {id} is loaded: {out}");
    }
    let (_, links) = bpftool(&["link", "list"]);
    for id in &ids {
        assert!(links.contains(&format!("prog {id}")), "program {id} is attached:\n{links}");
    }

    drop(tracer);

    // The kernel frees closed tracing programs after an RCU grace period,
    // so allow a few seconds before calling anything a leak.
    let deadline = Instant::now() + Duration::from_secs(5);
    let leftovers = loop {
        let mut left = Vec::new();
        for id in &ids {
            let (ok, out) = bpftool(&["prog", "show", "id", &id.to_string()]);
            if ok {
                left.push(format!("program {id}: {out}"));
            }
        }
        let (_, links) = bpftool(&["link", "list"]);
        left.extend(ids.iter().filter(|id| links.contains(&format!("prog {id}"))).map(|id| format!("link to {id}")));
        let (_, progs) = bpftool(&["prog", "list"]);
        if progs.contains("pt_exec") || progs.contains("pt_exit") {
            left.push(format!("programs by name:\n{progs}"));
        }
        let (_, maps) = bpftool(&["map", "list"]);
        for name in ["pt_meta", "pt_ctl", "pt_data", "pt_pids"] {
            if maps.contains(&format!("name {name} ")) {
                left.push(format!("map {name}"));
            }
        }
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(leftovers.is_empty(), "left in the kernel after drop: {leftovers:#?}");
}
