//! `dump --containers` with real cgroups named as docker, containerd
//! (Kubernetes), CRI-O and podman name theirs: each exec carries its
//! cgroup's path, container id and pod UID; kinds without a cgroup id get
//! no such fields.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::cgroup::V2Cgroup;
use common::tools::{dump_while, dumpers, Dump};

const ID: [&str; 5] = [
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "1111111111111111111111111111111111111111111111111111111111111111",
    "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a",
    "3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b",
    "4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c",
];
const UID: [&str; 2] = ["11112222-3333-4444-5555-666677778888", "aaaabbbb-cccc-dddd-eeee-ffff00001111"];

/// A chain of cgroups below `top`, made one level at a time; the leaf last.
fn chain(top: &V2Cgroup, levels: &[String]) -> Vec<V2Cgroup> {
    let mut made: Vec<V2Cgroup> = Vec::new();
    for level in levels {
        let next = made.last().unwrap_or(top).child(level);
        made.push(next);
    }
    made
}

#[test]
fn execs_in_runtime_named_cgroups_carry_their_container_and_pod() {
    let Some(dump) = dumpers().into_iter().next() else { return }; // said why
    let top = V2Cgroup::new("pt-ctr");
    let u = |uid: &str| uid.replace('-', "_");
    // (levels below top, container id, pod UID)
    let layouts: Vec<(Vec<String>, Option<&str>, Option<&str>)> = vec![
        (vec!["docker".into(), ID[0].into()], Some(ID[0]), None),
        (vec![format!("docker-{}.scope", ID[1])], Some(ID[1]), None),
        (
            vec![
                "kubepods.slice".into(),
                "kubepods-burstable.slice".into(),
                format!("kubepods-burstable-pod{}.slice", u(UID[0])),
                format!("cri-containerd-{}.scope", ID[2]),
            ],
            Some(ID[2]),
            Some(UID[0]),
        ),
        (
            vec!["kubepods".into(), "besteffort".into(), format!("pod{}", UID[1]), format!("crio-{}.scope", ID[3])],
            Some(ID[3]),
            Some(UID[1]),
        ),
        (vec!["machine.slice".into(), format!("libpod-{}.scope", ID[4])], Some(ID[4]), None),
        (vec!["system.slice".into(), "ssh.service".into()], None, None),
    ];
    let chains: Vec<Vec<V2Cgroup>> = layouts.iter().map(|(levels, ..)| chain(&top, levels)).collect();
    let (dir, link) = common::true_named("ptctr");
    let mut pids = HashMap::new();
    let Dump { out, .. } = dump_while(&dump, &["--containers", "--comm", "ptctr"], || {
        for (i, made) in chains.iter().enumerate() {
            let leaf = made.last().unwrap();
            let script = format!("echo $$ > {} && exec {}", leaf.procs().display(), link.display());
            let mut child = Command::new("/bin/sh").arg("-c").arg(script).spawn().unwrap();
            pids.insert(child.id(), i);
            assert!(child.wait().unwrap().success());
        }
    });
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let root = "/".to_string() + top.dir.file_name().unwrap().to_str().unwrap();
    for (pid, i) in &pids {
        let (levels, container, pod) = &layouts[*i];
        let exec = events
            .iter()
            .find(|e| e["type"] == "exec" && e["pid"] == *pid)
            .unwrap_or_else(|| panic!("no exec of {pid} in {out}"));
        assert_eq!(exec["cgroup"], format!("{root}/{}", levels.join("/")), "{exec}");
        assert_eq!(exec["container_id"], serde_json::json!(container), "{exec}");
        assert_eq!(exec["pod_uid"], serde_json::json!(pod), "{exec}");
        let exit = events.iter().find(|e| e["type"] == "exit" && e["pid"] == *pid).expect("its exit");
        assert!(exit.get("cgroup").is_none(), "exit carries no cgroup id: {exit}");
    }
    for made in chains {
        made.into_iter().rev().for_each(drop); // the leaves first
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Cgroup ids only grow: a removed cgroup's id, asked for after a walk that
/// no longer found it, costs no walk; one never seen costs one.
#[test]
fn removed_cgroups_cost_no_walk_and_new_ones_are_found() {
    let Some(_) = common::cgroup::v2_root() else {
        assert!(!common::tools::ci(), "CI=true: no cgroup2 hierarchy mounted");
        eprintln!("SKIPPED: no cgroup2 hierarchy mounted");
        return;
    };
    let mut cgroups = proctap::container::Cgroups::open().unwrap();
    let top = V2Cgroup::new("pt-ctr-walk");
    let first = top.child("first");
    let (first_id, first_path) = (first.id(), first.dir.clone());
    assert!(cgroups.lookup(first_id).is_some_and(|c| first_path.ends_with(c.path.trim_start_matches('/'))));
    drop(first);
    let second = top.child("second");
    assert!(second.id() > first_id, "cgroup ids grow");
    let walks = cgroups.walks();
    assert!(cgroups.lookup(second.id()).is_some_and(|c| c.path.ends_with("/second")));
    assert_eq!(cgroups.walks(), walks + 1, "a new cgroup: one walk");
    assert!(cgroups.lookup(first_id).is_none(), "removed");
    assert!(cgroups.lookup(first_id).is_none());
    assert_eq!(cgroups.walks(), walks + 1, "a removed cgroup's id costs no walk");
    let never = second.id() + (1 << 40);
    assert!(cgroups.lookup(never).is_none() && cgroups.lookup(never).is_none());
    assert_eq!(cgroups.walks(), walks + 2, "an id no walk finds costs one walk");
    drop(second);
}
