//! The runtime: the object that owns the maps, the programs, the file
//! descriptors naming them, the links attaching programs to hooks, and the
//! OS. Its typed API (`create_map`, `map_update`, `prog_load`, ...) is
//! what the raw `bpf(2)` surface ([`crate::syscall`]) calls.
//!
//! # Lifetimes, as Linux's reference counts
//! - A map lives while an fd names it or a loaded program uses it.
//! - A program lives while an fd names it, a link attaches it, or a prog
//!   array holds it.
//! - A link lives while its fd is open; closing it detaches it.
//! - When the last fd of a prog array closes, the array is emptied (as
//!   Linux does on the map's last user reference), which breaks the cycle
//!   of a program that tail-calls through an array holding itself.
//! - A map put into [`Runtime::maps_mut`] directly (by a loader) has no
//!   references until a program or an fd takes one, and goes with the last.
//!
//! # Concurrency
//! Every method takes `&mut self`: an OS that fires hooks on several CPUs
//! at once serializes them around the runtime (a lock), which also gives
//! the maps' updates the atomicity programs expect.

pub(crate) mod engine;
mod fds;
mod ids;

pub use engine::ProgramTable;
pub use fds::{Fd, FdTable, Object};

use crate::consts::{map_type, pseudo};
use crate::jit::JitProgram;
use crate::map::{self, flags, MapDef, MapTable};
use crate::osutil::Os;
use crate::program::{Insn, Program};
use crate::retcode::{Errno, LoadError};
use crate::tracepoints::Hooks;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The first fd handed out (0-2 are stdio in a process).
pub const FIRST_FD: Fd = 3;

/// References to a map.
#[derive(Debug, Clone, Copy, Default)]
struct MapRefs {
    /// Fds and programs.
    all: u32,
    /// Fds only.
    fds: u32,
    /// A prog array's program type, fixed by its first program.
    owner_type: Option<u32>,
    /// MAP_FREEZE: `bpf(2)` may no longer write it.
    frozen: bool,
}

/// A loaded program's bookkeeping.
#[derive(Debug, Clone, Default)]
struct ProgRefs {
    refs: u32,
    /// Maps the program references (each holds one map reference).
    maps: Vec<u32>,
}

/// An attachment of a program to hook points.
#[derive(Debug, Clone)]
pub struct Link {
    /// The program id; `None` once detached.
    pub prog: Option<u32>,
    /// The hook points it is attached to (empty once detached).
    pub hooks: Vec<String>,
    /// The kind of hook points.
    pub kind: crate::tracepoints::HookKind,
}

/// An eBPF runtime on OS `O`.
pub struct Runtime<O: Os> {
    pub(crate) os: O,
    pub(crate) maps: MapTable,
    map_refs: BTreeMap<u32, MapRefs>,
    pub(crate) progs: Vec<Option<Program>>,
    /// JIT images by program id, when the JIT is on and could compile it.
    pub(crate) jits: Vec<Option<JitProgram>>,
    jit: bool,
    prog_refs: Vec<ProgRefs>,
    pub(crate) links: Vec<Option<Link>>,
    fds: FdTable,
    pub(crate) hooks: Hooks,
    pub(crate) budget: u64,
}

/// Instructions one run may execute unless [`Runtime::set_budget`] says otherwise.
pub const DEFAULT_BUDGET: u64 = crate::program::DEFAULT_BUDGET;

impl<O: Os> Runtime<O> {
    /// An empty runtime on `os`, fds from [`FIRST_FD`].
    pub fn new(os: O) -> Self {
        Runtime {
            os,
            maps: MapTable::new(),
            map_refs: BTreeMap::new(),
            progs: Vec::new(),
            jits: Vec::new(),
            jit: false,
            prog_refs: Vec::new(),
            links: Vec::new(),
            fds: FdTable::new(FIRST_FD),
            hooks: Hooks::default(),
            budget: DEFAULT_BUDGET,
        }
    }

    /// The same, with fds from `first`.
    pub fn with_first_fd(os: O, first: Fd) -> Self {
        Runtime { fds: FdTable::new(first), ..Runtime::new(os) }
    }

    /// The OS.
    pub fn os(&self) -> &O {
        &self.os
    }

    /// Sets the instruction budget of each run.
    pub fn set_budget(&mut self, budget: u64) {
        self.budget = budget;
    }

    /// Whether programs loaded from now on are compiled by the JIT (off by
    /// default). A program the JIT cannot compile still loads and runs in
    /// the interpreter; [`Runtime::jitted`] tells which.
    pub fn set_jit(&mut self, on: bool) {
        self.jit = on;
    }

