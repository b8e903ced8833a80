//! The JSON Schema of the events' JSON lines: one definition per kind, made
//! from its declaration, so the reference cannot drift from what the
//! dumpers print (tests/schema.rs checks real output against it).
//!
//! Besides the kinds, it defines the fields the dumpers add to events
//! (process identity, container context) and the lines that are not events:
//! the final stats line and the L7 records.

use serde_json::{json, Map, Value};

use crate::registry::Registry;
use crate::registry::{DataType, Field, FieldType, FlagJson, Item, Kind};

/// Fields the dumpers add to an event of a process (--exec-ids, --ancestors).
const IDENTITY: [&str; 4] = ["exec_id", "parent_exec_id", "parent", "ancestors"];
/// Fields the dumpers add to an event with a cgroup id (--containers).
const CONTAINER: [&str; 3] = ["cgroup", "container_id", "pod_uid"];

/// The schema document (pretty-printed, ending in a newline).
pub fn document(reg: &Registry) -> String {
    let mut defs = common_defs();
    let mut kinds = Vec::new();
    for k in &reg.kinds {
        defs.insert(k.json_type().to_string(), kind_schema(k));
        kinds.push(json!({ "$ref": format!("#/$defs/{}", k.json_type()) }));
    }
    kinds.push(json!({ "$ref": "#/$defs/l7" }));
    let doc = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://docs.rs/proctap/schema/events.json",
        "title": "proctap JSON lines",
        "description": "Each line the dumpers (examples/dump.rs, the C ./example, `proctap trace`) print on stdout is one of these objects, told apart by \"type\". Generated from c/events by proctap-codegen: do not edit.",
        "oneOf": kinds,
        "$defs": defs,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

fn uint(bits: u32) -> Value {
    json!({ "$ref": format!("#/$defs/u{bits}") })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}") })
}

fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [schema, { "type": "null" }] })
}

/// The value types every kind's fields are made of, and the added fields.
fn common_defs() -> Map<String, Value> {
    let mut defs = Map::new();
    for bits in [8u32, 16, 32, 64] {
        let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        defs.insert(format!("u{bits}"), json!({ "type": "integer", "minimum": 0, "maximum": max }));
    }
    defs.insert("i32".into(), json!({ "type": "integer", "minimum": i32::MIN, "maximum": i32::MAX }));
    defs.insert("i64".into(), json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }));
    defs.insert(
        "bytes".into(),
        json!({
            "description": "Bytes: a string when they are UTF-8, else every byte as two lowercase hex digits.",
            "oneOf": [
                { "type": "string" },
                { "type": "object", "properties": { "hex": { "type": "string", "pattern": "^([0-9a-f]{2})*$" } },
                  "required": ["hex"], "additionalProperties": false }
            ]
        }),
    );
    defs.insert(
        "time".into(),
        json!({ "type": "string", "description": "Wall-clock time of ts_ns, RFC 3339 UTC with nanoseconds.",
                "pattern": "^-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z$" }),
    );
    defs.insert(
        "address".into(),
        json!({ "type": "string", "description": "Hexadecimal, 0x first.", "pattern": "^0x[0-9a-f]+$" }),
    );
    defs.insert(
        "errno".into(),
        json!({ "type": "object", "properties": { "errno": reference("i32") }, "required": ["errno"],
                "additionalProperties": false }),
    );
    defs.insert(
        "sockaddr".into(),
        json!({ "type": ["string", "null"], "description": "ADDR:PORT, or [ADDR]:PORT for IPv6 (IPv4-mapped shown as IPv4); null when absent." }),
    );
    defs.insert(
        "exec_id".into(),
        json!({ "type": "string", "description": "BOOT_ID:START_TICKS:PID (proctap::process).",
                "pattern": "^[0-9a-f-]+:[0-9]+:[0-9]+$" }),
    );
    defs.insert("process".into(), process_def());
    defs.insert("l7".into(), l7_def());
    defs.insert("stats".into(), stats_def());
    defs
}

/// A process of the table, as `parent` and each of `ancestors` show it.
fn process_def() -> Value {
    json!({
        "type": "object",
        "description": "A process the table knows (--ancestors).",
        "properties": {
            "exec_id": reference("exec_id"),
            "pid": uint(32),
            "ppid": uint(32),
            "parent_exec_id": nullable(reference("exec_id")),
            "comm": reference("bytes"),
            "filename": reference("bytes"),
            "argv": { "type": "array", "items": reference("bytes") },
            "origin": { "enum": ["procfs", "fork", "exec"] },
            "exited": { "type": "boolean" }
        },
        "required": ["exec_id", "pid", "ppid", "parent_exec_id", "comm", "filename", "argv", "origin", "exited"],
        "additionalProperties": false
    })
}

