//! Tests of the registry checks and the record layout.

mod checks {
    use crate::registry::*;
    use std::path::PathBuf;

    fn one(text: &str) -> Result<Registry, Error> {
        load(&[(PathBuf::from("t.toml"), text.to_string())])
    }

    const BASE: &str = "kind = \"k\"\nid = 9\nfamily = \"f\"\ndoc = \"d\"\nheader = [\"pid\"]\n";

    #[test]
    fn fields_are_aligned_with_explicit_padding_and_the_size_is_a_multiple_of_8() {
        let reg = one(&format!(
            "{BASE}[[field]]\nname = \"a\"\ntype = \"u8\"\ndoc = \"\"\n[[field]]\nname = \"b\"\ntype = \"u64\"\ndoc = \"\"\n\
             [[field]]\nname = \"c\"\ntype = \"comm\"\ndoc = \"\"\n[[data]]\nname = \"v\"\ntype = \"string\"\ncap = 64\ndoc = \"\"\n"
        ))
        .unwrap();
        let k = &reg.kinds[0];
        let offsets: Vec<u32> = k.fields.iter().map(|f| f.offset).collect();
        let h = HDR_SIZE; // the fields start after the common header
        assert_eq!(offsets, vec![h, h + 8, h + 16]);
        assert_eq!(k.data[0].len_offset, h + 32);
        assert_eq!(k.size, h + 40);
        assert_eq!(k.pads, vec![Pad { offset: h + 1, len: 7 }, Pad { offset: h + 36, len: 4 }]);
    }

    #[test]
    fn every_mistake_names_the_kind_and_the_field() {
        let cases = [
            ("[[field]]\nname = \"a\"\ntype = \"float\"\ndoc = \"\"\n", "field `a`: unsupported type `float`"),
            ("[[field]]\nname = \"pid\"\ntype = \"u32\"\ndoc = \"\"\n", "field `pid` clashes"),
            ("[[data]]\nname = \"v\"\ntype = \"kstack\"\ncap = 12\ndoc = \"\"\n", "cap 12 is not a multiple of 8"),
            (
                "[[data]]\nname = \"v\"\ntype = \"string\"\ncap = 8\npieces = true\ndoc = \"\"\n",
                "variable field `v`: only bytes are appended in pieces",
            ),
            ("[[field]]\nname = \"e\"\ntype = \"enum\"\ndoc = \"\"\n", "enum field `e` lists no"),
            ("[[flag]]\nname = \"x\"\ndoc = \"\"\njson = \"maybe\"\n", "flag `x`: json `maybe`"),
            ("[[field]]\nname = \"type\"\ntype = \"u32\"\ndoc = \"\"\n", "field `type` is a keyword"),
            ("[[field]]\nname = \"match\"\ntype = \"u32\"\ndoc = \"\"\n", "`match` is a keyword"),
            ("[[field]]\nname = \"pad0\"\ntype = \"u32\"\ndoc = \"\"\n", "`pad0` is a keyword"),
            (
                "[[flag]]\nname = \"x\"\ndoc = \"\"\n[[field]]\nname = \"f\"\ntype = \"enum\"\ndoc = \"\"\n\
                 [[field.value]]\nname = \"x\"\nvalue = 1\ndoc = \"\"\n[[field]]\nname = \"g\"\ntype = \"enum\"\ndoc = \"\"\n\
                 [[field.value]]\nname = \"max\"\nvalue = 1\ndoc = \"\"\n",
                "would both define PT_K_F_X",
            ),
            (
                "[[field]]\nname = \"f\"\ntype = \"enum\"\ndoc = \"\"\n[[field.value]]\nname = \"a1\"\nvalue = 1\ndoc = \"\"\n\
                 [[field.value]]\nname = \"a_1\"\nvalue = 2\ndoc = \"\"\n",
                "must be a new snake_case name",
            ),
            (
                (0..9).map(|i| format!("[[counter]]\nname = \"c{i}\"\ndoc = \"\"\n")).collect::<String>().leak(),
                "9 counters",
            ),
        ];
        for (extra, want) in cases {
            let e = one(&format!("{BASE}{extra}")).unwrap_err();
            assert!(e.message.contains("kind `k`") && e.message.contains(want), "{want}: got {e}");
        }
    }

    #[test]
    fn the_process_start_shows_only_beside_a_pid_of_a_kernel_record() {
        let shown = one(&BASE.replace("[\"pid\"]", "[\"pid\", \"proc_start\"]")).unwrap();
        let names: Vec<&str> = shown.kinds[0].header_fields().iter().map(|h| h.name).collect();
        assert_eq!(names, ["pid", "proc_start_ns"]);
        let alone = one(&BASE.replace("[\"pid\"]", "[\"proc_start\"]")).unwrap_err();
        assert!(alone.message.contains("proc_start needs pid"), "{alone}");
        let loader = one(&BASE.replace("[\"pid\"]", "[\"pid\", \"proc_start\"]\nsource = \"loader\"")).unwrap_err();
        assert!(loader.message.contains("knows no process start"), "{loader}");
    }

    #[test]
    fn ids_names_and_programs_are_unique_across_files() {
        let a = (PathBuf::from("a.toml"), format!("{BASE}programs = [\"p\"]\n"));
        let b = (PathBuf::from("b.toml"), BASE.replace("\"k\"", "\"j\""));
        assert!(load(&[a.clone(), b]).unwrap_err().message.contains("already taken"));
        let c = (
            PathBuf::from("c.toml"),
            format!("{}programs = [\"p\"]\n", BASE.replace("id = 9", "id = 10").replace("\"k\"", "\"j\"")),
        );
        assert!(load(&[a, c]).unwrap_err().message.contains("program `p`"));
    }

