//! Events to OTLP log records: pure, no I/O.

use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};

use super::attr::Attrs;
use super::ProcessContext;
use crate::{Event, Exec, Exit, Fork, OomKill, Open, WallTime};

/// What every record's `event_name` starts with: `proctap.` then the
/// kind's JSON name (`proctap.exec`, …, and `proctap.l7`).
pub const EVENT_NAME_PREFIX: &str = "proctap.";

/// The log record of an event of a kind that is exported (exec, exit,
/// fork, open, oom_kill); None for the others (samples, connection
/// events and their bytes: [`super::l7_log_record`] reports what those
/// carried). `observed_time_unix_nano` is left 0 for the exporter to set.
pub fn log_record<B: AsRef<[u8]>>(event: &Event<B>, process: &ProcessContext) -> Option<LogRecord> {
    let mut attrs = Attrs::new();
    let (time, severity) = match event {
        Event::Exec(e) => (exec(&mut attrs, e), SeverityNumber::Info),
        Event::Exit(e) => (exit(&mut attrs, e), SeverityNumber::Info),
        Event::Fork(e) => (fork(&mut attrs, e), SeverityNumber::Info),
        Event::Open(e) => (open(&mut attrs, e), SeverityNumber::Info),
        Event::OomKill(e) => (oom_kill(&mut attrs, e), SeverityNumber::Warn),
        _ => return None,
    };
    attrs.process_context(process);
    Some(record(event.kind().name(), time, severity, attrs))
}

/// A record named `proctap.{name}` at `time`.
pub(crate) fn record(name: &str, time: WallTime, severity: SeverityNumber, attrs: Attrs) -> LogRecord {
    LogRecord {
        time_unix_nano: unix_nanos(time),
        severity_number: severity as i32,
        severity_text: severity_text(severity).to_owned(),
        attributes: attrs.into_vec(),
        event_name: format!("{EVENT_NAME_PREFIX}{name}"),
        ..LogRecord::default()
    }
}

/// OTLP's unsigned nanoseconds (a time before 1970 cannot be said: 0).
pub(crate) fn unix_nanos(time: WallTime) -> u64 {
    u64::try_from(time.unix_ns).unwrap_or(0)
}

fn severity_text(severity: SeverityNumber) -> &'static str {
    match severity {
        SeverityNumber::Warn => "WARN",
        _ => "INFO",
    }
}

fn exec<B: AsRef<[u8]>>(attrs: &mut Attrs, e: &Exec<B>) -> WallTime {
    let filename = e.filename.as_ref();
    let name = filename.rsplit(|&b| b == b'/').next().unwrap_or(filename);
    attrs
        .int("process.pid", e.pid)
        .int("process.parent_pid", e.ppid)
        .int("process.vpid", e.ns_pid)
        .int("thread.id", e.tid)
        .bytes_str("thread.name", e.comm.as_bytes())
        .int("process.user.id", e.uid)
        .int("process.group.id", e.gid)
        .bytes_str("process.executable.path", filename)
        .bytes_str("process.executable.name", name);
    if let Some(command) = e.argv.iter().next() {
        attrs.bytes_str("process.command", command);
    }
    attrs
        .str_array("process.command_args", e.argv.iter())
        .uint("process.args_count", e.argv.len() as u64)
        .uint("proctap.cgroup_id", e.cgroup_id);
    flag(attrs, "proctap.exec.filename_truncated", e.filename_truncated);
    flag(attrs, "proctap.exec.argv_truncated", e.argv_truncated);
    flag(attrs, "proctap.exec.argv_fault", e.argv_fault);
    flag(attrs, "proctap.data_lost", e.data_lost);
    e.time
}

fn exit(attrs: &mut Attrs, e: &Exit) -> WallTime {
    let created = WallTime { unix_ns: e.time.unix_ns.saturating_sub(e.duration_ns.min(i64::MAX as u64) as i64) };
    attrs
        .int("process.pid", e.pid)
        .int("process.parent_pid", e.ppid)
        .int("thread.id", e.tid)
        .bytes_str("thread.name", e.comm.as_bytes())
        .int("process.exit.code", e.exit_code)
        .str("process.exit.time", e.time.to_string())
        .str("process.creation.time", created.to_string())
        .uint("proctap.exit.duration_ns", e.duration_ns)
        .opt_int("proctap.exit.signal", e.signal);
    flag(attrs, "proctap.exit.core_dumped", e.core_dumped);
    flag(attrs, "proctap.exit.thread_exit", e.thread_exit);
    e.time
}

fn fork(attrs: &mut Attrs, e: &Fork) -> WallTime {
    attrs
        .int("process.pid", e.pid)
        .int("process.parent_pid", e.ppid)
        .int("thread.id", e.tid)
        .bytes_str("thread.name", e.comm.as_bytes())
        .int("proctap.fork.child_pid", e.child_pid)
        .int("proctap.fork.child_tid", e.child_tid)
        .bool("proctap.fork.thread", e.thread);
    e.time
}

fn open<B: AsRef<[u8]>>(attrs: &mut Attrs, e: &Open<B>) -> WallTime {
    attrs
        .int("process.pid", e.pid)
        .int("thread.id", e.tid)
        .bytes_str("thread.name", e.comm.as_bytes())
        .bytes_str("file.path", e.path.as_ref())
        .int("proctap.open.dfd", e.dfd)
        .uint("proctap.open.flags", e.flags)
        .uint("proctap.open.mode", e.mode)
        .opt_int("proctap.open.fd", e.fd)
        .opt_int("proctap.open.errno", e.errno);
    flag(attrs, "proctap.open.path_truncated", e.path_truncated);
    flag(attrs, "proctap.data_lost", e.data_lost);
    e.time
}

fn oom_kill(attrs: &mut Attrs, e: &OomKill) -> WallTime {
    attrs
        .int("process.pid", e.pid)
        .bytes_str("thread.name", e.comm.as_bytes())
        .int("process.user.id", e.uid)
        .uint("proctap.cgroup_id", e.cgroup_id)
        .uint("proctap.oom.total_vm_kb", e.total_vm_kb)
        .uint("proctap.oom.anon_rss_kb", e.anon_rss_kb)
        .uint("proctap.oom.file_rss_kb", e.file_rss_kb)
        .uint("proctap.oom.shmem_rss_kb", e.shmem_rss_kb)
        .int("proctap.oom.score_adj", e.oom_score_adj)
        .uint("proctap.oom.memcg_id", e.memcg_id)
        .int("proctap.oom.trigger_pid", e.trigger_pid)
        .int("proctap.oom.trigger_tid", e.trigger_tid)
        .bytes_str("proctap.oom.trigger_comm", e.trigger_comm.as_bytes());
    e.time
}

/// A flag only when set: most records have none.
fn flag(attrs: &mut Attrs, key: &str, set: bool) {
    if set {
        attrs.bool(key, true);
    }
}
