//! The BPF programs of user tracepoints (`gen/pt_tracepoints.bpf.c`): one per
//! tracepoint, attached to its classic tracepoint, filling the record the
//! registry laid out through the generated emit wrappers.

use std::fmt::Write;

use super::{Read, Tracepoint, Value};
use crate::c::BANNER;

/// A C integer type of this width.
fn c_int(bytes: u32, signed: bool) -> String {
    format!("__{}{}", if signed { "s" } else { "u" }, bytes * 8)
}

/// The local flavor of the record struct: only the members read, typed as
/// at build; CO-RE finds them in the running kernel's struct by name.
fn record_struct(o: &mut String, tp: &Tracepoint, record: &str) {
    // Enums: CO-RE matches a member of enum type only with an enum of the
    // same name (flavored, like the struct, so each tracepoint has its own).
    for a in &tp.attrs {
        if let Value::Enum { name, .. } = &a.value {
            let _ = writeln!(o, "enum {name}___pt_{k} {{ pt_{k}_a_{}_any }};", a.name, k = tp.kind);
        }
    }
    let _ = writeln!(o, "struct {record}___pt_{} {{", tp.kind);
    for a in &tp.attrs {
        let Read::Member(m) = &a.read else { continue };
        let _ = match &a.value {
            Value::Int { bytes, signed } => writeln!(o, "\t{} {m};", c_int(*bytes, *signed)),
            Value::Enum { name, .. } => writeln!(o, "\tenum {name}___pt_{} {m};", tp.kind),
            Value::Pointer => writeln!(o, "\tvoid *{m};"),
            Value::KernelString => writeln!(o, "\tconst char *{m};"),
            Value::CharArray(n) => writeln!(o, "\tchar {m}[{n}];"),
            Value::Bytes(n) => writeln!(o, "\t__u8 {m}[{n}];"),
            Value::DataLoc { .. } => writeln!(o, "\t__u32 {m};"),
            Value::UserString => Ok(()),
        };
    }
    o.push_str("} __attribute__((preserve_access_index));\n\n");
}

/// The expression of an inline attribute, cut to its width.
fn int_expr(read: &Read, ty: &str) -> String {
    match read {
        Read::SyscallArg(i) => format!("({ty})ctx->args[{i}]"),
        Read::SyscallRet => format!("({ty})ctx->ret"),
        Read::Member(m) => format!("({ty})ctx->{m}"),
    }
}

/// The statement appending a variable attribute.
fn append(tp: &Tracepoint, name: &str, read: &Read, value: &Value) -> String {
    let f = format!("pt_{}_a_{}", tp.kind, name);
    let src = match read {
        Read::SyscallArg(i) => format!("(const void *)ctx->args[{i}]"),
        Read::SyscallRet => "(const void *)ctx->ret".to_string(),
        Read::Member(m) => format!("ctx->{m}"),
    };
    match value {
        Value::UserString => format!("\t\t{f}_ustr(&e, {src});\n"),
        Value::KernelString | Value::CharArray(_) => format!("\t\t{f}_kstr(&e, {src});\n"),
        Value::Bytes(n) => format!("\t\t{f}_kmem(&e, {src}, {n});\n"),
        Value::DataLoc { string } => {
            let at = format!("(const void *)ctx + ({src} & 0xffff)");
            if *string {
                format!("\t\t{f}_kstr(&e, {at});\n")
            } else {
                format!("\t\t{f}_kmem(&e, {at}, {src} >> 16);\n")
            }
        }
        Value::Int { .. } | Value::Pointer | Value::Enum { .. } => String::new(),
    }
}

fn program(o: &mut String, tp: &Tracepoint) {
    let (k, u) = (&tp.kind, tp.kind.to_uppercase());
    let ctx = match (&tp.record, tp.event.starts_with("sys_exit_")) {
        (Some(record), _) => {
            record_struct(o, tp, record);
            format!("struct {record}___pt_{}", tp.kind)
        }
        (None, true) => "struct trace_event_raw_sys_exit".into(),
        (None, false) => "struct trace_event_raw_sys_enter".into(),
    };
    let _ = writeln!(o, "SEC(\"tracepoint/{}/{}\")", tp.category, tp.event);
    let _ = writeln!(o, "int {}({ctx} *ctx)\n{{", tp.program());
    let _ = writeln!(o, "\tstruct pt_{k} *r;\n\tstruct pt_emit e;\n");
    o.push_str("\tif (!pt_traced_current())\n\t\treturn 0;\n");
    let _ = writeln!(o, "\tr = pt_{k}_open(&e, bpf_get_current_pid_tgid());\n\tif (!r)\n\t\treturn 0;");
    o.push_str("\tbpf_get_current_comm(r->comm, sizeof(r->comm));\n");
    let mut appends = String::new();
    for a in &tp.attrs {
        match &a.value {
            Value::Int { bytes, signed } => {
                let _ = writeln!(o, "\tr->a_{} = {};", a.name, int_expr(&a.read, &c_int(*bytes, *signed)));
            }
            Value::Pointer => {
                let _ = writeln!(o, "\tr->a_{} = {};", a.name, int_expr(&a.read, "__u64"));
            }
            Value::Enum { signed, .. } => {
                let _ = writeln!(o, "\tr->a_{} = {};", a.name, int_expr(&a.read, &c_int(4, *signed)));
            }
            value => appends.push_str(&append(tp, &a.name, &a.read, value)),
        }
    }
    if !appends.is_empty() {
        let _ = writeln!(o, "\tif (pt_{k}_reserve(&e, PT_{u}_DATA_MAX)) {{\n{appends}\t}}");
    }
    let _ = writeln!(o, "\tpt_{k}_commit(&e);\n\treturn 0;\n}}\n");
}

/// The whole file; without tracepoints it has no programs, but still
/// changes, so make relinks the object when the last one goes.
pub fn source(tps: &[Tracepoint]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "// SPDX-License-Identifier: Apache-2.0\n/* {BANNER} (from PROCTAP_EVENTS) */");
    o.push_str("#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_core_read.h>\n");
    o.push_str("#include \"pt_kinds.bpf.h\"\n#include \"lib/filter.bpf.h\"\n\n");
    for tp in tps {
        let _ = writeln!(o, "/* ---- {} ---- */", tp.full_name());
        program(&mut o, tp);
    }
    if tps.is_empty() {
        o.push_str("/* No tracepoints declared (PROCTAP_EVENTS unset). */\n");
    }
    o
}
