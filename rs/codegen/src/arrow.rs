//! `arrow.rs`: the Arrow tables of the event kinds, included into the
//! crate's `arrow` module (the `arrow` feature). For each kind: a struct of
//! column builders, its schema (column names are the JSON keys, in the JSON
//! order), the code that appends one event as a row, and the code that turns
//! the builders into a `RecordBatch`; plus `KindColumns`, which dispatches an
//! `Event` to its kind's table.
//!
//! The value types the columns are built from (time, argv, stacks,
//! addresses, enum names) have hand-written builders in the crate
//! (rs/arrow/columns.rs); this file only decides which column each field of
//! the declaration becomes.

use std::fmt::Write;

use crate::registry::{DataType, Field, FieldType, FlagJson, Item, Kind, Registry};
use crate::rust::{enum_name, ident};

/// How the JSON object shows a column (the `proctap.json` field metadata).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// Always, under the column's name.
    Always,
    /// Only when set (a flag that is true, an errno that is there).
    IfSet,
    /// Never (`json = false`, the raw exit status).
    Hidden,
}

impl Shown {
    fn expr(self) -> &'static str {
        match self {
            Shown::Always => "Shown::Always",
            Shown::IfSet => "Shown::IfSet",
            Shown::Hidden => "Shown::Hidden",
        }
    }
}

/// One column of a kind's table (or of its `args` struct).
struct Column {
    /// Its name: the JSON key.
    name: String,
    /// The builder's field in the generated struct.
    builder: String,
    /// The builder's type.
    ty: String,
    /// The expression that makes an empty builder.
    new: String,
    /// The Arrow data type, as an expression.
    data_type: String,
    nullable: bool,
    shown: Shown,
    /// The statement that appends the event's value (`e` is the event).
    append: String,
}

impl Column {
    /// A column whose builder is `ty::default()`.
    fn new(name: &str, ty: &str, data_type: &str, nullable: bool, append: String) -> Column {
        Column {
            name: name.to_string(),
            builder: ident(name),
            ty: ty.to_string(),
            new: format!("{ty}::default()"),
            data_type: data_type.to_string(),
            nullable,
            shown: Shown::Always,
            append,
        }
    }

    fn shown(mut self, shown: Shown) -> Column {
        self.shown = shown;
        self
    }
}

/// The builder and Arrow types of an integer.
fn int_types(bits: u32, signed: bool) -> (String, String) {
    let arrow = format!("{}Int{bits}", if signed { "" } else { "U" });
    (format!("{arrow}Builder"), format!("ArrowType::{arrow}"))
}

fn int_column(name: &str, bits: u32, signed: bool, value: &str) -> Column {
    let (ty, data_type) = int_types(bits, signed);
    Column::new(name, &ty, &data_type, false, format!("self.{}.append_value({value});", ident(name)))
}

/// A column of names from a fixed list (an enum's values, the kinds).
fn names_column(name: &str, names: &[&str], key: String) -> Column {
    let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let mut c = Column::new(name, "NamesColumn", "NamesColumn::data_type()", false, String::new());
    c.new = format!("NamesColumn::new(&[{}])", list.join(", "));
    c.append = format!("self.{}.append({key});", ident(name));
    if names.len() > 256 {
        c.append = format!("compile_error!(\"field `{name}` has more than 256 names\");");
    }
    c
}

