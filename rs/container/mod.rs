//! Container context for events: the cgroup v2 path behind an event's
//! `cgroup_id` ([`crate::Event::cgroup_id`]), and the container id and
//! Kubernetes pod UID that path's naming carries ([`container_ids`]).
//!
//! ```no_run
//! let mut cgroups = proctap::container::Cgroups::open()?;
//! # let id = 1;
//! if let Some(cgroup) = cgroups.lookup(id) {
//!     println!("{} {:?} {:?}", cgroup.path, cgroup.ids.container_id, cgroup.ids.pod_uid);
//! }
//! # Ok::<(), proctap::Error>(())
//! ```
//!
//! A cgroup's id is its directory's inode number in the cgroup2 tree, so
//! [`Cgroups`] finds paths by walking that tree, once at the start and again
//! when an id newer than every one the last walk saw turns up. Ids only grow
//! while the system runs (the kernel hands them out in order and never
//! reuses one), so an unknown id no newer than those is a cgroup removed
//! since: it costs no walk. A newer one that a walk does not find either
//! (made and removed in between, or not from this tree) is remembered, so
//! it costs one walk, not one per event.

mod ids;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;

pub use ids::{container_ids, ContainerIds};

/// A cgroup: its path and what that says about its container. Serializes
/// as `{"cgroup": PATH, "container_id": ..., "pod_uid": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cgroup {
    /// The path from the cgroup2 root, `/` first (`/` for the root itself).
    #[serde(rename = "cgroup")]
    pub path: String,
    #[serde(flatten)]
    pub ids: ContainerIds,
}

/// Cgroup ids to paths, for one cgroup2 tree.
pub struct Cgroups {
    root: PathBuf,
    known: HashMap<u64, Cgroup>,
    /// The newest id the last walk saw.
    newest: u64,
    /// Newer ids that a walk did not find.
    unseen: HashSet<u64>,
    walks: u64,
}

/// Most ids kept in `unseen`; past it the set starts over.
const UNSEEN_MAX: usize = 4096;

impl Cgroups {
    /// The tree mounted on this machine: pure v2 or a hybrid's
    /// (`/sys/fs/cgroup/unified`), as /proc/self/mountinfo says.
    pub fn open() -> Result<Cgroups, Error> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::invalid("cgroups", format!("reading /proc/self/mountinfo: {e}")))?;
        let root = crate::config::cgroup::cgroup2_mount_point(&mountinfo).ok_or_else(|| {
            Error::invalid("cgroups", "no cgroup2 hierarchy is mounted (see /proc/self/mountinfo): mount one")
        })?;
        Ok(Cgroups::at(root))
    }

    /// The tree mounted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Cgroups {
        let mut cgroups =
            Cgroups { root: root.into(), known: HashMap::new(), newest: 0, unseen: HashSet::new(), walks: 0 };
        cgroups.walk();
        cgroups
    }

    /// The cgroup with this id; None when no directory of the tree has it
    /// (removed, or an id from another tree).
    pub fn lookup(&mut self, id: u64) -> Option<&Cgroup> {
        if id > self.newest && !self.known.contains_key(&id) && !self.unseen.contains(&id) {
            self.walk();
            if id > self.newest {
                if self.unseen.len() >= UNSEEN_MAX {
                    self.unseen.clear();
                }
                self.unseen.insert(id);
            }
        }
        self.known.get(&id)
    }

    /// How many times the tree was walked.
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// Records every directory of the tree (those it cannot read are
    /// skipped), forgetting the cgroups removed since the last walk.
    fn walk(&mut self) {
        self.walks += 1;
        let mut seen = HashSet::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else { continue };
            seen.insert(meta.ino());
            self.newest = self.newest.max(meta.ino());
            if !self.known.contains_key(&meta.ino()) {
                let path = relative(&self.root, &dir);
                let ids = container_ids(&path);
                self.known.insert(meta.ino(), Cgroup { path, ids });
            }
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            dirs.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
        self.known.retain(|id, _| seen.contains(id));
        let newest = self.newest;
        self.unseen.retain(|id| *id > newest);
    }
}

/// `dir` from `root`, `/` first.
fn relative(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    format!("/{}", rel.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain directory tree stands in for the cgroup2 mount.
    #[test]
    fn directories_added_after_the_first_walk_are_found_and_an_unknown_id_costs_one_walk() {
        let root = std::env::temp_dir().join(format!("proctap-cgroups-{}", std::process::id()));
        let id = "b".repeat(64);
        let scope = root.join(format!("system.slice/docker-{id}.scope"));
        std::fs::create_dir_all(root.join("system.slice")).unwrap();
        let mut cgroups = Cgroups::at(&root);
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(cgroups.lookup(ino(&root)).map(|c| c.path.as_str()), Some("/"));
        std::fs::create_dir_all(&scope).unwrap();
        let found = cgroups.lookup(ino(&scope)).cloned().expect("a cgroup made after the first walk");
        assert_eq!(found.path, format!("/system.slice/docker-{id}.scope"));
        assert_eq!(found.ids.container_id.as_deref(), Some(id.as_str()));
        assert_eq!(
            serde_json::to_value(&found).unwrap(),
            serde_json::json!({"cgroup": found.path, "container_id": id, "pod_uid": null})
        );
        let walks = cgroups.walks();
        assert!(cgroups.lookup(u64::MAX).is_none());
        assert!(cgroups.lookup(u64::MAX).is_none());
        assert_eq!(cgroups.walks(), walks + 1, "an id that was not there costs one walk");
        assert!(cgroups.lookup(ino(&scope)).is_some());
        assert_eq!(cgroups.walks(), walks + 1, "a known id costs no walk");
        // Removed cgroups: tests/containers.rs, on real cgroup ids (a plain
        // filesystem reuses inode numbers; the kernel never reuses ids).
        std::fs::remove_dir_all(&root).unwrap();
    }
}
