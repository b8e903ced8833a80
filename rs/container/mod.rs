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
//! when an id it has not seen turns up (cgroup ids are never reused while
//! the system runs). An id still missing after a walk is remembered as
//! missing: a cgroup removed since its event was made costs one walk, not
//! one per event.

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

/// Most ids remembered as missing; past it the memory starts over.
const MISSING_MAX: usize = 65536;

/// Cgroup ids to paths, for one cgroup2 tree.
pub struct Cgroups {
    root: PathBuf,
    known: HashMap<u64, Cgroup>,
    missing: HashSet<u64>,
}

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
        let mut cgroups = Cgroups { root: root.into(), known: HashMap::new(), missing: HashSet::new() };
        cgroups.walk();
        cgroups
    }

    /// The cgroup with this id; None when no directory of the tree has it
    /// (removed, or an id from another tree).
    pub fn lookup(&mut self, id: u64) -> Option<&Cgroup> {
        if !self.known.contains_key(&id) && !self.missing.contains(&id) {
            self.walk();
            if !self.known.contains_key(&id) {
                if self.missing.len() >= MISSING_MAX {
                    self.missing.clear();
                }
                self.missing.insert(id);
            }
        }
        self.known.get(&id)
    }

    /// Records every directory of the tree (those it cannot read are
    /// skipped); forgets what was missing, which may exist now.
    fn walk(&mut self) {
        self.missing.clear();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else { continue };
            if !self.known.contains_key(&meta.ino()) {
                let path = relative(&self.root, &dir);
                let ids = container_ids(&path);
                self.known.insert(meta.ino(), Cgroup { path, ids });
            }
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            dirs.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
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
    fn paths_of_directories_added_after_the_first_walk_are_found_and_misses_are_remembered() {
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
        assert!(cgroups.lookup(u64::MAX).is_none());
        assert!(cgroups.missing.contains(&u64::MAX), "a miss is remembered");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