    #[test]
    fn counted_flags_and_counters_get_global_indices_in_id_order() {
        let second = "kind = \"b\"\nid = 3\nfamily = \"f\"\ndoc = \"d\"\n[[counter]]\nname = \"x\"\ndoc = \"\"\n";
        let first =
            "kind = \"a\"\nid = 2\nfamily = \"f\"\ndoc = \"d\"\n[[flag]]\nname = \"y\"\ndoc = \"\"\ncounter = true\n";
        let reg = load(&[(PathBuf::from("b.toml"), second.into()), (PathBuf::from("a.toml"), first.into())]).unwrap();
        assert_eq!(reg.counters, vec![("a".to_string(), "y".to_string()), ("b".to_string(), "x".to_string())]);
        assert_eq!(reg.kinds[0].flags[0].bit, 1);
    }
}

mod layout {
    use proptest::prelude::*;
    use std::path::PathBuf;

    use crate::registry::*;

    const TYPES: &[&str] = &["u8", "u16", "u32", "u64", "i32", "i64", "comm", "exit_status", "errno", "kind"];

    fn declaration(fields: &[usize], data: usize) -> String {
        let mut text = String::from("kind = \"k\"\nid = 7\nfamily = \"f\"\ndoc = \"d\"\n");
        for (i, &t) in fields.iter().enumerate() {
            text += &format!("[[field]]\nname = \"f{i}\"\ntype = \"{}\"\ndoc = \"\"\n", TYPES[t]);
        }
        for i in 0..data {
            text += &format!("[[data]]\nname = \"d{i}\"\ntype = \"bytes\"\ncap = 64\ndoc = \"\"\n");
        }
        text
    }

    proptest! {
        /// Any mix of fields: each naturally aligned, none overlapping, the
        /// explicit pads covering exactly the gaps, the size a multiple of 8
        /// (the C side asserts each offset; this keeps the generator honest).
        #[test]
        fn every_byte_of_a_record_is_a_header_field_length_or_pad(
            fields in proptest::collection::vec(0..TYPES.len(), 0..12)
                .prop_filter("the registry allows so many kind fields", |f| {
                    f.iter().filter(|&&t| TYPES[t] == "kind").count() <= CHECKS_MAX
                }),
            data in 0..=DATA_FIELDS_MAX,
        ) {
            let reg = load(&[(PathBuf::from("k.toml"), declaration(&fields, data))]).unwrap();
            let k = &reg.kinds[0];
            let mut spans: Vec<(u32, u32)> = vec![(0, HDR_SIZE)];
            for f in &k.fields {
                let (size, align) = f.ty.size_align();
                prop_assert_eq!(f.offset % align, 0);
                spans.push((f.offset, f.offset + size));
            }
            for d in &k.data {
                prop_assert_eq!(d.len_offset % 4, 0);
                spans.push((d.len_offset, d.len_offset + 4));
            }
            spans.extend(k.pads.iter().map(|p| (p.offset, p.offset + p.len)));
            spans.sort();
            let mut at = 0;
            for (start, end) in spans {
                prop_assert_eq!(start, at, "a gap or an overlap at {}", at);
                at = end;
            }
            prop_assert_eq!(at, k.size);
            prop_assert_eq!(k.size % 8, 0);
        }
    }
}

mod arrow {
    use std::path::Path;

    /// The generated Arrow code of the project's own registry.
    fn generated() -> String {
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../c/events");
        crate::arrow::module(&crate::registry::load_dir_with(&events, Vec::new()).unwrap())
    }

    #[test]
    fn every_kind_gets_a_table_and_dispatch() {
        let code = generated();
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../c/events");
        let reg = crate::registry::load_dir_with(&events, Vec::new()).unwrap();
        for k in &reg.kinds {
            assert!(code.contains(&format!("pub(crate) struct {}Columns {{", k.rust)), "{}", k.name);
            assert!(code.contains(&format!("(KindColumns::{0}(c), Event::{0}(e)) => c.append(e),", k.variant())));
        }
        assert!(!code.contains("compile_error!"));
    }

    #[test]
    fn columns_follow_the_json_of_each_field_type() {
        let code = generated();
        for want in [
            // The raw exit status (not in JSON), then what JSON shows.
            "field(\"exit_status\", ArrowType::UInt32, false, Shown::Hidden),\n            field(\"exit_code\", ArrowType::UInt8, false, Shown::Always),\n            field(\"signal\", ArrowType::UInt8, true, Shown::Always),",
            "field(\"duration_ns\", ArrowType::UInt64, false, Shown::Always)",
            "field(\"argv_size\", ArrowType::UInt32, false, Shown::Hidden)",
            "field(\"filename_truncated\", ArrowType::Boolean, false, Shown::IfSet)",
            "field(\"kernel_stack_error\", ArrowType::Int32, true, Shown::IfSet)",
            "field(\"fd\", ArrowType::Int64, true, Shown::Always),\n            field(\"errno\", ArrowType::Int32, true, Shown::Always),",
            "field(\"remote\", ArrowType::Utf8, true, Shown::Always)",
            "role: NamesColumn::new(&[\"unknown\", \"client\", \"server\"]),",
            "self.kernel_stack.append(e.kernel_stack.iter());",
            "self.argv.append(&e.argv);",
        ] {
            assert!(code.contains(want), "missing: {want}");
        }
    }
}