/// The columns of one fixed field; `v` is the path of its value's owner,
/// `kinds` the JSON names of every kind.
fn field_columns(kinds: &[&str], k: &Kind, f: &Field, v: &str, out: &mut Vec<Column>) {
    let (n, value) = (f.rust.as_str(), format!("{v}.{}", ident(&f.rust)));
    // A field JSON leaves out hides every column made of it.
    let shown = if f.json { Shown::Always } else { Shown::Hidden };
    match &f.ty {
        FieldType::Int { bits, signed } => out.push(int_column(n, *bits, *signed, &value).shown(shown)),
        FieldType::Comm => out.push(bytes_column(n, &format!("{value}.as_bytes()")).shown(shown)),
        FieldType::SockAddr => out.push(
            Column::new(n, "AddrColumn", "ArrowType::Utf8", true, format!("self.{}.append({value});", ident(n)))
                .shown(shown),
        ),
        FieldType::ExitStatus => {
            // The raw task->exit_code, as the record holds it, then what JSON shows.
            let raw = format!(
                "u32::from({v}.exit_code) << 8 | u32::from({v}.signal.unwrap_or(0) & 0x7f) | u32::from({v}.core_dumped) << 7"
            );
            out.push(int_column("exit_status", 32, false, &raw).shown(Shown::Hidden));
            out.push(int_column("exit_code", 8, false, &format!("{v}.exit_code")).shown(shown));
            let (ty, data_type) = int_types(8, false);
            let append = format!("self.signal.append_option({v}.signal);");
            out.push(Column::new("signal", &ty, &data_type, true, append).shown(shown));
            let append = format!("self.core_dumped.append_value({v}.core_dumped);");
            out.push(Column::new("core_dumped", "BooleanBuilder", "ArrowType::Boolean", false, append).shown(shown));
        }
        FieldType::Errno => {
            let append = format!("self.{}.append_option({value}.map(|x| x.errno));", ident(n));
            let if_set = if f.json { Shown::IfSet } else { Shown::Hidden };
            out.push(Column::new(n, "Int32Builder", "ArrowType::Int32", true, append).shown(if_set));
        }
        FieldType::Result => {
            let append = format!("self.{}.append_option({value});", ident(n));
            out.push(Column::new(n, "Int64Builder", "ArrowType::Int64", true, append).shown(shown));
            let append = format!("self.errno.append_option({v}.errno);");
            out.push(Column::new("errno", "Int32Builder", "ArrowType::Int32", true, append).shown(shown));
        }
        FieldType::Kind => out.push(names_column(n, kinds, format!("{value}.index()")).shown(shown)),
        FieldType::Enum(values) => {
            let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
            let mut key = format!("match {value} {{");
            for (i, value) in values.iter().enumerate() {
                let _ = write!(key, " ev::{}::{} => {i},", enum_name(k, f), crate::names::camel(&value.name));
            }
            key.push_str(" }");
            out.push(names_column(n, &names, key).shown(shown));
        }
    }
    if let Some(since) = &f.since {
        out.push(int_column(since, 64, false, &format!("{v}.{since}")).shown(shown));
    }
}

fn bytes_column(name: &str, value: &str) -> Column {
    let append = format!("self.{}.append_value({value});", ident(name));
    Column::new(name, "BinaryBuilder", "ArrowType::Binary", false, append)
}

/// The column of one variable field.
fn data_column(key: &str, ty: DataType, value: &str) -> Column {
    let append = format!("self.{}.append(&{value});", ident(key));
    match ty {
        DataType::String | DataType::Bytes => bytes_column(key, &format!("{value}.as_ref()")),
        DataType::Argv => Column::new(key, "ArgvColumn", "ArgvColumn::data_type()", false, append),
        DataType::KStack | DataType::UStack => Column::new(
            key,
            "StackColumn",
            "StackColumn::data_type()",
            false,
            format!("self.{}.append({value}.iter());", ident(key)),
        ),
    }
}

/// The columns of a kind's items, or of its tracepoint attributes.
fn item_columns(kinds: &[&str], k: &Kind, args: bool) -> Vec<Column> {
    let mut out = Vec::new();
    let owner = if args { "e.args" } else { "e" };
    for item in k.items() {
        match item {
            Item::Field(f) if f.arg == args => field_columns(kinds, k, f, owner, &mut out),
            Item::Data(d) if d.arg == args => {
                let shown = if d.json { Shown::Always } else { Shown::Hidden };
                out.push(data_column(&d.key, d.ty, &format!("{owner}.{}", ident(&d.key))).shown(shown));
            }
            _ => {}
        }
    }
    if args {
        // Their builders live beside the kind's own columns.
        for c in &mut out {
            let builder = format!("args_{}", c.name);
            c.append = c.append.replacen(&format!("self.{}.", c.builder), &format!("self.{builder}."), 1);
            c.builder = builder;
        }
    }
    out
}

