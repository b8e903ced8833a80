//! Where traced events go. [`EventSink`] is one output format; today's is
//! [`JsonLines`]: one JSON object per event on stdout, flushed per batch,
//! the event's own fields followed by its process' identity (`exec_id`,
//! ..., with --exec-ids or --ancestors) and its cgroup's (`cgroup`,
//! `container_id`, `pod_uid`, with --containers). Another format (a
//! columnar file per kind, say) is another implementation of the trait,
//! chosen by `proctap trace --format`.

use std::io::Write;

use proctap::container::Cgroup;
use proctap::l7::Record;
use proctap::process::EventIdentity;
use proctap::Event;

/// What is known about an event besides its own fields.
#[derive(Default)]
pub struct Context<'a> {
    /// Its process' identity, when a process table is kept.
    pub identity: Option<EventIdentity<'a>>,
    /// With --containers, for an event that has a cgroup id: its cgroup, or
    /// None for one removed before the event was read.
    pub cgroup: Option<Option<&'a Cgroup>>,
}

/// One output format of traced events.
pub trait EventSink {
    /// Writes one event.
    fn event(&mut self, event: &Event<&[u8]>, context: Context<'_>) -> std::io::Result<()>;
    /// Writes one L7 request/response record (--net).
    fn l7(&mut self, record: &Record) -> std::io::Result<()>;
    /// A batch ended: make what was written visible.
    fn flush(&mut self) -> std::io::Result<()>;
    /// What it writes to, for error messages ("stdout").
    fn destination(&self) -> String;
    /// Tracing ended: finish writing. Returns what to add to the final
    /// stats line (the sink's own counters, the files it wrote).
    fn finish(&mut self) -> std::io::Result<serde_json::Map<String, serde_json::Value>> {
        self.flush().map(|()| serde_json::Map::new())
    }
}

/// One JSON object per line, on stdout.
pub struct JsonLines<W: Write> {
    out: W,
}

impl JsonLines<std::io::BufWriter<std::io::StdoutLock<'static>>> {
    /// JSON lines on stdout, buffered until each batch's end.
    pub fn stdout() -> Self {
        JsonLines { out: std::io::BufWriter::new(std::io::stdout().lock()) }
    }
}

impl<W: Write> EventSink for JsonLines<W> {
    fn event(&mut self, event: &Event<&[u8]>, context: Context<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        if let Some(identity) = context.identity {
            append_fields(&mut line, &serde_json::to_vec(&identity)?);
        }
        if let Some(cgroup) = context.cgroup {
            let fields = match cgroup {
                Some(cgroup) => serde_json::to_vec(cgroup)?,
                // A cgroup removed before its event was read: no path to give.
                None => br#"{"cgroup":null,"container_id":null,"pod_uid":null}"#.to_vec(),
            };
            append_fields(&mut line, &fields);
        }
        line.push(b'\n');
        self.out.write_all(&line)
    }

    fn l7(&mut self, record: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn destination(&self) -> String {
        "stdout".to_string()
    }
}

/// Appends the members of JSON object `fields` to JSON object `line`.
fn append_fields(line: &mut Vec<u8>, fields: &[u8]) {
    if fields.len() > 2 {
        line.pop(); // the object's closing brace
        line.push(b',');
        line.extend_from_slice(&fields[1..]);
    }
}

#[cfg(test)]
mod tests {
    use super::append_fields;

    #[test]
    fn fields_join_the_object_and_an_empty_object_adds_nothing() {
        let mut line = br#"{"a":1}"#.to_vec();
        append_fields(&mut line, br#"{"b":2,"c":null}"#);
        assert_eq!(line, br#"{"a":1,"b":2,"c":null}"#);
        append_fields(&mut line, b"{}");
        assert_eq!(line, br#"{"a":1,"b":2,"c":null}"#);
    }
}
