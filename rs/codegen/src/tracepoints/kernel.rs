//! The build machine's kernel: its BTF (/sys/kernel/btf/vmlinux) and its
//! tracefs format files, tracefs mounted when it is not (root only).

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::btf::Btf;
use super::Kernel;

const BTF: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// The running kernel, read lazily: a build without syscalls tracepoints
/// never touches tracefs.
#[derive(Default)]
pub struct SystemKernel {
    btf: OnceCell<Result<Btf, String>>,
    events: OnceCell<Result<PathBuf, String>>,
}

impl SystemKernel {
    pub fn new() -> SystemKernel {
        SystemKernel::default()
    }

    /// tracefs' events directory, mounting tracefs if it is not.
    fn events_dir(&self) -> Result<&Path, String> {
        let found = self.events.get_or_init(|| {
            for root in [TRACEFS, DEBUGFS_TRACING] {
                let events = Path::new(root).join("events");
                if events.is_dir() {
                    return Ok(events);
                }
            }
            let mounted = Command::new("mount").args(["-t", "tracefs", "nodev", TRACEFS]).output();
            match mounted {
                Ok(out) if out.status.success() => Ok(Path::new(TRACEFS).join("events")),
                Ok(out) => Err(format!(
                    "tracefs is not mounted and mounting it failed ({}): run `mount -t tracefs nodev {TRACEFS}` \
                     as root, or build as root",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => Err(format!("tracefs is not mounted and `mount` could not run ({e})")),
            }
        });
        found.as_deref().map_err(Clone::clone)
    }
}

impl Kernel for SystemKernel {
    fn btf(&self) -> Result<&Btf, String> {
        let btf = self.btf.get_or_init(|| {
            let bytes = std::fs::read(BTF).map_err(|e| {
                format!("cannot read the kernel's BTF at {BTF} ({e}): the build needs a kernel with BTF")
            })?;
            Btf::parse(&bytes).map_err(|e| format!("{BTF}: {e}"))
        });
        btf.as_ref().map_err(Clone::clone)
    }

    fn format(&self, category: &str, name: &str) -> Result<Option<String>, String> {
        let path = self.events_dir()?.join(category).join(name).join("format");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {} ({e}): tracefs needs root", path.display())),
        }
    }
}
