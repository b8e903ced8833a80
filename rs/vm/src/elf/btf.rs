//! BTF as an object carries it: the types of `.BTF`, read far enough to
//! decode BTF-defined maps (the `.maps` DATASEC), and to fix up the
//! DATASECs' offsets and sizes (which clang leaves to the loader) before a
//! kernel gets the BTF.
//!
//! A BTF-defined map is a global variable of an anonymous struct whose
//! members encode the map the way libbpf's macros write them:
//! `__uint(name, N)` is a member `int (*name)[N]` (a pointer to an array of
//! N elements: N is the array's length), `__type(name, T)` a member
//! `T *name` (the size of T is what counts).

use crate::map::MapDef;
use crate::retcode::{Errno, LoadError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

const MAGIC: u16 = 0xeb9f;

/// BTF kinds (`BTF_KIND_*`).
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

/// One BTF type: its common header and its kind-specific records.
#[derive(Debug, Clone, Default)]
pub struct Type<'a> {
    /// The type's name (empty when anonymous).
    pub name: &'a str,
    /// `BTF_KIND_*`.
    pub kind: u32,
    /// `size` (ints, structs, unions, enums, datasecs) or `type` (the rest).
    pub size_or_type: u32,
    /// Members (name, type, bit offset) of structs and unions.
    pub members: Vec<(&'a str, u32, u32)>,
    /// Variables (type, offset, size) of a datasec.
    pub vars: Vec<(u32, u32, u32)>,
    /// Array: (element type, element count).
    pub array: (u32, u32),
    /// Where the type's record starts in the `.BTF` section.
    pub pos: usize,
    /// `kind_flag`: for structs and unions, member offsets carry a
    /// bitfield size in their top 8 bits.
    pub kind_flag: bool,
}

/// The types of a `.BTF` section, by id (id 0 is void), borrowing the
/// section's strings.
pub struct Btf<'a> {
    types: Vec<Type<'a>>,
}

fn bad(reason: impl Into<String>) -> LoadError {
    LoadError::new(Errno::EINVAL, reason).in_section(".BTF")
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Btf<'a> {
    /// Parses a `.BTF` section.
    pub fn parse(data: &'a [u8]) -> Result<Self, LoadError> {
        let magic = data.get(..2).map(|m| u16::from_le_bytes([m[0], m[1]]));
        if magic != Some(MAGIC) {
            return Err(bad("bad magic"));
        }
        let field = |at| u32_at(data, at).ok_or_else(|| bad("header past the end"));
        let hdr_len = field(4)? as usize;
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let range = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            data.get(start..start.checked_add(len)?)
        };
        let types = range(type_off, type_len).ok_or_else(|| bad("types past the end"))?;
        let strings = range(str_off, str_len).ok_or_else(|| bad("strings past the end"))?;
        let mut out = alloc::vec![Type::default()];
        let mut at = 0;
        let types_start = hdr_len + type_off;
        while at < types.len() {
            let (mut t, next) =
                read_type(types, at, strings).ok_or_else(|| bad(format!("type {} truncated", out.len())))?;
            t.pos = types_start + at;
            out.push(t);
            at = next;
        }
        Ok(Btf { types: out })
    }

    /// Type `id`.
    pub fn get(&self, id: u32) -> Option<&Type<'a>> {
        self.types.get(id as usize)
    }

    /// The number of type ids (void included).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether only void is there.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// The DATASEC named `name`: its (variable type id, offset, size) entries.
    pub fn datasec(&self, name: &str) -> Option<Vec<(u32, u32, u32)>> {
        let t = self.types.iter().find(|t| t.kind == kind::DATASEC && t.name == name)?;
        Some(t.vars.clone())
    }

    /// Follows typedefs, qualifiers and type tags.
    pub fn skip_mods(&self, mut id: u32) -> Option<&Type<'a>> {
        for _ in 0..64 {
            let t = self.get(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => id = t.size_or_type,
                _ => return Some(t),
            }
        }
        None
    }

    /// The size in bytes of type `id`.
    pub fn size_of(&self, id: u32) -> Option<u32> {
        let t = self.skip_mods(id)?;
        match t.kind {
            kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::ENUM64 | kind::FLOAT | kind::DATASEC => {
                Some(t.size_or_type)
            }
            kind::PTR => Some(8),
            kind::ARRAY => self.size_of(t.array.0)?.checked_mul(t.array.1),
            kind::VAR => self.size_of(t.size_or_type),
            _ => None,
        }
    }

    /// The map a `.maps` variable (a VAR type id) defines, named `name`.
    pub fn map_def(&self, var: u32, name: &str) -> Result<MapDef, LoadError> {
        let err = |reason: String| bad(format!("map {name}: {reason}")).in_section(".maps");
        let v = self.get(var).filter(|t| t.kind == kind::VAR).ok_or_else(|| err("not a variable".into()))?;
        let def = self.skip_mods(v.size_or_type).filter(|t| t.kind == kind::STRUCT);
        let def = def.ok_or_else(|| err("its type is not a struct".into()))?;
        let mut m = MapDef { name: name.into(), ..MapDef::default() };
        let (mut key, mut value) = (None, None);
        for (member, ty, _) in &def.members {
            let ptr = self.skip_mods(*ty).filter(|t| t.kind == kind::PTR);
            let ptr = ptr.ok_or_else(|| err(format!("member {member} is not a pointer")))?;
            let number = || -> Result<u32, LoadError> {
                let arr = self.skip_mods(ptr.size_or_type).filter(|t| t.kind == kind::ARRAY);
                arr.map(|a| a.array.1).ok_or_else(|| err(format!("member {member} is not __uint(...)")))
            };
            let size = || self.size_of(ptr.size_or_type).ok_or_else(|| err(format!("cannot size the {member} type")));
            match *member {
                "type" => m.map_type = number()?,
                "key_size" => m.key_size = number()?,
                "value_size" => m.value_size = number()?,
                "max_entries" => m.max_entries = number()?,
                "map_flags" => m.flags = number()?,
                "key" => key = Some(size()?),
                "value" => value = Some(size()?),
                "pinning" | "numa_node" if number()? == 0 => {}
                other => return Err(err(format!("member {other} is not supported"))),
            }
        }
        m.key_size = agree(m.key_size, key, "key").map_err(err)?;
        m.value_size = agree(m.value_size, value, "value").map_err(err)?;
        Ok(m)
    }
}