/// The dumper's L7 records (--net): a request and its response, paired.
fn l7_def() -> Value {
    json!({
        "type": "object",
        "description": "A request and its response on one connection (--net; proctap::l7::Record). request and response are the protocol's own objects, null when one side is missing.",
        "properties": {
            "type": { "const": "l7" },
            "protocol": { "type": "string" },
            "pid": uint(32),
            "tid": uint(32),
            "comm": { "type": "string" },
            "conn_id": uint(64),
            "role": { "enum": ["client", "server"] },
            "local": reference("sockaddr"),
            "remote": reference("sockaddr"),
            "start_ns": uint(64),
            "end_ns": uint(64),
            "latency_ns": uint(64),
            "request": { "type": ["object", "null"] },
            "response": { "type": ["object", "null"] },
            "request_bytes": uint(64),
            "response_bytes": uint(64),
            "truncated": { "type": "boolean" }
        },
        "required": ["type", "protocol", "pid", "tid", "comm", "conn_id", "role", "local", "remote", "start_ns",
                     "end_ns", "latency_ns", "request", "response", "request_bytes", "response_bytes", "truncated"],
        "additionalProperties": false
    })
}

/// The dumpers' last line on stderr: every loss counter at the top level
/// (and, from the Rust dumper, the whole proctap::Stats under "detail").
fn stats_def() -> Value {
    let counters = [
        "events",
        "exec",
        "exit",
        "reserve_failures",
        "dropped_data",
        "invalid",
        "oversize",
        "abandoned",
        "undelivered",
        "ring_stalls",
        "missed_runs",
        "argv_truncated",
        "argv_fault",
    ];
    let mut properties = Map::new();
    properties.insert("type".into(), json!({ "const": "stats" }));
    for c in counters {
        properties.insert(c.into(), uint(64));
    }
    properties.insert(
        "l7_evicted".into(),
        json!({ "type": "object", "description": "--net: what the L7 tracker could not keep or pair." }),
    );
    properties.insert(
        "detail".into(),
        json!({ "type": "object", "description": "proctap::Stats: every counter, per kind." }),
    );
    properties.insert(
        "interval".into(),
        json!({ "const": true, "description": "A periodic line (proctap trace --stats-interval), not the final one." }),
    );
    properties.insert(
        "elapsed_ms".into(),
        json!({ "allOf": [uint(64)], "description": "A periodic line's time since tracing started." }),
    );
    properties.insert("otlp".into(), json!({ "type": "object", "description": "proctap export: the exporter's counts (proctap::otlp::ExportStats)." }));
    properties.insert(
        "arrow_files".into(),
        json!({ "type": "array", "items": { "type": "string" }, "description": "proctap trace --format arrow: the files written." }),
    );
    let mut required: Vec<&str> = vec!["type"];
    required.extend(counters);
    json!({
        "type": "object",
        "description": "The dumpers' final line on stderr: every loss counter at the top level; the Rust dumper adds \"detail\" (proctap::Stats: every counter per kind) and, with --net, \"l7_evicted\".",
        "properties": properties,
        "required": required,
    })
}

