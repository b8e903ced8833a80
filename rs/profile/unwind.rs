//! User stacks from a copy of the stack ([`Unwind::StackCopy`]): the
//! registers and stack bytes a sample carries, unwound with the binaries'
//! `.eh_frame` (and `.debug_frame`) tables by framehop, as perf's
//! `--call-graph dwarf` and samply do. Frame pointers are not needed; where
//! a module has no unwind table framehop falls back to them.
//!
//! Each process' executable mappings ([`ProcessMaps`]: from `/proc` or
//! from the stream's mapping records) become framehop modules, rebuilt when
//! the mappings change and dropped at [`StackUnwinder::forget`]. The tables
//! of a file are read once (by device and inode) and shared by every
//! process that maps it.
//!
//! [`Unwind::StackCopy`]: crate::Unwind::StackCopy

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};

use super::index::open_mapped;
use super::maps::ProcessMaps;

/// Frames followed at most (perf's default stack depth).
const DEPTH_MAX: usize = 127;

type Bytes = Arc<[u8]>;

/// A file's unwind tables and the sections framehop reads with them, by
/// their addresses in the file (SVMAs).
struct Tables {
    text: Option<Range<u64>>,
    eh_frame: Option<(Range<u64>, Bytes)>,
    eh_frame_hdr: Option<(Range<u64>, Bytes)>,
    got: Option<Range<u64>>,
    debug_frame: Option<Bytes>,
    /// PT_LOAD segments: (file offset, virtual address, file size).
    loads: Vec<(u64, u64, u64)>,
}

impl Tables {
    /// Reads the file's headers and the sections unwinding needs, not the
    /// whole file (a large library's code would stay in memory for
    /// nothing: unwinding needs only its address range). .eh_frame holds
    /// a rule for every instruction (gcc and clang emit asynchronous
    /// unwind tables on x86-64), so no code is analysed.
    fn read(file: File) -> Option<Tables> {
        let cache = object::ReadCache::new(file);
        let file = object::File::parse(&cache).ok()?;
        let range = |s: &object::Section<'_, '_, &object::ReadCache<File>>| s.address()..s.address() + s.size();
        let section = |name: &str| {
            let s = file.section_by_name(name)?;
            let bytes: Bytes = Arc::from(s.uncompressed_data().ok()?.as_ref());
            Some((range(&s), bytes))
        };
        Some(Tables {
            text: file.section_by_name(".text").map(|s| range(&s)),
            eh_frame: section(".eh_frame"),
            eh_frame_hdr: section(".eh_frame_hdr"),
            got: file.section_by_name(".got").map(|s| range(&s)),
            debug_frame: section(".debug_frame").map(|(_, b)| b),
            loads: file
                .segments()
                .map(|s| {
                    let (offset, size) = s.file_range();
                    (offset, s.address(), size)
                })
                .collect(),
        })
    }

    /// Where the file's address 0 is in the process: the mapping of file
    /// offset `offset` at `start` belongs to the segment holding that offset.
    fn bias(&self, start: u64, offset: u64) -> Option<u64> {
        let &(p_offset, p_vaddr, _) =
            self.loads.iter().find(|&&(o, _, size)| offset >= o && offset - o < size.max(1))?;
        start.checked_sub(p_vaddr + (offset - p_offset))
    }

    fn module(&self, name: &str, avma: Range<u64>, bias: u64) -> Module<Bytes> {
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: self.text.clone(),
            got_svma: self.got.clone(),
            eh_frame_svma: self.eh_frame.as_ref().map(|(r, _)| r.clone()),
            eh_frame: self.eh_frame.as_ref().map(|(_, b)| b.clone()),
            eh_frame_hdr_svma: self.eh_frame_hdr.as_ref().map(|(r, _)| r.clone()),
            eh_frame_hdr: self.eh_frame_hdr.as_ref().map(|(_, b)| b.clone()),
            debug_frame: self.debug_frame.clone(),
            ..Default::default()
        };
        Module::new(name.to_string(), avma, bias, info)
    }
}

/// A process' modules, built from one generation of its mappings.
struct Process {
    unwinder: UnwinderX86_64<Bytes>,
    generation: u64,
}

/// Why the unwinding of a copied stack stopped before its outermost frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnwindStop {
    /// The next frame is above the copied bytes (a deep stack, or a cap
    /// smaller than the stack: raise `stack_copy_max`).
    CopyEnds,
    /// The frame count reached its bound.
    Depth,
    /// No unwind tables led further (code without .eh_frame, JIT code, or
    /// a corrupt stack).
    Unwinding,
    /// The process' modules could not be loaded.
    NoModules,
}