    /// Whether program `id` runs as JIT code.
    pub fn jitted(&self, id: u32) -> bool {
        self.jits.get(id as usize).is_some_and(Option::is_some)
    }

    /// The maps, by id.
    pub fn maps(&self) -> &MapTable {
        &self.maps
    }

    /// The maps, by id, mutable (for the OS's side of ringbufs and mmapable arrays).
    pub fn maps_mut(&mut self) -> &mut MapTable {
        &mut self.maps
    }

    /// Program `id`.
    pub fn program(&self, id: u32) -> Option<&Program> {
        self.progs.get(id as usize).and_then(Option::as_ref)
    }

    /// The open fds and what they name.
    pub fn fds(&self) -> &FdTable {
        &self.fds
    }

    /// The map id `fd` names (EBADF otherwise).
    pub fn map_id(&self, fd: Fd) -> Result<u32, Errno> {
        match self.fds.get(fd)? {
            Object::Map(id) => Ok(id),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The program id `fd` names (EBADF for no object, EINVAL for another kind).
    pub fn prog_id(&self, fd: Fd) -> Result<u32, Errno> {
        match self.fds.get(fd)? {
            Object::Prog(id) => Ok(id),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The link id `fd` names.
    pub fn link_id(&self, fd: Fd) -> Result<u32, Errno> {
        match self.fds.get(fd)? {
            Object::Link(id) => Ok(id),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The ring buffer `fd` names, for its consumer (EINVAL for another map).
    pub fn ringbuf(&mut self, fd: Fd) -> Result<&mut map::ringbuf::RingBuf, Errno> {
        let id = self.map_id(fd)?;
        self.maps.get_mut(id).and_then(|m| m.as_ringbuf_mut()).ok_or(Errno::EINVAL)
    }

    /// MAP_CREATE: a new map and its fd.
    pub fn create_map(&mut self, def: &MapDef) -> Result<Fd, Errno> {
        let m = map::create(def, self.os.cpu_count())?;
        let id = self.maps.insert(m);
        self.map_refs.insert(id, MapRefs { all: 1, fds: 1, ..MapRefs::default() });
        Ok(self.fds.open(Object::Map(id)))
    }

    fn map_flags(&self, id: u32) -> u32 {
        self.maps.get(id).map_or(0, |m| m.def().flags)
    }

    /// A map fd that `bpf(2)` may read (EPERM for BPF_F_WRONLY maps).
    fn readable_map(&self, fd: Fd) -> Result<u32, Errno> {
        let id = self.map_id(fd)?;
        if self.map_flags(id) & flags::WRONLY != 0 {
            return Err(Errno::EPERM);
        }
        Ok(id)
    }

    /// A map fd that `bpf(2)` may write (EPERM for BPF_F_RDONLY and frozen maps).
    fn writable_map(&self, fd: Fd) -> Result<u32, Errno> {
        let id = self.map_id(fd)?;
        let frozen = self.map_refs.get(&id).is_some_and(|r| r.frozen);
        if self.map_flags(id) & flags::RDONLY != 0 || frozen {
            return Err(Errno::EPERM);
        }
        Ok(id)
    }

    /// MAP_FREEZE: `bpf(2)` may no longer write map `fd` (programs still
    /// may, unless it was created BPF_F_RDONLY_PROG); EBUSY the second time.
    /// libbpf freezes `.rodata` after filling it.
    pub fn map_freeze(&mut self, fd: Fd) -> Result<(), Errno> {
        let id = self.map_id(fd)?;
        let r = self.map_refs.entry(id).or_default();
        if r.frozen {
            return Err(Errno::EBUSY);
        }
        r.frozen = true;
        Ok(())
    }

    /// The bytes MAP_LOOKUP_ELEM copies out of map `fd` (every CPU's value,
    /// 8-byte rounded, for per-CPU maps).
    pub fn map_value_size(&self, fd: Fd) -> Result<usize, Errno> {
        let id = self.map_id(fd)?;
        Ok(self.maps.get(id).ok_or(Errno::EBADF)?.syscall_value_size())
    }

    /// The key size of map `fd`.
    pub fn map_key_size(&self, fd: Fd) -> Result<usize, Errno> {
        let id = self.map_id(fd)?;
        Ok(self.maps.get(id).ok_or(Errno::EBADF)?.def().key_size as usize)
    }

    /// MAP_LOOKUP_ELEM: `key`'s value into `out` ([`Runtime::map_value_size`]
    /// bytes). A prog array's value is the program's `bpf(2)` id (the
    /// runtime's id plus one, as Linux's ids start at 1).
    pub fn map_lookup(&self, fd: Fd, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        let id = self.readable_map(fd)?;
        let m = self.maps.get(id).ok_or(Errno::EBADF)?;
        m.lookup_copy(key, out)?;
        if let (map_type::PROG_ARRAY, Ok(v)) = (m.def().map_type, <[u8; 4]>::try_from(&out[..])) {
            out.copy_from_slice(&(u32::from_le_bytes(v) + 1).to_le_bytes());
        }
        Ok(())
    }

    /// MAP_LOOKUP_ELEM into a new buffer.
    pub fn map_lookup_vec(&self, fd: Fd, key: &[u8]) -> Result<Vec<u8>, Errno> {
        let mut out = alloc::vec![0u8; self.map_value_size(fd)?];
        self.map_lookup(fd, key, &mut out)?;
        Ok(out)
    }

    /// MAP_UPDATE_ELEM. A prog array's value is a program fd, as in Linux.
    pub fn map_update(&mut self, fd: Fd, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        let id = self.writable_map(fd)?;
        let m = self.maps.get_mut(id).ok_or(Errno::EBADF)?;
        if m.def().map_type != map_type::PROG_ARRAY {
            return m.update_copy(key, value, flags);
        }
        let prog_fd = u32::from_le_bytes(value.try_into().map_err(|_| Errno::EINVAL)?);
        self.prog_array_set(id, key, Some(prog_fd), flags)
    }

    /// MAP_DELETE_ELEM.
    pub fn map_delete(&mut self, fd: Fd, key: &[u8]) -> Result<(), Errno> {
        let id = self.writable_map(fd)?;
        let m = self.maps.get_mut(id).ok_or(Errno::EBADF)?;
        if m.def().map_type != map_type::PROG_ARRAY {
            return m.delete(key);
        }
        self.prog_array_set(id, key, None, 0)
    }

    /// MAP_LOOKUP_AND_DELETE_ELEM: `key`'s value into `out`, then the key
    /// is deleted; hash maps only (ENOTSUPP for others, as Linux without
    /// queues and stacks).
    pub fn map_lookup_and_delete(&mut self, fd: Fd, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        let id = self.writable_map(fd)?;
        self.readable_map(fd)?;
        let m = self.maps.get_mut(id).ok_or(Errno::EBADF)?;
        let hash = [map_type::HASH, map_type::PERCPU_HASH, map_type::LRU_HASH, map_type::LRU_PERCPU_HASH];
        if !hash.contains(&m.def().map_type) {
            return Err(Errno::ENOTSUPP);
        }
        m.lookup_copy(key, out)?;
        m.delete(key)
    }

    /// MAP_GET_NEXT_KEY.
    pub fn map_next_key(&self, fd: Fd, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let id = self.readable_map(fd)?;
        self.maps.get(id).ok_or(Errno::EBADF)?.get_next_key(key, next)
    }

    /// Sets (or empties) a prog array slot, moving program references.
    fn prog_array_set(&mut self, id: u32, key: &[u8], prog_fd: Option<Fd>, flags: u64) -> Result<(), Errno> {
        let Some(prog_fd) = prog_fd else {
            let pa = self.maps.get_mut(id).and_then(|m| m.as_prog_array_mut()).ok_or(Errno::EINVAL)?;
            let old = pa.clear(key)?;
            self.put_prog(old);
            return Ok(());
        };
        let prog = self.prog_id(prog_fd)?;
        let prog_type = self.program(prog).ok_or(Errno::EBADF)?.prog_type;
        if self.map_refs.get(&id).and_then(|r| r.owner_type).is_some_and(|t| t != prog_type) {
            return Err(Errno::EINVAL);
        }
        let m = self.maps.get_mut(id).ok_or(Errno::EBADF)?;
        let old = key.try_into().ok().map(u32::from_le_bytes).and_then(|i| m.prog_at(i));
        m.update_copy(key, &prog.to_le_bytes(), flags)?;
        self.map_refs.entry(id).or_default().owner_type = Some(prog_type);
        self.prog_refs[prog as usize].refs += 1;
        if let Some(old) = old {
            self.put_prog(old);
        }
        Ok(())
    }

    /// PROG_LOAD: admits `insns`, whose ld_imm64 map references carry map
    /// fds (BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE) as libbpf emits them.
    /// A refusal names the program as its section.
    pub fn prog_load(&mut self, name: &str, prog_type: u32, mut insns: Vec<Insn>) -> Result<Fd, LoadError> {
        let named = |e: LoadError| if e.section.is_empty() { e.in_section(name) } else { e };
        let used = self.resolve_map_fds(&mut insns).map_err(named)?;
        let prog = engine::load(name, prog_type, insns, &self.maps).map_err(named)?;
        for m in &used {
            self.map_refs.entry(*m).or_default().all += 1;
        }
        let id = self.progs.len() as u32;
        self.jits.push(if self.jit { engine::compile(&prog, &self.os) } else { None });
        self.progs.push(Some(prog));
        self.prog_refs.push(ProgRefs { refs: 1, maps: used });
        Ok(self.fds.open(Object::Prog(id)))
    }

    /// Replaces map fds in ld_imm64 instructions by map ids; the maps used.
    fn resolve_map_fds(&self, insns: &mut [Insn]) -> Result<Vec<u32>, LoadError> {
        let mut used = Vec::new();
        let mut pc = 0;
        while pc < insns.len() {
            let insn = insns[pc];
            if insn.op == 0x18 && matches!(insn.src, pseudo::MAP_FD | pseudo::MAP_VALUE) {
                let id = self
                    .map_id(insn.imm as Fd)
                    .map_err(|e| LoadError::at(pc, e, format!("fd {} in ld_imm64 is not a map", insn.imm)))?;
                insns[pc].imm = id as i32;
                if !used.contains(&id) {
                    used.push(id);
                }
            }
            pc += if insn.op == 0x18 { 2 } else { 1 };
        }
        Ok(used)
    }

    /// Attaches program `prog_fd` to hook points: the link's fd.
    pub(crate) fn link(
        &mut self,
        prog_fd: Fd,
        hooks: Vec<String>,
        kind: crate::tracepoints::HookKind,
    ) -> Result<Fd, Errno> {
        let prog = self.prog_id(prog_fd)?;
        let prog_type = self.program(prog).ok_or(Errno::EBADF)?.prog_type;
        let id = self.links.len() as u32;
        self.hooks.attach_all(&hooks, kind, prog_type, id)?;
        self.prog_refs[prog as usize].refs += 1;
        self.links.push(Some(Link { prog: Some(prog), hooks, kind }));
        Ok(self.fds.open(Object::Link(id)))
    }

    /// LINK_DETACH: detaches the link from its hooks and drops its program;
    /// the fd stays open (a defunct link) until closed.
    pub fn link_detach(&mut self, link_fd: Fd) -> Result<(), Errno> {
        let id = self.link_id(link_fd)?;
        self.detach(id);
        Ok(())
    }

    fn detach(&mut self, link: u32) {
        let Some(l) = self.links.get_mut(link as usize).and_then(Option::as_mut) else { return };
        let Some(prog) = l.prog.take() else { return };
        let hooks = core::mem::take(&mut l.hooks);
        self.hooks.detach_all(&hooks, link);
        self.put_prog(prog);
    }

    /// The link `id`, if it exists.
    pub fn link_info(&self, id: u32) -> Option<&Link> {
        self.links.get(id as usize).and_then(Option::as_ref)
    }

    /// Closes `fd`: a map or program goes away with its last reference, a
    /// link is detached.
    pub fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        match self.fds.close(fd)? {
            Object::Map(id) => self.put_map(id, true),
            Object::Prog(id) => self.put_prog(id),
            Object::Link(id) => {
                self.detach(id);
                self.links[id as usize] = None;
            }
        }
        Ok(())
    }

    fn put_map(&mut self, id: u32, fd: bool) {
        let Some(r) = self.map_refs.get_mut(&id) else { return };
        r.all = r.all.saturating_sub(1);
        if fd {
            r.fds = r.fds.saturating_sub(1);
        }
        let (all, fds) = (r.all, r.fds);
        if fd && fds == 0 {
            self.empty_prog_array(id);
        }
        if all == 0 {
            self.map_refs.remove(&id);
            self.maps.remove(id);
        }
    }

    /// Empties prog array `id` (no-op for other maps), dropping its programs.
    fn empty_prog_array(&mut self, id: u32) {
        let Some(pa) = self.maps.get_mut(id).and_then(|m| m.as_prog_array_mut()) else { return };
        let max = crate::map::Map::def(pa).max_entries;
        let held: Vec<u32> = (0..max).filter_map(|i: u32| pa.clear(&i.to_le_bytes()).ok()).collect();
        for p in held {
            self.put_prog(p);
        }
    }

    fn put_prog(&mut self, id: u32) {
        let Some(r) = self.prog_refs.get_mut(id as usize).filter(|r| r.refs > 0) else { return };
        r.refs -= 1;
        if r.refs > 0 {
            return;
        }
        let maps = core::mem::take(&mut r.maps);
        self.progs[id as usize] = None;
        self.jits[id as usize] = None;
        for m in maps {
            self.put_map(m, false);
        }
    }

    /// Whether map `id` is still alive.
    pub fn map_alive(&self, id: u32) -> bool {
        self.maps.get(id).is_some()
    }

    /// Whether program `id` is still alive.
    pub fn prog_alive(&self, id: u32) -> bool {
        self.program(id).is_some()
    }
}
