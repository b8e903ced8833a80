//! A memory-limited cgroup made for one test, in whichever layout the
//! machine has: the memory controller on v1 (/sys/fs/cgroup/memory, as on
//! these machines), on a hybrid's v2 (/sys/fs/cgroup/unified), or pure v2
//! (/sys/fs/cgroup). Removed on drop, once its processes are gone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    V1,
    V2,
}

pub struct MemoryCgroup {
    pub dir: PathBuf,
    pub layout: Layout,
}

fn has_memory_controller(v2_root: &Path) -> bool {
    std::fs::read_to_string(v2_root.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
}

fn write(path: &Path, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("writing {value:?} to {}: {e}", path.display()));
}

impl MemoryCgroup {
    /// A cgroup named `name` (made unique per test process) whose memory,
    /// swap included, is limited to `limit` bytes.
    pub fn new(name: &str, limit: u64) -> MemoryCgroup {
        let name = format!("{name}-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (root, layout) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.to_path_buf(), Layout::V1)
        } else if has_memory_controller(Path::new("/sys/fs/cgroup/unified")) {
            (PathBuf::from("/sys/fs/cgroup/unified"), Layout::V2)
        } else if has_memory_controller(Path::new("/sys/fs/cgroup")) {
            (PathBuf::from("/sys/fs/cgroup"), Layout::V2)
        } else {
            panic!("no memory cgroup controller, in v1 or v2: the OOM test needs one");
        };
        let dir = root.join(name);
        let _ = std::fs::remove_dir(&dir); // a crashed run's leftover
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let limit = limit.to_string();
        match layout {
            Layout::V1 => {
                write(&dir.join("memory.limit_in_bytes"), &limit);
                // Swap counts too when the kernel accounts it.
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    write(&dir.join("memory.memsw.limit_in_bytes"), &limit);
                }
            }
            Layout::V2 => {
                // The parent must hand the controller down.
                write(&root.join("cgroup.subtree_control"), "+memory");
                write(&dir.join("memory.max"), &limit);
                if dir.join("memory.swap.max").exists() {
                    write(&dir.join("memory.swap.max"), "0");
                }
            }
        }
        MemoryCgroup { dir, layout }
    }

    /// The file a process writes its pid to to join.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Its id as the kernel gives it to BPF: the directory's inode number.
    pub fn id(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.dir).unwrap().ino()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // rmdir fails while a killed process is still being torn down.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A plain directory in the cgroup v2 tree (no controller enabled), made
/// for one test: /sys/fs/cgroup/unified on a v1/v2 hybrid, /sys/fs/cgroup
/// on pure v2. Removed on drop, once its processes are gone.
pub struct V2Cgroup {
    pub dir: PathBuf,
}

impl V2Cgroup {
    /// A new cgroup named `name` (made unique per test process) at the top
    /// of the v2 tree.
    pub fn new(name: &str) -> V2Cgroup {
        let root = v2_root().expect("a cgroup2 hierarchy mounted (the cgroup filter tests need one)");
        V2Cgroup::make(root.join(format!("{name}-{}", std::process::id())))
    }

    /// A cgroup below this one.
    pub fn child(&self, name: &str) -> V2Cgroup {
        V2Cgroup::make(self.dir.join(name))
    }

    fn make(dir: PathBuf) -> V2Cgroup {
        let _ = std::fs::remove_dir(&dir); // a crashed run's leftover
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        V2Cgroup { dir }
    }

    /// The file a process writes its pid to to join.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Its id as the kernel gives it to BPF: the directory's inode number.
    pub fn id(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.dir).unwrap().ino()
    }
}

impl Drop for V2Cgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Where the cgroup2 hierarchy is mounted, from /proc/self/mountinfo.
pub fn v2_root() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (head, tail) = line.split_once(" - ")?;
        let mount_point = head.split(' ').nth(4)?;
        tail.starts_with("cgroup2 ").then(|| PathBuf::from(mount_point))
    })
}
