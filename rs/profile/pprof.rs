//! The pprof output: a hand-written encoder for the few protobuf shapes of
//! `profile.proto` (perftools.profiles), gzip-compressed.

use std::collections::HashMap;
use std::io::{self, Write};

use super::aggregate::Profile;

/// Protobuf wire encoding into a byte vector.
#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A varint field (uint64, int64, bool); zero is the default and is left out.
    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.varint(u64::from(field) << 3);
            self.varint(v);
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.varint(u64::from(field) << 3 | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn message(&mut self, field: u32, build: impl FnOnce(&mut Encoder)) {
        let mut inner = Encoder::default();
        build(&mut inner);
        self.bytes(field, &inner.0);
    }

    /// A packed repeated varint field.
    fn packed(&mut self, field: u32, values: impl IntoIterator<Item = u64>) {
        let mut inner = Encoder::default();
        for v in values {
            inner.varint(v);
        }
        if !inner.0.is_empty() {
            self.bytes(field, &inner.0);
        }
    }
}

/// The string table: "" at index 0, each string once.
#[derive(Default)]
struct Strings {
    ids: HashMap<String, u64>,
    list: Vec<String>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u64 {
        if self.list.is_empty() {
            self.list.push(String::new());
            self.ids.insert(String::new(), 0);
        }
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        self.list.push(s.to_string());
        self.ids.insert(s.to_string(), self.list.len() as u64 - 1);
        self.list.len() as u64 - 1
    }
}

// Field numbers of perftools.profiles.Profile and its messages.
mod field {
    pub const SAMPLE_TYPE: u32 = 1;
    pub const SAMPLE: u32 = 2;
    pub const MAPPING: u32 = 3;
    pub const LOCATION: u32 = 4;
    pub const FUNCTION: u32 = 5;
    pub const STRING_TABLE: u32 = 6;
    pub const TIME_NANOS: u32 = 9;
    pub const DURATION_NANOS: u32 = 10;
    pub const PERIOD_TYPE: u32 = 11;
    pub const PERIOD: u32 = 12;
    pub const DEFAULT_SAMPLE_TYPE: u32 = 14;
}

struct Mapping {
    id: u64,
    start: u64,
    limit: u64,
    filename: String,
    build_id: String,
    has_filenames: bool,
    has_inline_frames: bool,
}

/// Encodes `profile` and writes it gzip-compressed.
pub(super) fn write(profile: &Profile, out: &mut impl Write) -> io::Result<()> {
    let mut strings = Strings::default();
    strings.id("");
    let mut msg = Encoder::default();
    write_samples(&mut msg, &mut strings, profile);
    let location_mapping = write_mappings(&mut msg, &mut strings, profile);
    write_locations(&mut msg, &mut strings, profile, &location_mapping);
    write_period(&mut msg, &mut strings, profile);
    for s in &strings.list {
        msg.bytes(field::STRING_TABLE, s.as_bytes());
    }
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&msg.0)?;
    gz.finish()?;
    Ok(())
}

/// Sample types, then the samples in a stable order (leaf first in pprof).
fn write_samples(msg: &mut Encoder, strings: &mut Strings, profile: &Profile) {
    let period = profile.period_ns();
    let time = if profile.off_cpu { "off-cpu" } else { "cpu" };
    for (kind, unit) in [("samples", "count"), (time, "nanoseconds")] {
        let (kind, unit) = (strings.id(kind), strings.id(unit));
        msg.message(field::SAMPLE_TYPE, |m| {
            m.uint(1, kind);
            m.uint(2, unit);
        });
    }
    let mut stacks: Vec<(&Vec<u32>, &u64)> = profile.stacks.iter().collect();
    stacks.sort();
    for (stack, &count) in stacks {
        msg.message(field::SAMPLE, |m| {
            m.packed(1, stack.iter().rev().map(|&id| u64::from(id)));
            let ns = if profile.off_cpu { profile.blocked_ns.get(stack).copied().unwrap_or(0) } else { count * period };
            m.packed(2, [count, ns]);
        });
    }
}

