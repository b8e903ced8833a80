//! `pt_kinds.bpf.h`: per kind, typed wrappers around the one emit path of
//! c/bpf/lib/emit.bpf.h, with every bound the verifier needs as a constant
//! (or a knob, read-only data the loader sets before load).

use std::fmt::Write;

use crate::c::{cap_expr, BANNER};
use crate::registry::{DataType, Kind, Registry};

/// Appenders a data type offers: (suffix, parameters, call of the generic helper).
fn appenders(ty: DataType, pieces: bool) -> &'static [(&'static str, &'static str, &'static str)] {
    const STR: &[(&str, &str, &str)] = &[
        ("kstr", "const void *src", "pt_emit_str(e, LEN, OFF, CAP, src, false)"),
        ("ustr", "const void *src", "pt_emit_str(e, LEN, OFF, CAP, src, true)"),
    ];
    const MEM: &[(&str, &str, &str)] = &[
        ("kmem", "const void *src, __u32 n", "pt_emit_mem(e, LEN, OFF, CAP, src, n, false)"),
        ("umem", "const void *src, __u32 n", "pt_emit_mem(e, LEN, OFF, CAP, src, n, true)"),
    ];
    const ARGV: &[(&str, &str, &str)] = &[
        ("kmem", "const void *src, __u32 n", "pt_emit_mem(e, LEN, OFF, CAP, src, n, false)"),
        ("umem", "const void *src, __u32 n", "pt_emit_mem(e, LEN, OFF, CAP, src, n, true)"),
        ("upiece", "const void *src", "pt_emit_piece(e, LEN, OFF, CAP, src)"),
    ];
    const PIECES: &[(&str, &str, &str)] = &[
        ("kmem", "const void *src, __u32 n", "pt_emit_mem(e, LEN, OFF, CAP, src, n, false)"),
        ("umem", "const void *src, __u32 n", "pt_emit_mem(e, LEN, OFF, CAP, src, n, true)"),
        ("upiece", "const void *src, __u32 n", "pt_emit_mem_piece(e, LEN, OFF, CAP, src, n)"),
    ];
    const STACK: &[(&str, &str, &str)] =
        &[("get", "void *ctx, __u64 flags", "pt_emit_stack(e, LEN, OFF, CAP, ctx, flags)")];
    match ty {
        DataType::String => STR,
        DataType::Argv => ARGV,
        DataType::Bytes if pieces => PIECES,
        DataType::Bytes => MEM,
        DataType::KStack | DataType::UStack => STACK,
    }
}

fn kind_helpers(o: &mut String, reg: &Registry, k: &Kind) {
    let (s, u) = (&k.c_name, k.upper());
    let _ = writeln!(o, "\n/* ---- {} ---- */", k.name);
    let _ = writeln!(o, "/* Opens a record (metadata reserved and zeroed, header filled); NULL when the");
    let _ = writeln!(o, " * ring is full, which is counted. Every opened record must be committed. */");
    let _ = writeln!(o, "static __always_inline struct pt_{s} *pt_{s}_open(struct pt_emit *e, __u64 pid_tgid)\n{{");
    let _ = writeln!(o, "\treturn pt_emit_open(e, PT_KIND_{u}, sizeof(struct pt_{s}), pid_tgid);\n}}");
    if !k.data.is_empty() {
        let _ = writeln!(o, "/* Reserves `need` bytes (at most PT_{u}_DATA_MAX) for the variable fields;");
        let _ = writeln!(o, " * false, with data_lost set and counted, when the data pages are full. */");
        let _ = writeln!(o, "static __always_inline bool pt_{s}_reserve(struct pt_emit *e, __u32 need)\n{{");
        let _ = writeln!(o, "\treturn pt_emit_reserve(e, need, PT_{u}_DATA_MAX);\n}}");
    }
    let mut off_max: Vec<String> = Vec::new();
    for d in &k.data {
        let off = if off_max.is_empty() { "0".to_string() } else { format!("({})", off_max.join(" + ")) };
        let cap = cap_expr(reg, &d.cap);
        let len = format!("&((struct pt_{s} *)e->hdr)->{}_len", d.name);
        for (suffix, params, call) in appenders(d.ty, d.pieces) {
            let call = call.replace("LEN", &len).replace("OFF", &off).replace("CAP", &cap);
            let _ =
                writeln!(o, "static __always_inline long pt_{s}_{}_{suffix}(struct pt_emit *e, {params})\n{{", d.name);
            let _ = writeln!(o, "\treturn {call};\n}}");
        }
        off_max.push(cap);
    }
    for f in &k.flags {
        let _ = writeln!(o, "static __always_inline void pt_{s}_set_{}(struct pt_emit *e)\n{{", f.name);
        let _ = writeln!(o, "\tpt_emit_flag(e, PT_{u}_F_{});", f.name.to_uppercase());
        if f.counter.is_some() {
            let _ = writeln!(o, "\tpt_emit_count(e, PT_CTR_{u}_{});", f.name.to_uppercase());
        }
        o.push_str("}\n");
    }
    for c in &k.counters {
        let _ = writeln!(o, "static __always_inline void pt_{s}_count_{}(struct pt_emit *e)\n{{", c.name);
        let _ = writeln!(o, "\tpt_emit_count(e, PT_CTR_{u}_{});\n}}", c.name.to_uppercase());
    }
    let _ = writeln!(o, "static __always_inline void pt_{s}_commit(struct pt_emit *e)\n{{");
    let _ = writeln!(o, "\tpt_emit_commit(e, {});\n}}", k.lazy_wake);
}

pub fn helpers(reg: &Registry) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "/* SPDX-License-Identifier: Apache-2.0 */\n/* {BANNER} */");
    o.push_str("#ifndef PT_KINDS_BPF_H\n#define PT_KINDS_BPF_H\n\n#include \"lib/emit.bpf.h\"\n\n");
    o.push_str("/* Knobs: caps of variable fields, set by the loader from the config before load. */\n");
    for knob in &reg.knobs {
        let _ = writeln!(o, "const volatile __u32 pt_knob_{} __weak = {};", knob.name, knob.default);
    }
    for k in reg.kinds.iter().filter(|k| k.from_kernel()) {
        kind_helpers(&mut o, reg, k);
    }
    o.push_str("\n#endif /* PT_KINDS_BPF_H */\n");
    o
}