/// One kind's object: its fields in the order the dumpers print them.
fn kind_schema(k: &Kind) -> Value {
    let mut props = Map::new();
    let mut required = vec!["type".to_string()];
    let mut add = |props: &mut Map<String, Value>, name: &str, schema: Value, always: bool| {
        props.insert(name.to_string(), schema);
        if always {
            required.push(name.to_string());
        }
    };
    add(&mut props, "type", json!({ "const": k.json_type() }), false);
    add(&mut props, "ts_ns", uint(64), true);
    add(&mut props, "time", reference("time"), true);
    for h in k.header_fields() {
        let schema = match h.rust_type {
            "u16" => uint(16),
            "u32" => uint(32),
            _ => uint(64),
        };
        add(&mut props, h.name, with_doc(schema, h.doc), true);
    }
    let (fields, args): (Vec<Item>, Vec<Item>) = k.items().into_iter().partition(|i| !is_arg(i));
    for item in &fields {
        for (name, schema, always) in item_schemas(item) {
            add(&mut props, &name, schema, always);
        }
    }
    if k.has_args() {
        let mut arg_props = Map::new();
        for item in &args {
            for (name, schema, _) in item_schemas(item) {
                arg_props.insert(name, schema);
            }
        }
        let names: Vec<&String> = arg_props.keys().collect();
        let schema = json!({ "type": "object", "properties": arg_props.clone(), "required": names,
                             "additionalProperties": false });
        add(&mut props, "args", schema, true);
    }
    for f in &k.flags {
        match f.json {
            FlagJson::Always => add(&mut props, &f.name, with_doc(json!({ "type": "boolean" }), &f.doc), true),
            FlagJson::IfSet => add(&mut props, &f.name, with_doc(json!({ "const": true }), &f.doc), false),
            FlagJson::Never => {}
        }
    }
    if k.generic() {
        let doc = "The data pages were full: the variable fields are empty (counted in stats).";
        add(&mut props, "data_lost", with_doc(json!({ "type": "boolean" }), doc), true);
    }
    added_fields(k, &mut props);
    json!({
        "type": "object",
        "description": k.doc,
        "properties": props,
        "required": required,
        "additionalProperties": false
    })
}

/// The dumpers' optional additions: identity for a kind with a process
/// start, container context for one with a cgroup id.
fn added_fields(k: &Kind, props: &mut Map<String, Value>) {
    if k.proc_start {
        let schemas = [
            reference("exec_id"),
            nullable(reference("exec_id")),
            nullable(reference("process")),
            json!({ "type": "array", "items": reference("process") }),
        ];
        for (name, schema) in IDENTITY.into_iter().zip(schemas) {
            props.insert(name.into(), schema);
        }
    }
    if k.fields.iter().any(|f| f.rust == "cgroup_id" && !f.arg) {
        for name in CONTAINER {
            props.insert(name.into(), json!({ "type": ["string", "null"] }));
        }
    }
}

fn is_arg(item: &Item) -> bool {
    matches!(item, Item::Field(f) if f.arg) || matches!(item, Item::Data(d) if d.arg)
}

fn with_doc(mut schema: Value, doc: &str) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("description".into(), Value::String(doc.to_string()));
    }
    schema
}

/// The JSON members one item makes: (name, schema, always present).
fn item_schemas(item: &Item) -> Vec<(String, Value, bool)> {
    match item {
        Item::Field(f) if f.json => field_schemas(f),
        Item::Data(d) if d.json => {
            let schema = match d.ty {
                DataType::String | DataType::Bytes => reference("bytes"),
                DataType::Argv => json!({ "type": "array", "items": reference("bytes") }),
                DataType::KStack | DataType::UStack => json!({ "type": "array", "items": reference("address") }),
            };
            vec![(d.key.clone(), with_doc(schema, &d.doc), true)]
        }
        _ => Vec::new(),
    }
}

fn field_schemas(f: &Field) -> Vec<(String, Value, bool)> {
    let n = f.rust.clone();
    let mut out = match &f.ty {
        FieldType::Int { bits, signed: false } => vec![(n, uint(*bits), true)],
        FieldType::Int { bits, signed: true } => vec![(n, reference(&format!("i{bits}")), true)],
        FieldType::Comm => vec![(n, reference("bytes"), true)],
        FieldType::ExitStatus => vec![
            ("exit_code".into(), uint(8), true),
            ("signal".into(), nullable(uint(8)), true),
            ("core_dumped".into(), json!({ "type": "boolean" }), true),
        ],
        FieldType::Errno => vec![(n, reference("errno"), false)],
        FieldType::Result => {
            vec![(n, nullable(reference("i64")), true), ("errno".into(), nullable(reference("i32")), true)]
        }
        FieldType::Kind => vec![(n, json!({ "type": "string" }), true)],
        FieldType::Enum(values) => {
            let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
            vec![(n, json!({ "enum": names }), true)]
        }
        FieldType::SockAddr => vec![(n, reference("sockaddr"), true)],
    };
    if let Some((name, schema, _)) = out.first_mut() {
        if *name == f.rust {
            *schema = with_doc(schema.clone(), &f.doc);
        }
    }
    if let Some(since) = &f.since {
        out.push((since.clone(), uint(64), true));
    }
    out
}