/// The size from `key_size` and from `__type(key, T)`, which must agree.
fn agree(explicit: u32, typed: Option<u32>, what: &str) -> Result<u32, String> {
    match typed {
        Some(t) if explicit != 0 && explicit != t => {
            Err(format!("{what}_size {explicit} disagrees with the {what} type's size {t}"))
        }
        Some(t) => Ok(t),
        None => Ok(explicit),
    }
}

/// Reads the type at `at`; the type and the offset after it.
fn read_type<'a>(b: &[u8], at: usize, strings: &'a [u8]) -> Option<(Type<'a>, usize)> {
    let name = super::file::c_str_ref(strings, u32_at(b, at)? as usize)?;
    let info = u32_at(b, at + 4)?;
    let (vlen, k) = ((info & 0xffff) as usize, (info >> 24) & 0x1f);
    let mut t = Type { name, kind: k, size_or_type: u32_at(b, at + 8)?, kind_flag: info >> 31 != 0, ..Type::default() };
    let body = at + 12;
    let next = match k {
        kind::INT | kind::VAR | kind::DECL_TAG => body + 4,
        kind::ARRAY => {
            t.array = (u32_at(b, body)?, u32_at(b, body + 8)?);
            body + 12
        }
        kind::STRUCT | kind::UNION => {
            for i in 0..vlen {
                let m = body + 12 * i;
                let mname = super::file::c_str_ref(strings, u32_at(b, m)? as usize)?;
                t.members.push((mname, u32_at(b, m + 4)?, u32_at(b, m + 8)?));
            }
            body + 12 * vlen
        }
        kind::DATASEC => {
            for i in 0..vlen {
                let m = body + 12 * i;
                t.vars.push((u32_at(b, m)?, u32_at(b, m + 4)?, u32_at(b, m + 8)?));
            }
            body + 12 * vlen
        }
        kind::ENUM | kind::FUNC_PROTO => body + 8 * vlen,
        kind::ENUM64 => body + 12 * vlen,
        kind::PTR | kind::FWD | kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::FUNC => body,
        kind::FLOAT | kind::TYPE_TAG => body,
        _ => return None,
    };
    (next <= b.len()).then_some((t, next))
}

impl<'a> Btf<'a> {
    /// A copy of `data` (this BTF's section) with every DATASEC's size and
    /// variable offsets filled in, as a kernel wants them: `section_size`
    /// gives a section's size, `var_offset` a variable's offset in it.
    pub fn fixed_up(
        &self,
        data: &[u8],
        section_size: impl Fn(&str) -> Option<u64>,
        var_offset: impl Fn(&str, &str) -> Option<u64>,
    ) -> Vec<u8> {
        let mut out = data.to_vec();
        let mut put = |at: usize, v: u32| {
            if let Some(b) = out.get_mut(at..at + 4) {
                b.copy_from_slice(&v.to_le_bytes());
            }
        };
        for t in self.types.iter().filter(|t| t.kind == kind::DATASEC) {
            if let Some(size) = section_size(t.name) {
                put(t.pos + 8, size as u32);
            }
            for (i, (var, _, _)) in t.vars.iter().enumerate() {
                if let Some(off) = var_offset(t.name, self.name_of(*var)) {
                    put(t.pos + 12 + 12 * i + 4, off as u32);
                }
            }
        }
        out
    }

