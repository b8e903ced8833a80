//! A reader of 64-bit little-endian ELF relocatable objects: the section
//! headers, the symbol table and REL relocations, as `clang -target bpf`
//! writes them. Every offset and size is checked against the file, so a
//! truncated or hostile file is an error and never a panic.

use crate::retcode::{Errno, LoadError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// `e_machine` of eBPF objects.
pub const EM_BPF: u16 = 247;
/// Section type: program bits.
pub const SHT_PROGBITS: u32 = 1;
/// Section type: the symbol table.
pub const SHT_SYMTAB: u32 = 2;
/// Section type: relocations without addends.
pub const SHT_REL: u32 = 9;
/// Section type: zero-initialized bits (.bss).
pub const SHT_NOBITS: u32 = 8;
/// Section flag: writable.
pub const SHF_WRITE: u64 = 0x1;
/// Section flag: instructions.
pub const SHF_EXECINSTR: u64 = 0x4;
/// Symbol type: a function.
pub const STT_FUNC: u8 = 2;
/// Symbol type: a section.
pub const STT_SECTION: u8 = 3;
/// Section index of undefined (extern) symbols.
pub const SHN_UNDEF: u16 = 0;

/// One section header.
#[derive(Debug, Clone)]
pub struct Section {
    /// The section's name.
    pub name: String,
    /// `sh_type`.
    pub kind: u32,
    /// `sh_flags`.
    pub flags: u64,
    /// File offset of the contents.
    pub offset: u64,
    /// Bytes (also for NOBITS, which have none in the file).
    pub size: u64,
    /// `sh_link`.
    pub link: u32,
    /// `sh_info` (the target section of a REL section).
    pub info: u32,
}

/// One symbol.
#[derive(Debug, Clone)]
pub struct Symbol {
    /// The symbol's name (empty for section symbols).
    pub name: String,
    /// `STT_*`.
    pub kind: u8,
    /// The defining section's index ([`SHN_UNDEF`] for externs).
    pub section: u16,
    /// Offset in its section.
    pub value: u64,
    /// Bytes.
    pub size: u64,
}

/// One relocation of a REL section.
#[derive(Debug, Clone, Copy)]
pub struct Rel {
    /// Byte offset in the target section.
    pub offset: u64,
    /// The symbol's index.
    pub symbol: u32,
    /// `R_BPF_*`.
    pub kind: u32,
}

/// A parsed ELF file: sections and symbols, borrowing the bytes.
pub struct ElfFile<'a> {
    bytes: &'a [u8],
    /// Every section header, by index.
    pub sections: Vec<Section>,
    /// Every symbol, by index.
    pub symbols: Vec<Symbol>,
}

fn bad(reason: impl Into<String>) -> LoadError {
    LoadError::new(Errno::EINVAL, reason).in_section("ELF")
}

fn slice(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32
}

/// The NUL-terminated string at `offset` of a string table.
pub fn c_str(table: &[u8], offset: usize) -> Option<String> {
    c_str_ref(table, offset).map(String::from)
}

/// [`c_str`], borrowed from the table.
pub fn c_str_ref(table: &[u8], offset: usize) -> Option<&str> {
    let rest = table.get(offset..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..end]).ok()
}

