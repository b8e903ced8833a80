//! The cgroup filter's targets: a cgroup v2 directory, resolved to the id
//! the kernel gives it (the directory's inode number, which is also what
//! events carry as `cgroup_id`), or an id given as such.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// One target of the cgroup filter, as the user gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CgroupTarget {
    Path(PathBuf),
    Id(u64),
}

impl CgroupTarget {
    /// The cgroup v2 id, or a typed error saying what to give instead.
    pub(crate) fn resolve(&self) -> Result<u64, Error> {
        match self {
            CgroupTarget::Id(0) => Err(Error::invalid("cgroups", "cgroup id 0 names no cgroup")),
            CgroupTarget::Id(id) => Ok(*id),
            CgroupTarget::Path(path) => resolve_path(path),
        }
    }
}

fn resolve_path(path: &Path) -> Result<u64, Error> {
    let shown = path.display();
    let real = path
        .canonicalize()
        .map_err(|e| Error::invalid("cgroups", format!("{shown}: {e}: give a cgroup v2 directory")))?;
    let meta = std::fs::metadata(&real).map_err(|e| Error::invalid("cgroups", format!("{shown}: {e}")))?;
    if !meta.is_dir() {
        return Err(Error::invalid("cgroups", format!("{shown} is not a directory: give a cgroup v2 directory")));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::invalid("cgroups", format!("reading /proc/self/mountinfo: {e}")))?;
    match mount_fstype(&mountinfo, &real).as_deref() {
        Some("cgroup2") => Ok(meta.ino()),
        Some(fstype) => Err(Error::invalid(
            "cgroups",
            format!(
                "{shown} is on a {fstype} filesystem, not cgroup2: the filter follows the cgroup v2 tree \
                 (/sys/fs/cgroup on most hosts, /sys/fs/cgroup/unified on a v1/v2 hybrid)"
            ),
        )),
        None => Err(Error::invalid("cgroups", format!("{shown}: no mount holds it in /proc/self/mountinfo"))),
    }
}

/// The filesystem type of the mount that holds `path` (absolute, with no
/// symlinks): the last-listed mount whose mount point is `path` or one of
/// its ancestors and is the longest such, as the kernel resolves it.
pub(crate) fn mount_fstype(mountinfo: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        // id parent major:minor root mount-point options... - fstype source super-options
        let Some((head, tail)) = line.split_once(" - ") else { continue };
        let (Some(mount_point), Some(fstype)) = (head.split(' ').nth(4), tail.split(' ').next()) else { continue };
        let mount_point = unescape(mount_point);
        if path.starts_with(&mount_point) {
            let depth = Path::new(&mount_point).components().count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, fstype.to_string()));
            }
        }
    }
    best.map(|(_, fstype)| fstype)
}

/// Where the cgroup2 hierarchy is mounted, from /proc/self/mountinfo's text.
pub(crate) fn cgroup2_mount_point(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (head, tail) = line.split_once(" - ")?;
        tail.starts_with("cgroup2 ").then(|| head.split(' ').nth(4).map(|m| PathBuf::from(unescape(m)))).flatten()
    })
}

/// Mountinfo's octal escapes (`\040` for a space, and tab, newline, `\`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/root rw
25 22 0:22 / /sys rw shared:7 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory
40 22 0:40 / /tmp/with\\040space rw - cgroup2 none rw
";

    #[test]
    fn the_longest_mount_point_decides() {
        let at = |p: &str| mount_fstype(HYBRID, Path::new(p));
        assert_eq!(at("/sys/fs/cgroup/unified/system.slice").as_deref(), Some("cgroup2"));
        assert_eq!(at("/sys/fs/cgroup/unified").as_deref(), Some("cgroup2"));
        assert_eq!(at("/sys/fs/cgroup/memory/test").as_deref(), Some("cgroup"));
        assert_eq!(at("/sys/fs/cgroup").as_deref(), Some("tmpfs"));
        // A name that only starts like a mount point is not under it.
        assert_eq!(at("/sys/fs/cgroup/unifiedx").as_deref(), Some("tmpfs"));
        assert_eq!(at("/tmp/with space/a").as_deref(), Some("cgroup2"));
        assert_eq!(at("/home").as_deref(), Some("ext4"));
    }

    #[test]
    fn the_cgroup2_mount_is_found() {
        assert_eq!(cgroup2_mount_point(HYBRID), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount_point("22 1 8:1 / / rw - ext4 /dev/root rw\n"), None);
    }

    #[test]
    fn a_later_mount_on_the_same_point_hides_the_earlier() {
        let info = format!("{HYBRID}50 31 0:50 / /sys/fs/cgroup/unified rw - tmpfs tmpfs rw\n");
        assert_eq!(mount_fstype(&info, Path::new("/sys/fs/cgroup/unified/x")).as_deref(), Some("tmpfs"));
    }

    #[test]
    fn ids_and_bad_paths_are_checked() {
        assert_eq!(CgroupTarget::Id(7).resolve().unwrap(), 7);
        assert!(matches!(CgroupTarget::Id(0).resolve(), Err(Error::InvalidConfig { .. })));
        let missing = CgroupTarget::Path("/nonexistent/cgroup".into()).resolve();
        assert!(matches!(missing, Err(Error::InvalidConfig { ref field, .. }) if field == "cgroups"), "{missing:?}");
        // A file, and a directory that is not on cgroup2.
        for p in ["/proc/self/mountinfo", "/proc"] {
            let r = CgroupTarget::Path(p.into()).resolve();
            assert!(matches!(r, Err(Error::InvalidConfig { .. })), "{p}: {r:?}");
        }
    }
}