    /// The string table of a `.BTF` section (for `.BTF.ext` names).
    pub fn strings(data: &'a [u8]) -> &'a [u8] {
        let hdr_len = u32_at(data, 4).unwrap_or(0) as usize;
        let off = u32_at(data, 16).unwrap_or(0) as usize;
        let len = u32_at(data, 20).unwrap_or(0) as usize;
        data.get(hdr_len + off..hdr_len + off + len).unwrap_or(&[])
    }

    /// The byte offset of `member` in the struct or union named `name`
    /// (members of anonymous structs and unions inside it included).
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        let t = self.types.iter().find(|t| matches!(t.kind, kind::STRUCT | kind::UNION) && t.name == name)?;
        self.find_member(t, member, 0)
    }

    fn find_member(&self, t: &Type<'a>, member: &str, depth: u32) -> Option<u32> {
        if depth > 16 {
            return None;
        }
        for (m, ty, off) in &t.members {
            let bits = if t.kind_flag { off & 0xff_ffff } else { *off };
            if *m == member {
                return Some(bits / 8);
            }
            let inner =
                self.skip_mods(*ty).filter(|i| i.name.is_empty() && matches!(i.kind, kind::STRUCT | kind::UNION));
            if let (true, Some(inner)) = (m.is_empty(), inner) {
                if let Some(o) = self.find_member(inner, member, depth + 1) {
                    return Some(bits / 8 + o);
                }
            }
        }
        None
    }

    /// The name of type `id` (for errors).
    pub fn name_of(&self, id: u32) -> &str {
        self.get(id).map(|t| t.name).unwrap_or("?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob from (kind, name offset, size_or_type, extra words) records.
    fn blob(types: &[(u32, u32, u32, u32, &[u32])], strings: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        for (k, name, vlen, st, extra) in types {
            for w in [*name, k << 24 | vlen, *st].iter().chain(extra.iter()) {
                t.extend_from_slice(&w.to_le_bytes());
            }
        }
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [24, 0, t.len() as u32, t.len() as u32, strings.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn a_libbpf_style_map_struct_decodes() {
        // 1 int(4) 2 array[int; 9] 3 ptr->2 4 u64 5 typedef->4 6 const->5
        // 7 ptr->6 8 struct{type: 3, key: 7, max_entries: ptr->array[int;128]}
        // 9 array[int;128] 10 ptr->9 11 var "m" -> 8
        let strings = b"\0int\0type\0key\0max_entries\0m\0u64\0";
        let types: &[(u32, u32, u32, u32, &[u32])] = &[
            (kind::INT, 1, 0, 4, &[32]),
            (kind::ARRAY, 0, 0, 0, &[1, 1, 9]),
            (kind::PTR, 0, 0, 2, &[]),
            (kind::INT, 31, 0, 8, &[64]),
            (kind::TYPEDEF, 31, 0, 4, &[]),
            (kind::CONST, 0, 0, 5, &[]),
            (kind::PTR, 0, 0, 6, &[]),
            (kind::STRUCT, 0, 3, 24, &[5, 3, 0, 10, 7, 64, 14, 10, 128]),
            (kind::ARRAY, 0, 0, 0, &[1, 1, 128]),
            (kind::PTR, 0, 0, 9, &[]),
            (kind::VAR, 29, 0, 8, &[1]),
        ];
        let bytes = blob(types, strings);
        let btf = Btf::parse(&bytes).expect("parses");
        assert_eq!(btf.len(), 12);
        assert_eq!(btf.size_of(6), Some(8));
        assert_eq!(btf.size_of(9), Some(512));
        let def = btf.map_def(11, "m").expect("a map");
        assert_eq!((def.map_type, def.key_size, def.max_entries, def.value_size), (9, 8, 128, 0));
        assert_eq!(btf.member_offset("", "key"), Some(8), "bit offset 64");
        assert_eq!(btf.member_offset("", "max_entries"), Some(16));
        assert_eq!(btf.member_offset("", "value"), None);
        assert!(btf.map_def(1, "x").is_err());
    }

    #[test]
    fn truncated_btf_is_refused() {
        let strings = b"\0a\0";
        let b = blob(&[(kind::STRUCT, 1, 2, 8, &[1, 1, 0])], strings);
        assert!(Btf::parse(&b).is_err());
        assert!(Btf::parse(&b[..10]).is_err());
        assert!(Btf::parse(b"\x9f\xeb\x01\x00").is_err());
    }

    #[test]
    fn sizes_disagreeing_are_refused() {
        assert_eq!(agree(0, Some(4), "key"), Ok(4));
        assert_eq!(agree(4, Some(4), "key"), Ok(4));
        assert_eq!(agree(8, None, "key"), Ok(8));
        assert!(agree(8, Some(4), "key").is_err());
    }
}
