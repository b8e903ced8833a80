//! The symbolizer's raw-address path: user addresses placed in their
//! process' mappings (a frame-pointer sample's, or those an unwound stack
//! copy gives), cached per process and address.

use std::sync::Arc;

use blazesym::symbolize::{self as bz, source};

use super::super::index::MapsEntry;
use super::super::unwind::UnwindStop;
use super::{base_name, to_location, Location, Symbolizer};
use crate::UserFrame;

impl Symbolizer {
    /// Unwinds a copied user stack ([`Unwind::StackCopy`](crate::Unwind::StackCopy))
    /// from the registers `(ip, sp, bp)` and symbolizes its frames,
    /// innermost first: an on-CPU or an off-CPU sample's.
    pub fn symbolize_stack_copy(&mut self, pid: u32, regs: (u64, u64, u64), stack: &[u8]) -> Vec<Arc<Location>> {
        let (ip, sp, bp) = regs;
        let (addresses, stop) = match self.maps.for_address(pid, ip) {
            Some(maps) => self.unwinder.unwind(pid, maps, ip, sp, bp, stack),
            None => (vec![ip], None), // gone, and no record told its mappings: [unknown]
        };
        let mut out: Vec<Arc<Location>> = addresses
            .into_iter()
            .enumerate()
            .map(|(i, a)| self.symbolize_user(pid, UserFrame::Address(a), i > 0))
            .collect();
        // A chain cut short says so where it ends, rather than passing for
        // a whole one.
        if let Some(stop) = stop {
            out.push(self.stops.entry(stop).or_insert_with(|| Arc::new(stop_location(stop))).clone());
        }
        out
    }

    /// Why an unwinding stopped short, when `location` is the placeholder
    /// frame [`symbolize_stack_copy`](Self::symbolize_stack_copy) ended a
    /// chain with.
    pub fn unwind_stop(&self, location: &Arc<Location>) -> Option<UnwindStop> {
        self.stops.iter().find(|(_, l)| Arc::ptr_eq(l, location)).map(|(&stop, _)| stop)
    }

    /// Symbolizes a raw user address through the process' current mappings.
    pub(super) fn symbolize_address(&mut self, pid: u32, ip: u64) -> Arc<Location> {
        let generation = self.maps.get(pid).map_or(0, |m| m.generation);
        if let Some((_, hit)) = self.raw.get(&pid).and_then(|r| r.get(&ip)).filter(|(g, _)| *g == generation) {
            return hit.clone();
        }
        let maps = self.maps.for_address(pid, ip);
        let generation = maps.map_or(0, |m| m.generation);
        let entry: Option<MapsEntry> = maps.and_then(|m| m.find(ip)).cloned();
        let unknown = |module: Option<Arc<str>>| {
            // One location for every address no mapping names (a process
            // gone before its mappings were read, anonymous memory): they
            // differ per process (ASLR), and a long run must not keep one
            // for each.
            Arc::new(Location::unresolved(false, module, None, 0, "[unknown]".to_string()))
        };
        let location = match entry {
            None => return unknown(None),
            // A pseudo mapping ([vdso]) named, its offset in it; anonymous
            // memory (JIT code) has no name.
            Some(e) if !e.is_file() && !e.path.is_empty() => {
                let name = format!("{}+{:#x}", e.path, ip - e.start);
                Arc::new(Location::unresolved(false, Some(Arc::from(e.path.as_str())), None, ip - e.start, name))
            }
            Some(e) if !e.is_file() => unknown(None),
            Some(e) => {
                let file_offset = ip - e.start + e.offset;
                self.index.learn_entries(pid, std::slice::from_ref(&e));
                match self.index.build_id_of(e.dev, e.inode) {
                    Some(id) => self.symbolize_file_offset(id, file_offset),
                    None => {
                        // No build id: symbolize the mapped file directly.
                        let module: Arc<str> = Arc::from(e.path.as_str());
                        let path = format!("/proc/{pid}/root{}", e.path);
                        let src = bz::source::Source::Elf(source::Elf::new(path));
                        match self.blaze.symbolize_single(&src, bz::Input::FileOffset(file_offset)) {
                            Ok(bz::Symbolized::Sym(sym)) => {
                                Arc::new(to_location(&sym, false, Some(module), None, file_offset))
                            }
                            _ => {
                                let name = format!("{}+{file_offset:#x}", base_name(&module));
                                Arc::new(Location::unresolved(false, Some(module), None, file_offset, name))
                            }
                        }
                    }
                }
            }
        };
        self.raw.entry(pid).or_default().insert(ip, (generation, location.clone()));
        location
    }
}

/// The frame that ends a chain whose unwinding stopped short.
fn stop_location(stop: UnwindStop) -> Location {
    Location::unresolved(false, None, None, 0, stop.placeholder().to_string())
}