impl<'a> ElfFile<'a> {
    /// Parses the header, the section headers and the symbol table.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LoadError> {
        let hdr = bytes.get(..64).ok_or_else(|| bad("file shorter than an ELF header"))?;
        if hdr[..4] != *b"\x7fELF" {
            return Err(bad("not an ELF file (bad magic)"));
        }
        if hdr[4] != 2 || hdr[5] != 1 {
            return Err(bad("not a 64-bit little-endian ELF file"));
        }
        let machine = u16_at(hdr, 18);
        if machine != EM_BPF {
            return Err(bad(format!("e_machine {machine} is not EM_BPF ({EM_BPF})")));
        }
        let shoff = u64_at(hdr, 40);
        let shentsize = u16_at(hdr, 58);
        let shnum = u16_at(hdr, 60);
        let shstrndx = u16_at(hdr, 62);
        if shentsize != 64 {
            return Err(bad(format!("section header size {shentsize}, expected 64")));
        }
        let table = slice(bytes, shoff, u64::from(shnum) * 64).ok_or_else(|| bad("section headers past the end"))?;
        let raw: Vec<&[u8]> = table.chunks_exact(64).collect();
        let names_hdr = raw.get(usize::from(shstrndx)).ok_or_else(|| bad("no section name table"))?;
        let names = slice(bytes, u64_at(names_hdr, 24), u64_at(names_hdr, 32))
            .ok_or_else(|| bad("section name table past the end"))?;
        let mut sections = Vec::with_capacity(raw.len());
        for (i, h) in raw.iter().enumerate() {
            let name = c_str(names, u32_at(h, 0) as usize).ok_or_else(|| bad(format!("section {i}: bad name")))?;
            let s = Section {
                name,
                kind: u32_at(h, 4),
                flags: u64_at(h, 8),
                offset: u64_at(h, 24),
                size: u64_at(h, 32),
                link: u32_at(h, 40),
                info: u32_at(h, 44),
            };
            if s.kind != SHT_NOBITS && slice(bytes, s.offset, s.size).is_none() {
                return Err(bad(format!("section {}: contents past the end of the file", s.name)));
            }
            sections.push(s);
        }
        let mut file = ElfFile { bytes, sections, symbols: Vec::new() };
        file.symbols = file.read_symbols()?;
        Ok(file)
    }

    /// The contents of section `index` (empty for NOBITS).
    pub fn data(&self, index: usize) -> &'a [u8] {
        match self.sections.get(index) {
            Some(s) if s.kind != SHT_NOBITS => slice(self.bytes, s.offset, s.size).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The index of the section named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.name == name)
    }

    fn read_symbols(&self) -> Result<Vec<Symbol>, LoadError> {
        let Some(idx) = self.sections.iter().position(|s| s.kind == SHT_SYMTAB) else {
            return Err(bad("no symbol table (.symtab)"));
        };
        let data = self.data(idx);
        let strtab = self.data(self.sections[idx].link as usize);
        let mut out = Vec::with_capacity(data.len() / 24);
        for (i, e) in data.chunks_exact(24).enumerate() {
            let name = c_str(strtab, u32_at(e, 0) as usize).ok_or_else(|| bad(format!("symbol {i}: bad name")))?;
            out.push(Symbol {
                name,
                kind: e[4] & 0xf,
                section: u16_at(e, 6),
                value: u64_at(e, 8),
                size: u64_at(e, 16),
            });
        }
        Ok(out)
    }

    /// The relocations of REL section `index`.
    pub fn rels(&self, index: usize) -> Result<Vec<Rel>, LoadError> {
        let data = self.data(index);
        if !data.len().is_multiple_of(16) {
            return Err(bad(format!("section {}: size is not a multiple of 16", self.sections[index].name)));
        }
        let rels = data.chunks_exact(16).map(|e| {
            let info = u64_at(e, 8);
            Rel { offset: u64_at(e, 0), symbol: (info >> 32) as u32, kind: info as u32 }
        });
        Ok(rels.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_foreign_files_are_refused() {
        assert!(ElfFile::parse(b"\x7fELF").is_err());
        let mut hdr = [0u8; 64];
        hdr[..4].copy_from_slice(b"\x7fELF");
        hdr[4] = 2;
        hdr[5] = 1;
        hdr[18] = 62; // x86-64
        let e = ElfFile::parse(&hdr).err().expect("refused");
        assert!(e.reason.contains("EM_BPF"), "{e}");
        hdr[18] = EM_BPF as u8;
        hdr[58] = 64;
        hdr[60] = 3;
        hdr[40] = 200; // section headers past the end
        let e = ElfFile::parse(&hdr).err().expect("refused");
        assert!(e.reason.contains("past the end"), "{e}");
    }

    #[test]
    fn strings_end_at_nul() {
        assert_eq!(c_str(b"a\0bc\0", 2).as_deref(), Some("bc"));
        assert_eq!(c_str(b"abc", 0), None);
        assert_eq!(c_str(b"a\0", 9), None);
    }
}
