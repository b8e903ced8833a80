//! Just enough of the BTF format (the kernel's type information,
//! /sys/kernel/btf/vmlinux) to type tracepoint fields: the structs, ints,
//! enums, pointers, arrays and typedefs, looked up by name. Pure: it reads
//! bytes it is given.

use std::collections::HashMap;

const MAGIC: u16 = 0xeb9f;

/// BTF kinds (the `kind` bits of a type's info word).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// One type, as far as typing fields needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Void,
    /// An integer (bool and char included).
    Int {
        name: String,
        bytes: u32,
        signed: bool,
    },
    Ptr(u32),
    Array {
        elem: u32,
        len: u32,
    },
    /// A struct or union: its members (name, type id, bit offset, bitfield
    /// bits or 0).
    Record {
        name: String,
        union: bool,
        size: u32,
        members: Vec<(String, u32, u32, u32)>,
    },
    Enum {
        name: String,
        bytes: u32,
        signed: bool,
    },
    /// typedef, const, volatile, restrict, type tags: they name or qualify `of`.
    Alias {
        name: String,
        of: u32,
    },
    /// Anything fields are not made of (functions, variables, floats, ...).
    Other,
}

/// A field's type with the aliases seen through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    Int {
        bytes: u32,
        signed: bool,
    },
    /// An enum, by name ("" when anonymous): CO-RE matches enums by name.
    Enum {
        name: String,
        bytes: u32,
        signed: bool,
    },
    /// A pointer; `char_target` when it points to (qualified) plain char.
    Ptr {
        char_target: bool,
    },
    /// `chars`: of plain char (text), not of u8 or unsigned char (bytes).
    Array {
        elem: Box<Shape>,
        len: u32,
        chars: bool,
    },
    Other,
}

/// The parsed type section: types by id (id 0 is void).
#[derive(Debug, Default)]
pub struct Btf {
    types: Vec<Type>,
    by_name: HashMap<String, Vec<u32>>,
}

/// Little-endian reads that report truncation instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes.get(self.at..self.at + 4).ok_or("BTF: truncated type section")?;
        self.at += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn skip(&mut self, words: usize) -> Result<(), String> {
        for _ in 0..words {
            self.u32()?;
        }
        Ok(())
    }
}

