//! The profiler's targets, changed while tracing.

use std::sync::{Arc, Weak};

use crate::binding::{sys, Instance};
use crate::error::Error;
use crate::{Capture, Event};

use super::Shared;

/// The profiler's targets of a running tracer ([`Tracer::targets`](crate::Tracer::targets)).
/// Operations on a stopped tracer, or one started without
/// [`Config::profile`](crate::Config::profile), fail with [`Error::Target`].
#[derive(Clone)]
pub struct Targets {
    pub(super) shared: Weak<Shared>,
}

impl Targets {
    /// Profiles process `pid` from now on, until it exits. Fails when it
    /// does not exist (or exits meanwhile), is a thread of another process,
    /// or the filter is full.
    pub fn add_pid(&self, pid: u32) -> Result<(), Error> {
        add_target(&self.instance(&pid)?.instance, pid)
    }

    /// Stops profiling `pid`; false when it was not a target.
    pub fn remove_pid(&self, pid: u32) -> Result<bool, Error> {
        match self.instance(&pid)?.instance.target_remove(pid) {
            Ok(()) => Ok(true),
            Err(ENOENT) => Ok(false),
            Err(errno) => Err(target_error(&pid, errno, "removing it from the filter")),
        }
    }

    /// The processes profiled now, in no order.
    pub fn pids(&self) -> Result<Vec<u32>, Error> {
        let shared = self.instance(&"list")?;
        shared.instance.targets().map_err(|errno| target_error(&"list", errno, "listing the filter"))
    }

    /// Profiles processes whose command name starts with `prefix` (1 to 15
    /// bytes): those that exec from now on are added in the kernel (with a
    /// [`Trigger`](crate::Trigger) event); those running now are found by a
    /// /proc scan and returned.
    pub fn add_comm_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<u32>, Error> {
        let prefix = prefix.as_ref();
        watch_comm_prefix(&self.instance(&String::from_utf8_lossy(prefix))?.instance, prefix)
    }

    /// Stops adding processes for `prefix`; targets it added stay until they
    /// exit or are removed. False when the prefix was not watched.
    pub fn remove_comm_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<bool, Error> {
        let prefix = prefix.as_ref();
        let name = String::from_utf8_lossy(prefix);
        crate::config::check_comm_prefix(prefix)?;
        match self.instance(&name)?.instance.watch_remove(prefix) {
            Ok(()) => Ok(true),
            Err(ENOENT) => Ok(false),
            Err(errno) => Err(target_error(&name, errno, "removing it from the watch list")),
        }
    }

    /// Puts a capture's start or stop into the stream, where it comes in
    /// time order with the samples it brackets
    /// ([`profile::capture`](crate::profile::capture) does this for its
    /// pressure triggers). The loader stamps the time: `ts_ns` and `time`
    /// are not read. Fails when the tracer does not profile, or the cgroup
    /// path is longer than 4096 bytes.
    pub fn mark_capture(&self, capture: &Capture) -> Result<(), Error> {
        let shared = self.instance(&"capture")?;
        let mut record = Vec::new();
        Event::Capture(capture.clone()).encode(&mut record);
        shared.instance.capture_mark(&record).map_err(|errno| Error::Target {
            target: "capture".into(),
            errno,
            message: match errno {
                EINVAL => "this tracer does not profile (Config::profile)".into(),
                ESHUTDOWN => "the tracer has stopped: its stream has ended".into(),
                EBADMSG => {
                    format!("not a valid capture: is the cgroup path ({} bytes) at most 4096?", capture.cgroup.len())
                }
                _ => format!("queueing the capture: {}", std::io::Error::from_raw_os_error(errno)),
            },
        })
    }

    fn instance(&self, target: &dyn std::fmt::Display) -> Result<Arc<Shared>, Error> {
        self.shared.upgrade().ok_or_else(|| Error::Target {
            target: target.to_string(),
            errno: ESRCH,
            message: "the tracer has stopped".into(),
        })
    }
}

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EINVAL: i32 = 22;
const E2BIG: i32 = 7;
const EBADMSG: i32 = 74;
const ESHUTDOWN: i32 = 108;

fn target_error(target: &dyn std::fmt::Display, errno: i32, doing: &str) -> Error {
    let message = match errno {
        ESRCH => "no such process (it may have exited)".to_string(),
        E2BIG => format!("the target filter is full ({} processes); remove some first", sys::PT_TARGETS_MAX),
        EINVAL => "not possible here: is this tracer profiling (Config::profile), and is this a process id rather than a thread id?".to_string(),
        _ => format!("{doing}: {}", std::io::Error::from_raw_os_error(errno)),
    };
    Error::Target { target: target.to_string(), errno, message }
}

pub(super) fn add_target(instance: &Instance, pid: u32) -> Result<(), Error> {
    instance.target_add(pid).map_err(|errno| target_error(&pid, errno, "adding it to the filter"))
}

/// Watches a prefix in the kernel first, then scans /proc: a process that
/// execs in between is caught by one or the other (adding twice is a no-op).
pub(super) fn watch_comm_prefix(instance: &Instance, prefix: &[u8]) -> Result<Vec<u32>, Error> {
    let name = String::from_utf8_lossy(prefix);
    crate::config::check_comm_prefix(prefix)?;
    instance.watch_add(prefix).map_err(|errno| target_error(&name, errno, "adding it to the watch list"))?;
    let mut found = Vec::new();
    let proc_dir = std::fs::read_dir("/proc")
        .map_err(|e| Error::System { errno: e.raw_os_error().unwrap_or(0), message: format!("scanning /proc: {e}") })?;
    for entry in proc_dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(comm) = std::fs::read(entry.path().join("comm")) else { continue };
        let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
        if !comm.starts_with(prefix) {
            continue;
        }
        match instance.target_add(pid) {
            Ok(()) => found.push(pid),
            Err(ESRCH) => {} // exited since the scan read it
            Err(errno) => return Err(target_error(&pid, errno, "adding it to the filter")),
        }
    }
    found.sort_unstable();
    Ok(found)
}
