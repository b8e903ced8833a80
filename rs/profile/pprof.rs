//! The pprof output: `profile.proto` (perftools.profiles) messages
//! ([`super::proto`], prost), gzip-compressed.

use std::collections::HashMap;
use std::io::{self, Write};

use prost::Message;

use super::aggregate::Profile;
use super::proto;

/// The string table: "" at index 0, each string once.
#[derive(Default)]
struct Strings {
    ids: HashMap<String, i64>,
    list: Vec<String>,
}

impl Strings {
    fn id(&mut self, s: &str) -> i64 {
        if self.list.is_empty() {
            self.list.push(String::new());
            self.ids.insert(String::new(), 0);
        }
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        self.list.push(s.to_string());
        self.ids.insert(s.to_string(), self.list.len() as i64 - 1);
        self.list.len() as i64 - 1
    }
}

/// Encodes `profile` and writes it gzip-compressed.
pub(super) fn write(profile: &Profile, out: &mut impl Write) -> io::Result<()> {
    let mut strings = Strings::default();
    strings.id("");
    let mut msg = proto::Profile::default();
    write_samples(&mut msg, &mut strings, profile);
    let location_mapping = write_mappings(&mut msg, &mut strings, profile);
    write_locations(&mut msg, &mut strings, profile, &location_mapping);
    write_period(&mut msg, &mut strings, profile);
    msg.string_table = strings.list;
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&msg.encode_to_vec())?;
    gz.finish()?;
    Ok(())
}

/// Sample types, then the samples in a stable order (leaf first in pprof),
/// each labelled with its command name, pid and tid (the last two up to
/// [`Profile::max_threads`](super::Profile::max_threads) threads).
fn write_samples(msg: &mut proto::Profile, strings: &mut Strings, profile: &Profile) {
    let period = profile.period_ns();
    let time = if profile.off_cpu { "off-cpu" } else { "cpu" };
    for (kind, unit) in [("samples", "count"), (time, "nanoseconds")] {
        msg.sample_type.push(proto::ValueType { r#type: strings.id(kind), unit: strings.id(unit) });
    }
    let [comm, pid, tid] = ["comm", "pid", "tid"].map(|key| strings.id(key));
    let mut stacks: Vec<_> = profile.counts.iter().collect();
    stacks.sort_by_key(|(key, _)| (profile.comm(key), key.thread, profile.stack(key)));
    for (key, tally) in stacks {
        let ns = if profile.off_cpu { tally.blocked_ns } else { tally.samples * period };
        let number = |key, num: u32| proto::Label { key, str: 0, num: i64::from(num) };
        let mut label = vec![proto::Label { key: comm, str: strings.id(profile.comm(key)), num: 0 }];
        if let Some((p, t)) = key.thread {
            label.extend([number(pid, p), number(tid, t)]);
        }
        msg.sample.push(proto::Sample {
            location_id: profile.stack(key).iter().rev().map(|&id| u64::from(id)).collect(),
            value: vec![tally.samples as i64, ns as i64],
            label,
        });
    }
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

/// One mapping per module (kernel, or binary + build id). Returns the
/// mapping id of each location (0: none).
fn write_mappings(msg: &mut proto::Profile, strings: &mut Strings, profile: &Profile) -> Vec<u64> {
    let mut mappings: Vec<Mapping> = Vec::new();
    let mut mapping_of: HashMap<(String, String), usize> = HashMap::new();
    let mut location_mapping = Vec::with_capacity(profile.locations.len());
    for location in profile.locations.iter() {
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
        msg.mapping.push(proto::Mapping {
            id: m.id,
            memory_start: m.start,
            memory_limit: m.limit,
            file_offset: 0,
            filename: strings.id(&m.filename),
            build_id: strings.id(&m.build_id),
            has_functions: true, // nothing for pprof to symbolize
            has_filenames: m.has_filenames,
            has_line_numbers: m.has_filenames,
            has_inline_frames: m.has_inline_frames,
        });
    }
    location_mapping
}

/// Locations with their lines (innermost first), and the functions they
/// name, by (name, file).
fn write_locations(msg: &mut proto::Profile, strings: &mut Strings, profile: &Profile, location_mapping: &[u64]) {
    let mut functions: Vec<(i64, i64)> = Vec::new(); // (name, filename) string ids
    let mut function_of: HashMap<(i64, i64), u64> = HashMap::new();
    for (i, location) in profile.locations.iter().enumerate() {
        let mut line = Vec::with_capacity(location.frames.len());
        for frame in &location.frames {
            let key = (strings.id(&frame.function), strings.id(frame.file.as_deref().unwrap_or("")));
            let function_id = *function_of.entry(key).or_insert_with(|| {
                functions.push(key);
                functions.len() as u64
            });
            line.push(proto::Line { function_id, line: i64::from(frame.line.unwrap_or(0)) });
        }
        msg.location.push(proto::Location {
            id: i as u64 + 1,
            mapping_id: location_mapping[i],
            address: location.address,
            line,
        });
    }
    for (i, &(name, filename)) in functions.iter().enumerate() {
        msg.function.push(proto::Function { id: i as u64 + 1, name, system_name: name, filename });
    }
}

/// Time, duration and the sampling period.
fn write_period(msg: &mut proto::Profile, strings: &mut Strings, profile: &Profile) {
    let kind = strings.id(if profile.off_cpu { "off-cpu" } else { "cpu" });
    msg.time_nanos = profile.first_wall_ns.unwrap_or(0).max(0);
    msg.duration_nanos = profile.duration_ns() as i64;
    msg.period_type = Some(proto::ValueType { r#type: kind, unit: strings.id("nanoseconds") });
    msg.period = if profile.off_cpu { 1 } else { profile.period_ns() as i64 };
    msg.default_sample_type = kind;
}
