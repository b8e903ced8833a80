//! The C JSON printer of every kind (`pt_json.c`), built on the helpers of
//! c/loader/json.h. Field order and formatting match the Rust serializer
//! (rust.rs): both walk the same lists in the same order.

use std::fmt::Write;

use crate::c::BANNER;
use crate::registry::{DataType, Field, FieldType, FlagJson, Item, Kind, Registry};

/// Prints one fixed field (and what it derives).
fn field(o: &mut String, f: &Field) {
    let (key, field) = (&f.rust, format!("r->{}", f.name));
    let _ = match &f.ty {
        FieldType::Int { signed: false, .. } => writeln!(o, "\tpt_json_u64(j, \"{key}\", {field});"),
        FieldType::Int { signed: true, .. } => writeln!(o, "\tpt_json_i64(j, \"{key}\", {field});"),
        FieldType::Comm => writeln!(o, "\tpt_json_comm(j, \"{key}\", {field});"),
        FieldType::ExitStatus => writeln!(o, "\tpt_json_exit_status(j, {field});"),
        FieldType::Errno => writeln!(o, "\tpt_json_errno(j, \"{key}\", {field});"),
        FieldType::Result => writeln!(o, "\tpt_json_result(j, \"{key}\", {field});"),
        FieldType::SockAddr => writeln!(o, "\tpt_json_sockaddr(j, \"{key}\", &{field});"),
        FieldType::Kind => writeln!(o, "\tpt_json_str(j, \"{key}\", proctap_kind_name({field}));"),
        FieldType::Enum(values) => {
            let _ = writeln!(o, "\tswitch ({field}) {{");
            for v in values {
                let _ = writeln!(o, "\tcase {}: pt_json_str(j, \"{key}\", \"{}\"); break;", v.value, v.name);
            }
            writeln!(o, "\tdefault: pt_json_u64(j, \"{key}\", {field});\n\t}}")
        }
    };
    if let Some(since) = &f.since {
        let _ = writeln!(o, "\tpt_json_u64(j, \"{since}\", h->ts_ns > {field} ? h->ts_ns - {field} : 0);");
    }
}

/// Prints one field or variable field, if JSON shows it.
fn print_item(o: &mut String, item: &Item) {
    match item {
        Item::Field(f) if f.json => field(o, f),
        Item::Data(d) if d.json => {
            let helper = match d.ty {
                DataType::String | DataType::Bytes => "pt_json_bytes",
                DataType::Argv => "pt_json_argv",
                DataType::KStack | DataType::UStack => "pt_json_addresses",
            };
            let _ = writeln!(o, "\t{helper}(j, \"{}\", d_{}, r->{}_len);", d.key, d.name, d.name);
        }
        _ => {}
    }
}

/// The printer of one kind.
fn printer(o: &mut String, k: &Kind) {
    let _ =
        writeln!(o, "\nstatic void pt_print_{}(struct pt_json *j, const struct pt_hdr *h, __s64 offset)\n{{", k.c_name);
    let _ = writeln!(o, "\tconst struct pt_{} *r = (const void *)h;", k.c_name);
    // Each variable field's bytes: they follow one another in declaration order.
    let mut at = "(const __u8 *)h + sizeof(*r)".to_string();
    for d in &k.data {
        let _ = writeln!(o, "\tconst __u8 *d_{} = {at};", d.name);
        at = format!("d_{} + r->{}_len", d.name, d.name);
    }
    o.push_str("\n\t(void)r;\n");
    let _ = writeln!(o, "\tpt_json_raw(j, \"{{\\\"type\\\":\\\"{}\\\"\");", k.json_type());
    o.push_str("\tpt_json_u64(j, \"ts_ns\", h->ts_ns);\n\tpt_json_time(j, \"time\", h->ts_ns, offset);\n");
    for h in k.header_fields() {
        let _ = writeln!(o, "\tpt_json_u64(j, \"{0}\", h->{0});", h.name);
    }
    let items = k.items();
    let is_arg = |item: &Item| matches!(item, Item::Field(f) if f.arg) || matches!(item, Item::Data(d) if d.arg);
    for item in items.iter().filter(|i| !is_arg(i)) {
        print_item(o, item);
    }
    if k.has_args() {
        o.push_str("\tpt_json_open(j, \"args\");\n");
        for item in items.iter().filter(|i| is_arg(i)) {
            print_item(o, item);
        }
        o.push_str("\tpt_json_close(j);\n");
    }
    for fl in &k.flags {
        let bit = format!("h->flags & PT_{}_F_{}", k.upper(), fl.name.to_uppercase());
        let _ = match fl.json {
            FlagJson::Always => writeln!(o, "\tpt_json_bool(j, \"{}\", {bit});", fl.name),
            FlagJson::IfSet => writeln!(o, "\tif ({bit})\n\t\tpt_json_bool(j, \"{}\", 1);", fl.name),
            FlagJson::Never => Ok(()),
        };
    }
    if !k.data.is_empty() {
        o.push_str("\tpt_json_bool(j, \"data_lost\", h->flags & PT_F_DATA_LOST);\n");
    }
    o.push_str("\tpt_json_raw(j, \"}\");\n}\n");
}

/// pt_json.c: the per-kind printers and their dispatch.
pub fn printers(reg: &Registry) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "// SPDX-License-Identifier: Apache-2.0\n/* {BANNER} */");
    o.push_str("#include \"proctap.h\"\n#include \"json.h\"\n");
    for k in &reg.kinds {
        printer(&mut o, k);
    }
    o.push_str("\n/* Prints a validated record of a known kind; returns 0, or -1 for an unknown kind. */\n");
    o.push_str(
        "int pt_json_record(struct pt_json *j, const struct pt_hdr *h, __s64 offset)\n{\n\tswitch (h->kind) {\n",
    );
    for k in &reg.kinds {
        let _ = writeln!(o, "\tcase PT_KIND_{}:\n\t\tpt_print_{}(j, h, offset);\n\t\treturn 0;", k.upper(), k.c_name);
    }
    o.push_str("\tdefault:\n\t\treturn -1;\n\t}\n}\n");
    o
}
