//! The few facts the profiler needs from an ELF64 little-endian file: its GNU
//! build id, its loadable segments (file offset to virtual address) and whether
//! it carries symbols or DWARF. Reads headers and notes only, never the whole file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::BuildId;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHT_SYMTAB: u32 = 2;
const SHT_NOTE: u32 = 7;
const SHT_NOBITS: u32 = 8;
const NT_GNU_BUILD_ID: u32 = 3;
/// Upper bound for one header table or note area read; real files are far below it.
const MAX_READ: u64 = 1 << 20;

/// A loadable segment: file bytes `offset..offset + file_size` appear at
/// virtual address `vaddr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LoadSegment {
    pub offset: u64,
    pub vaddr: u64,
    pub file_size: u64,
}

/// What [`read`] found in an ELF file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ElfFacts {
    /// The NT_GNU_BUILD_ID note's bytes, unpadded.
    pub build_id: Option<Vec<u8>>,
    pub loads: Vec<LoadSegment>,
    /// A non-empty `.symtab` (not stripped).
    pub has_symtab: bool,
    /// `.debug_info` with contents (not a NOBITS placeholder).
    pub has_debug_info: bool,
    /// File ranges (offset, size) of the PLT sections (`.plt`, `.plt.sec`,
    /// `.plt.got`): stubs that jump to other modules' functions.
    pub plt: Vec<(u64, u64)>,
}

impl ElfFacts {
    /// Is this file offset inside a PLT stub?
    pub fn in_plt(&self, file_offset: u64) -> bool {
        self.plt.iter().any(|&(offset, size)| file_offset >= offset && file_offset - offset < size)
    }

    /// The virtual address of a file offset, through the PT_LOAD segment that
    /// holds it.
    pub fn file_offset_to_vaddr(&self, file_offset: u64) -> Option<u64> {
        self.loads
            .iter()
            .find(|l| file_offset >= l.offset && file_offset - l.offset < l.file_size)
            .map(|l| file_offset - l.offset + l.vaddr)
    }
}

fn read_at(file: &File, offset: u64, len: u64) -> Option<Vec<u8>> {
    if len > MAX_READ {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}

/// The build id in a note area (a sequence of Elf64_Nhdr + name + desc, 4-byte aligned).
fn build_id_in_notes(notes: &[u8]) -> Option<Vec<u8>> {
    let align4 = |n: usize| (n + 3) & !3;
    let mut at = 0usize;
    while at + 12 <= notes.len() {
        let namesz = u32_at(notes, at) as usize;
        let descsz = u32_at(notes, at + 4) as usize;
        let kind = u32_at(notes, at + 8);
        let name_at = at + 12;
        let desc_at = name_at.checked_add(align4(namesz))?;
        let end = desc_at.checked_add(align4(descsz))?;
        if desc_at + descsz > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && notes.get(name_at..name_at + namesz) == Some(b"GNU\0".as_slice()) {
            return Some(notes[desc_at..desc_at + descsz].to_vec());
        }
        at = end;
    }
    None
}

/// Does the ELF file at `path` carry this GNU build id?
pub(crate) fn has_build_id(path: &Path, build_id: &BuildId) -> bool {
    let facts = File::open(path).ok().and_then(|f| read(&f));
    facts.and_then(|f| f.build_id).is_some_and(|id| BuildId::from_note(&id) == *build_id)
}

/// Reads the facts of an open ELF64 little-endian file; `None` when it is
/// not one (or is truncated).
pub(crate) fn read(file: &File) -> Option<ElfFacts> {
    let ehdr = read_at(file, 0, 64)?;
    if &ehdr[..4] != b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
        return None;
    }
    let (phoff, shoff) = (u64_at(&ehdr, 0x20), u64_at(&ehdr, 0x28));
    let (phentsize, phnum) = (u16_at(&ehdr, 0x36) as u64, u16_at(&ehdr, 0x38) as u64);
    let (shentsize, shnum, shstrndx) = (u16_at(&ehdr, 0x3a) as u64, u16_at(&ehdr, 0x3c) as u64, u16_at(&ehdr, 0x3e));
    let mut facts = ElfFacts::default();

    // Sections first: a separate debug file keeps .note.gnu.build-id as a
    // section while its PT_NOTE may point at bytes it no longer has.
    if shoff != 0 && shentsize >= 64 && shnum > 0 {
        if let Some(shdrs) = read_at(file, shoff, shentsize * shnum) {
            let sh = |i: u64| &shdrs[(i * shentsize) as usize..((i + 1) * shentsize) as usize];
            let names = (u64::from(shstrndx) < shnum)
                .then(|| read_at(file, u64_at(sh(shstrndx.into()), 24), u64_at(sh(shstrndx.into()), 32)))
                .flatten()
                .unwrap_or_default();
            for i in 0..shnum {
                let s = sh(i);
                let (name_off, kind, offset, size) =
                    (u32_at(s, 0) as usize, u32_at(s, 4), u64_at(s, 24), u64_at(s, 32));
                let name = names.get(name_off..).map(|n| &n[..n.iter().position(|&b| b == 0).unwrap_or(n.len())]);
                match kind {
                    SHT_SYMTAB if size > 0 => facts.has_symtab = true,
                    SHT_NOTE if facts.build_id.is_none() => {
                        facts.build_id = read_at(file, offset, size).and_then(|n| build_id_in_notes(&n))
                    }
                    SHT_NOBITS => {}
                    _ if size > 0 && matches!(name, Some(b".debug_info" | b".zdebug_info")) => {
                        facts.has_debug_info = true
                    }
                    _ if size > 0 && matches!(name, Some(b".plt" | b".plt.sec" | b".plt.got")) => {
                        facts.plt.push((offset, size))
                    }
                    _ => {}
                }
            }
        }
    }
    if phoff != 0 && phentsize >= 56 && phnum > 0 {
        let phdrs = read_at(file, phoff, phentsize * phnum)?;
        for i in 0..phnum as usize {
            let p = &phdrs[i * phentsize as usize..];
            let (kind, offset, vaddr, file_size) = (u32_at(p, 0), u64_at(p, 8), u64_at(p, 16), u64_at(p, 32));
            match kind {
                PT_LOAD => facts.loads.push(LoadSegment { offset, vaddr, file_size }),
                PT_NOTE if facts.build_id.is_none() => {
                    facts.build_id = read_at(file, offset, file_size).and_then(|n| build_id_in_notes(&n))
                }
                _ => {}
            }
        }
    }
    Some(facts)
}