/// Every column of a kind, in JSON order (`args` is a struct column made
/// from [`item_columns`]`(k, true)`, marked by an empty builder type).
fn columns(kinds: &[&str], k: &Kind) -> Vec<Column> {
    let mut out = vec![
        int_column("ts_ns", 64, false, "e.ts_ns"),
        Column::new("time", "TimeColumn", "TimeColumn::data_type()", false, "self.time.append(e.time);".into()),
    ];
    for h in k.header_fields() {
        let bits = h.rust_type.trim_start_matches('u').parse().unwrap_or(64);
        out.push(int_column(h.name, bits, false, &format!("e.{}", h.name)));
    }
    out.extend(item_columns(kinds, k, false));
    if k.has_args() {
        let mut args = Column::new(
            "args",
            "",
            &format!("ArrowType::Struct({}Columns::args_fields())", k.rust),
            false,
            String::new(),
        );
        args.builder.clear();
        out.push(args);
    }
    for f in &k.flags {
        let append = format!("self.{0}.append_value(e.{0});", f.name);
        let shown = match f.json {
            FlagJson::Always => Shown::Always,
            FlagJson::IfSet => Shown::IfSet,
            FlagJson::Never => Shown::Hidden,
        };
        out.push(Column::new(&f.name, "BooleanBuilder", "ArrowType::Boolean", false, append).shown(shown));
    }
    if k.generic() {
        let append = "self.data_lost.append_value(e.data_lost);".to_string();
        out.push(Column::new("data_lost", "BooleanBuilder", "ArrowType::Boolean", false, append));
    }
    out
}

fn field_expr(c: &Column) -> String {
    format!("field({:?}, {}, {}, {})", c.name, c.data_type, c.nullable, c.shown.expr())
}

/// The struct of builders, its constructor and its schema.
fn table_struct(o: &mut String, k: &Kind, cols: &[Column], args: &[Column]) {
    let name = format!("{}Columns", k.rust);
    let _ = writeln!(o, "/// The column builders of {} events.\npub(crate) struct {name} {{", k.json_type());
    for c in cols.iter().chain(args).filter(|c| !c.builder.is_empty()) {
        let _ = writeln!(o, "    {}: {},", c.builder, c.ty);
    }
    let _ = writeln!(o, "}}\n\nimpl {name} {{\n    fn new() -> {name} {{\n        {name} {{");
    for c in cols.iter().chain(args).filter(|c| !c.builder.is_empty()) {
        let _ = writeln!(o, "            {}: {},", c.builder, c.new);
    }
    o.push_str("        }\n    }\n\n");
    let _ = writeln!(o, "    fn schema() -> Schema {{\n        Schema::new(vec![");
    for c in cols {
        let _ = writeln!(o, "            {},", field_expr(c));
    }
    let _ = writeln!(o, "        ])\n        .with_metadata(table_metadata({:?}))\n    }}\n", k.json_type());
    if !args.is_empty() {
        o.push_str("    fn args_fields() -> Fields {\n        Fields::from(vec![\n");
        for c in args {
            let _ = writeln!(o, "            {},", field_expr(c));
        }
        o.push_str("        ])\n    }\n\n");
    }
}

/// Appending a row, counting rows and finishing the builders.
fn table_methods(o: &mut String, k: &Kind, cols: &[Column], args: &[Column]) {
    let generic = if k.generic() { "<B: AsRef<[u8]>>" } else { "" };
    let use_ = if k.generic() { "<B>" } else { "" };
    let _ = writeln!(o, "    #[inline]\n    fn append{generic}(&mut self, e: &ev::{}{use_}) {{", k.rust);
    for c in cols.iter().chain(args).filter(|c| !c.builder.is_empty()) {
        let _ = writeln!(o, "        {}", c.append);
    }
    o.push_str("    }\n\n    fn len(&self) -> usize {\n        self.ts_ns.len()\n    }\n\n");
    o.push_str("    fn finish(&mut self, schema: SchemaRef) -> Result<RecordBatch, ArrowError> {\n");
    o.push_str("        let columns: Vec<ArrayRef> = vec![\n");
    for c in cols {
        if c.builder.is_empty() {
            let children: Vec<String> =
                args.iter().map(|a| format!("Arc::new(self.{}.take()) as ArrayRef", a.builder)).collect();
            let _ = writeln!(
                o,
                "            Arc::new(StructArray::try_new(Self::args_fields(), vec![{}], None)?),",
                children.join(", ")
            );
        } else {
            let _ = writeln!(o, "            Arc::new(self.{}.take()),", c.builder);
        }
    }
    o.push_str("        ];\n        RecordBatch::try_new(schema, columns)\n    }\n}\n\n");
}