/// One mapping per module (kernel, or binary + build id). Returns the
/// mapping id of each location (0: none).
fn write_mappings(msg: &mut Encoder, strings: &mut Strings, profile: &Profile) -> Vec<u64> {
    let mut mappings: Vec<Mapping> = Vec::new();
    let mut mapping_of: HashMap<(String, String), usize> = HashMap::new();
    let mut location_mapping = Vec::with_capacity(profile.locations.len());
    for location in &profile.locations {
        let Some(module) = &location.module else {
            location_mapping.push(0);
            continue;
        };
        let build_id = location.build_id.map(|b| b.to_string()).unwrap_or_default();
        let key = (module.to_string(), build_id.clone());
        let index = *mapping_of.entry(key).or_insert_with(|| {
            mappings.push(Mapping {
                id: mappings.len() as u64 + 1,
                start: u64::MAX,
                limit: 0,
                filename: if location.kernel { "[kernel.kallsyms]".into() } else { module.to_string() },
                build_id,
                has_filenames: false,
                has_inline_frames: false,
            });
            mappings.len() - 1
        });
        let m = &mut mappings[index];
        m.start = m.start.min(location.address);
        m.limit = m.limit.max(location.address.saturating_add(1));
        m.has_filenames |= location.frames.iter().any(|f| f.file.is_some());
        m.has_inline_frames |= location.frames.len() > 1;
        location_mapping.push(m.id);
    }
    for m in &mappings {
        let (filename, build_id) = (strings.id(&m.filename), strings.id(&m.build_id));
        msg.message(field::MAPPING, |e| {
            e.uint(1, m.id);
            e.uint(2, m.start);
            e.uint(3, m.limit);
            e.uint(5, filename);
            e.uint(6, build_id);
            e.uint(7, 1); // has_functions: nothing for pprof to symbolize
            e.uint(8, u64::from(m.has_filenames));
            e.uint(9, u64::from(m.has_filenames));
            e.uint(10, u64::from(m.has_inline_frames));
        });
    }
    location_mapping
}

/// Locations with their lines (innermost first), and the functions they
/// name, by (name, file).
fn write_locations(msg: &mut Encoder, strings: &mut Strings, profile: &Profile, location_mapping: &[u64]) {
    let mut functions: Vec<(u64, u64)> = Vec::new(); // (name, filename) string ids
    let mut function_of: HashMap<(u64, u64), u64> = HashMap::new();
    for (i, location) in profile.locations.iter().enumerate() {
        let mut lines = Vec::with_capacity(location.frames.len());
        for frame in &location.frames {
            let key = (strings.id(&frame.function), strings.id(frame.file.as_deref().unwrap_or("")));
            let id = *function_of.entry(key).or_insert_with(|| {
                functions.push(key);
                functions.len() as u64
            });
            lines.push((id, frame.line.unwrap_or(0)));
        }
        msg.message(field::LOCATION, |m| {
            m.uint(1, i as u64 + 1);
            m.uint(2, location_mapping[i]);
            m.uint(3, location.address);
            for (function, line) in lines {
                m.message(4, |l| {
                    l.uint(1, function);
                    l.uint(2, u64::from(line));
                });
            }
        });
    }
    for (i, &(name, filename)) in functions.iter().enumerate() {
        msg.message(field::FUNCTION, |m| {
            m.uint(1, i as u64 + 1);
            m.uint(2, name);
            m.uint(3, name);
            m.uint(4, filename);
        });
    }
}

/// Time, duration and the sampling period.
fn write_period(msg: &mut Encoder, strings: &mut Strings, profile: &Profile) {
    let (cpu, nanoseconds) = (strings.id(if profile.off_cpu { "off-cpu" } else { "cpu" }), strings.id("nanoseconds"));
    msg.uint(field::TIME_NANOS, profile.first_wall_ns.unwrap_or(0).max(0) as u64);
    msg.uint(field::DURATION_NANOS, profile.duration_ns());
    msg.message(field::PERIOD_TYPE, |m| {
        m.uint(1, cpu);
        m.uint(2, nanoseconds);
    });
    msg.uint(field::PERIOD, if profile.off_cpu { 1 } else { profile.period_ns() });
    msg.uint(field::DEFAULT_SAMPLE_TYPE, cpu);
}