fn string(strings: &[u8], off: u32) -> Result<String, String> {
    let rest = strings.get(off as usize..).ok_or("BTF: a name points past the string section")?;
    let end = rest.iter().position(|&b| b == 0).ok_or("BTF: unterminated name")?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

impl Btf {
    /// Parses a little-endian BTF blob (what /sys/kernel/btf/vmlinux holds).
    pub fn parse(bytes: &[u8]) -> Result<Btf, String> {
        let word = |at: usize| -> Result<u32, String> {
            let b = bytes.get(at..at + 4).ok_or("BTF: truncated header")?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if bytes.len() < 24 || u16::from_le_bytes([bytes[0], bytes[1]]) != MAGIC {
            return Err("not little-endian BTF (bad magic)".into());
        }
        let hdr_len = word(4)? as usize;
        let (type_off, type_len, str_off, str_len) =
            (word(8)? as usize, word(12)? as usize, word(16)? as usize, word(20)? as usize);
        let types_at = hdr_len.checked_add(type_off).ok_or("BTF: bad type offset")?;
        let strs_at = hdr_len.checked_add(str_off).ok_or("BTF: bad string offset")?;
        let type_bytes = bytes.get(types_at..types_at + type_len).ok_or("BTF: type section out of bounds")?;
        let strings = bytes.get(strs_at..strs_at + str_len).ok_or("BTF: string section out of bounds")?;
        let mut btf = Btf { types: vec![Type::Void], by_name: HashMap::new() };
        let mut r = Reader { bytes: type_bytes, at: 0 };
        while r.at < type_bytes.len() {
            let ty = Self::parse_type(&mut r, strings)?;
            let id = btf.types.len() as u32;
            let name = match &ty {
                Type::Int { name, .. } | Type::Record { name, .. } | Type::Enum { name, .. } => name.clone(),
                Type::Alias { name, .. } => name.clone(),
                _ => String::new(),
            };
            if !name.is_empty() {
                btf.by_name.entry(name).or_default().push(id);
            }
            btf.types.push(ty);
        }
        Ok(btf)
    }

    fn parse_type(r: &mut Reader, strings: &[u8]) -> Result<Type, String> {
        let name = string(strings, r.u32()?)?;
        let info = r.u32()?;
        let size_or_type = r.u32()?;
        let (vlen, kind, kind_flag) = ((info & 0xffff) as usize, (info >> 24) & 0x1f, info >> 31 == 1);
        Ok(match kind {
            kind::INT => {
                let enc = r.u32()?;
                Type::Int { name, bytes: size_or_type, signed: (enc >> 24) & 1 == 1 }
            }
            kind::PTR => Type::Ptr(size_or_type),
            kind::ARRAY => {
                let elem = r.u32()?;
                r.u32()?; // index type
                Type::Array { elem, len: r.u32()? }
            }
            kind::STRUCT | kind::UNION => {
                let mut members = Vec::with_capacity(vlen);
                for _ in 0..vlen {
                    let m = string(strings, r.u32()?)?;
                    let ty = r.u32()?;
                    let off = r.u32()?;
                    let (bit_off, bits) = if kind_flag { (off & 0xff_ffff, off >> 24) } else { (off, 0) };
                    members.push((m, ty, bit_off, bits));
                }
                Type::Record { name, union: kind == kind::UNION, size: size_or_type, members }
            }
            kind::ENUM | kind::ENUM64 => {
                r.skip(vlen * if kind == kind::ENUM { 2 } else { 3 })?;
                Type::Enum { name, bytes: size_or_type, signed: kind_flag }
            }
            kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                Type::Alias { name: if kind == kind::TYPEDEF { name } else { String::new() }, of: size_or_type }
            }
            kind::FWD | kind::FUNC | kind::FLOAT => Type::Other,
            kind::FUNC_PROTO => {
                r.skip(vlen * 2)?;
                Type::Other
            }
            kind::VAR | kind::DECL_TAG => {
                r.skip(1)?;
                Type::Other
            }
            kind::DATASEC => {
                r.skip(vlen * 3)?;
                Type::Other
            }
            other => return Err(format!("BTF: unknown type kind {other}")),
        })
    }

    pub fn get(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// The struct called `name`, if there is one.
    pub fn record(&self, name: &str) -> Option<&Type> {
        self.by_name
            .get(name)?
            .iter()
            .filter_map(|&id| self.get(id))
            .find(|t| matches!(t, Type::Record { union: false, .. }))
    }

    /// Every struct whose name starts with `prefix`.
    pub fn records_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Type> + 'a {
        self.types
            .iter()
            .filter(move |t| matches!(t, Type::Record { name, union: false, .. } if name.starts_with(prefix)))
    }

    /// The int, enum or typedef called `name` (a C type name as tracefs
    /// spells it: "int", "umode_t", "cap_user_header_t"), seen through.
    pub fn named_shape(&self, name: &str) -> Option<Shape> {
        self.by_name.get(name)?.iter().map(|&id| self.shape(id)).find(|s| *s != Shape::Other)
    }

    /// The shape of type `id`, through typedefs and qualifiers.
    pub fn shape(&self, id: u32) -> Shape {
        let mut id = id;
        for _ in 0..32 {
            match self.get(id) {
                Some(Type::Alias { of, .. }) => id = *of,
                Some(Type::Int { bytes, signed, .. }) => return Shape::Int { bytes: *bytes, signed: *signed },
                Some(Type::Enum { name, bytes, signed }) => {
                    return Shape::Enum { name: name.clone(), bytes: *bytes, signed: *signed };
                }
                Some(Type::Ptr(to)) => return Shape::Ptr { char_target: self.is_char(*to) },
                Some(Type::Array { elem, len }) => {
                    return Shape::Array { elem: Box::new(self.shape(*elem)), len: *len, chars: self.is_char(*elem) };
                }
                _ => return Shape::Other,
            }
        }
        Shape::Other
    }

    /// Whether `id` is plain `char`, through qualifiers but no typedef
    /// (`u8` and `unsigned char` hold bytes, not text).
    fn is_char(&self, id: u32) -> bool {
        let mut id = id;
        for _ in 0..32 {
            match self.get(id) {
                Some(Type::Alias { name, of }) if name.is_empty() => id = *of,
                Some(Type::Int { name, bytes: 1, .. }) => return name == "char",
                _ => return false,
            }
        }
        false
    }
}

#[cfg(test)]
pub(crate) mod encode {
    //! Builds BTF blobs for tests: the inverse of [`super::Btf::parse`].

    /// Types to encode: (name, kind, info low bits, size or type, trailing words).
    #[derive(Default)]
    pub struct Builder {
        types: Vec<u32>,
        strings: Vec<u8>,
        count: u32,
    }

    impl Builder {
        pub fn new() -> Builder {
            Builder { types: Vec::new(), strings: vec![0], count: 0 }
        }

        pub fn name(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }

        fn push(&mut self, name: &str, kind: u32, vlen: u32, size_or_type: u32, rest: &[u32]) -> u32 {
            let name = self.name(name);
            self.types.extend([name, (kind << 24) | vlen, size_or_type]);
            self.types.extend_from_slice(rest);
            self.count += 1;
            self.count
        }

        pub fn int(&mut self, name: &str, bytes: u32, signed: bool) -> u32 {
            self.push(name, 1, 0, bytes, &[(u32::from(signed) << 24) | (bytes * 8)])
        }

        pub fn ptr(&mut self, to: u32) -> u32 {
            self.push("", 2, 0, to, &[])
        }

        pub fn array(&mut self, elem: u32, len: u32) -> u32 {
            self.push("", 3, 0, 0, &[elem, elem, len])
        }

        /// An enum of `bytes` with one value.
        pub fn enumeration(&mut self, name: &str, bytes: u32) -> u32 {
            let value = self.name("V0");
            self.push(name, 6, 1, bytes, &[value, 0])
        }

        pub fn typedef(&mut self, name: &str, of: u32) -> u32 {
            self.push(name, 8, 0, of, &[])
        }

        pub fn konst(&mut self, of: u32) -> u32 {
            self.push("", 10, 0, of, &[])
        }

        /// A struct of (name, type, byte offset) members.
        pub fn record(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            let mut rest = Vec::new();
            for (m, ty, off) in members {
                rest.extend([self.name(m), *ty, off * 8]);
            }
            self.push(name, 4, members.len() as u32, size, &rest)
        }

        pub fn finish(self) -> Vec<u8> {
            let type_len = self.types.len() as u32 * 4;
            let mut out = Vec::new();
            out.extend_from_slice(&0xeb9fu16.to_le_bytes());
            out.extend([1, 0]);
            for w in [24, 0, type_len, type_len, self.strings.len() as u32] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            for w in &self.types {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&self.strings);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode::Builder;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn structs_and_scalars_are_found_by_name_and_seen_through() {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let ushort = b.int("unsigned short", 2, false);
        let umode = b.typedef("umode_t", ushort);
        let ch = b.int("char", 1, true);
        let cch = b.konst(ch);
        let str_ptr = b.ptr(cch);
        let comm = b.array(ch, 16);
        b.record(
            "trace_event_raw_x",
            40,
            &[("sig", int, 8), ("mode", umode, 12), ("name", str_ptr, 16), ("comm", comm, 24)],
        );
        let btf = Btf::parse(&b.finish()).unwrap();
        let Some(Type::Record { members, .. }) = btf.record("trace_event_raw_x") else { panic!("no struct") };
        let shapes: Vec<(String, Shape, u32)> =
            members.iter().map(|(n, t, o, _)| (n.clone(), btf.shape(*t), *o)).collect();
        assert_eq!(
            shapes,
            [
                ("sig".into(), Shape::Int { bytes: 4, signed: true }, 64),
                ("mode".into(), Shape::Int { bytes: 2, signed: false }, 96),
                ("name".into(), Shape::Ptr { char_target: true }, 128),
                (
                    "comm".into(),
                    Shape::Array { elem: Box::new(Shape::Int { bytes: 1, signed: true }), len: 16, chars: true },
                    192
                ),
            ]
        );
        assert_eq!(btf.named_shape("umode_t"), Some(Shape::Int { bytes: 2, signed: false }));
        assert_eq!(btf.named_shape("long"), None);
        assert!(btf.record("trace_event_raw_y").is_none());
    }

    #[test]
    fn the_running_kernels_btf_parses() {
        let Ok(bytes) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            eprintln!("SKIPPED: no /sys/kernel/btf/vmlinux on this machine");
            return;
        };
        let btf = Btf::parse(&bytes).unwrap();
        assert!(btf.record("task_struct").is_some());
        assert_eq!(btf.named_shape("pid_t"), Some(Shape::Int { bytes: 4, signed: true }));
    }

    proptest! {
        /// Any truncation or corruption is an error, never a panic.
        #[test]
        fn damaged_blobs_are_errors_not_panics(cut in 0usize..200, flip in 0usize..200, byte: u8) {
            let mut b = Builder::new();
            let int = b.int("int", 4, true);
            b.record("s", 8, &[("a", int, 0), ("b", int, 4)]);
            let mut blob = b.finish();
            if flip < blob.len() {
                blob[flip] = byte;
            }
            blob.truncate(cut.min(blob.len()));
            let _ = Btf::parse(&blob);
        }
    }
}