fn kind_table(o: &mut String, kinds: &[&str], k: &Kind) {
    let cols = columns(kinds, k);
    let args = if k.has_args() { item_columns(kinds, k, true) } else { Vec::new() };
    table_struct(o, k, &cols, &args);
    table_methods(o, k, &cols, &args);
}

/// `KindColumns`: one kind's table, and the dispatch from `Event` to it.
fn dispatch(o: &mut String, reg: &Registry) {
    o.push_str("/// The table of one kind.\npub(crate) enum KindColumns {\n");
    for k in &reg.kinds {
        let _ = writeln!(o, "    {}(Box<{}Columns>),", k.variant(), k.rust);
    }
    o.push_str(
        "}\n\nimpl KindColumns {\n    pub(crate) fn new(kind: EventKind) -> KindColumns {\n        match kind {\n",
    );
    for k in &reg.kinds {
        let _ = writeln!(
            o,
            "            EventKind::{0} => KindColumns::{0}(Box::new({1}Columns::new())),",
            k.variant(),
            k.rust
        );
    }
    o.push_str("        }\n    }\n\n");
    o.push_str("    /// Appends the event as a row; false when it is of another kind.\n    #[inline]\n");
    o.push_str("    pub(crate) fn append<B: AsRef<[u8]>>(&mut self, event: &Event<B>) -> bool {\n        match (self, event) {\n");
    for k in &reg.kinds {
        let _ = writeln!(o, "            (KindColumns::{0}(c), Event::{0}(e)) => c.append(e),", k.variant());
    }
    o.push_str("            _ => return false,\n        }\n        true\n    }\n\n");
    let each = |o: &mut String, sig: &str, body: &str| {
        let _ = writeln!(o, "    {sig} {{\n        match self {{");
        for k in &reg.kinds {
            let _ = writeln!(o, "            KindColumns::{}(c) => {body},", k.variant());
        }
        o.push_str("        }\n    }\n\n");
    };
    o.push_str("    /// Rows appended since the last finish.\n");
    each(o, "pub(crate) fn len(&self) -> usize", "c.len()");
    o.push_str("    /// The rows as a record batch of `schema` (the kind's); the builders start over.\n");
    each(
        o,
        "pub(crate) fn finish(&mut self, schema: SchemaRef) -> Result<RecordBatch, ArrowError>",
        "c.finish(schema)",
    );
    o.push_str("}\n\n/// The schema of a kind's table.\npub(crate) fn kind_schema(kind: EventKind) -> Schema {\n    match kind {\n");
    for k in &reg.kinds {
        let _ = writeln!(o, "        EventKind::{} => {}Columns::schema(),", k.variant(), k.rust);
    }
    o.push_str("    }\n}\n\n/// The kind's name in file names (its declaration's `kind`).\n");
    o.push_str("pub(crate) fn table_name(kind: EventKind) -> &'static str {\n    match kind {\n");
    for k in &reg.kinds {
        let _ = writeln!(o, "        EventKind::{} => {:?},", k.variant(), k.name);
    }
    o.push_str("    }\n}\n");
}

pub fn module(reg: &Registry) -> String {
    let kinds: Vec<&str> = reg.kinds.iter().map(|k| k.json_type()).collect();
    let mut o = String::new();
    let _ = writeln!(o, "// {}\n", crate::c::BANNER);
    for k in &reg.kinds {
        kind_table(&mut o, &kinds, k);
    }
    dispatch(&mut o, reg);
    o
}