impl UnwindStop {
    /// The placeholder frame that ends such a chain in a profile.
    pub fn placeholder(self) -> &'static str {
        match self {
            UnwindStop::CopyEnds => "[unwind stopped: end of the stack copy]",
            UnwindStop::Depth => "[unwind stopped: 127 frames]",
            UnwindStop::Unwinding => "[unwind stopped: no unwind rule]",
            UnwindStop::NoModules => "[unwind stopped: no modules]",
        }
    }

    /// A one-word name: `end_of_copy`, `depth`, `no_unwind_rule` or `no_modules`.
    pub fn name(self) -> &'static str {
        match self {
            UnwindStop::CopyEnds => "end_of_copy",
            UnwindStop::Depth => "depth",
            UnwindStop::Unwinding => "no_unwind_rule",
            UnwindStop::NoModules => "no_modules",
        }
    }
}

/// Unwinds copied user stacks; holds per-process modules and per-file tables.
#[derive(Default)]
pub struct StackUnwinder {
    cache: CacheX86_64,
    processes: HashMap<u32, Process>,
    /// By (device, inode); None: the file has no usable tables.
    tables: HashMap<(u64, u64), Option<Arc<Tables>>>,
}

impl StackUnwinder {
    pub fn new() -> StackUnwinder {
        StackUnwinder::default()
    }

    /// The addresses of a stack, innermost first: the instruction pointer,
    /// then return addresses; and why the walk stopped short of the stack's
    /// outermost frame, if it did. `stack` holds the bytes from `sp` up;
    /// `maps` are the process' mappings (its modules are rebuilt when they
    /// changed).
    pub fn unwind(
        &mut self,
        pid: u32,
        maps: &ProcessMaps,
        ip: u64,
        sp: u64,
        bp: u64,
        stack: &[u8],
    ) -> (Vec<u64>, Option<UnwindStop>) {
        if ip == 0 {
            return (Vec::new(), None);
        }
        if self.processes.get(&pid).is_none_or(|p| p.generation != maps.generation) {
            let process = self.load(pid, maps);
            self.processes.insert(pid, process);
        }
        let Some(process) = self.processes.get(&pid) else { return (vec![ip], Some(UnwindStop::NoModules)) };
        let mut read_stack = |addr: u64| {
            let at = addr.checked_sub(sp).ok_or(())? as usize;
            let word = stack.get(at..at.checked_add(8).ok_or(())?).ok_or(())?;
            Ok(u64::from_le_bytes(word.try_into().map_err(|_| ())?))
        };
        let mut frames =
            process.unwinder.iter_frames(ip, UnwindRegsX86_64::new(ip, sp, bp), &mut self.cache, &mut read_stack);
        let mut out = Vec::new();
        loop {
            match frames.next() {
                Ok(Some(frame)) => out.push(frame.address()),
                // A null return address ends a thread's first frame.
                Ok(None) | Err(framehop::Error::ReturnAddressIsNull) => return (out, None),
                Err(framehop::Error::CouldNotReadStack(_)) => return (out, Some(UnwindStop::CopyEnds)),
                Err(_) => return (out, Some(UnwindStop::Unwinding)),
            }
            if out.len() >= DEPTH_MAX {
                return (out, Some(UnwindStop::Depth));
            }
        }
    }

    /// Drops a process' modules (at its exit).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    fn load(&mut self, pid: u32, maps: &ProcessMaps) -> Process {
        let mut unwinder = UnwinderX86_64::new();
        for m in maps.entries.iter().filter(|m| m.exec && m.is_file()) {
            let key = (m.dev, m.inode);
            if let std::collections::hash_map::Entry::Vacant(vacant) = self.tables.entry(key) {
                // A file that could not be opened (its process gone, and
                // not at its path here) is tried again for the next
                // process; one that opened but has no tables is not.
                let Some(file) = open_mapped(pid, m) else { continue };
                vacant.insert(Tables::read(file).map(Arc::new));
            }
            let Some(tables) = self.tables.get(&key).cloned().flatten() else { continue };
            let Some(bias) = tables.bias(m.start, m.offset) else { continue };
            unwinder.add_module(tables.module(&m.path, m.start..m.end, bias));
        }
        Process { unwinder, generation: maps.generation }
    }
}
