//! Relocation: turns a function of an object into a self-contained program.
//!
//! Starting from the program's own instructions, every BPF-to-BPF call and
//! every `ld_imm64` of a function's address (a `bpf_loop` callback) pulls
//! the called function in, appended after what is there (once per
//! program), and gets the pc-relative offset the kernel expects. Targets
//! come from the relocation when there is one (`R_BPF_64_32` on calls:
//! function `symbol + (imm + 1) * 8`; `R_BPF_64_64` on `ld_imm64`:
//! `symbol + imm`), else from the instruction (a call inside one section:
//! `pc + imm + 1`). Map and global-data references become
//! `BPF_PSEUDO_MAP_FD` / `BPF_PSEUDO_MAP_VALUE` with map indexes.
//!
//! Every instruction remembers where it came from (section, index), so
//! relocations, CO-RE records and errors are found and reported in the
//! object's own terms.

use super::btf::Btf;
use super::btf_ext::{CoreRelo, FuncInfo};
use super::file::{ElfFile, Rel, Symbol, SHF_EXECINSTR, SHN_UNDEF, SHT_REL, STT_FUNC};
use super::ParseOptions;
use crate::consts::{class, jmp, pseudo};
use crate::program::Insn;
use crate::retcode::{Errno, LoadError};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// `R_BPF_64_64`: the address in an `ld_imm64`.
pub const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: a call's target.
pub const R_BPF_64_32: u32 = 10;
/// `src_reg` of an `ld_imm64` loading a function's address.
pub const PSEUDO_FUNC: u8 = 4;
/// `src_reg` of a call to a kernel function.
pub const PSEUDO_KFUNC_CALL: u8 = 2;
/// The `ld_imm64` opcode.
pub const LD_IMM64: u8 = class::LD | 0x18;
/// The call opcode.
pub const CALL: u8 = class::JMP | jmp::CALL;

/// CO-RE kinds whose compile-time value is right when the target's types
/// are the object's own (everything but `bpf_core_type_id_kernel`).
const LOCAL_CORE_KINDS: &[u32] = &[0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12];

/// Where an instruction came from: (section index, instruction index).
type Origin = (usize, usize);

/// The `.BTF.ext` records by section name: CO-RE relocations and function info.
pub type ExtRecords = (Vec<(String, CoreRelo)>, Vec<(String, FuncInfo)>);

/// A linked program.
pub struct Linked {
    /// The instructions, subprograms appended.
    pub insns: Vec<Insn>,
    /// The CO-RE relocations taken as local, by instruction index.
    pub core: Vec<(usize, CoreRelo)>,
    /// (instruction index, BTF FUNC id) of every function placed, or
    /// nothing when one has no function info.
    pub func_info: Vec<(u32, u32)>,
}

/// What linking needs of an object, indexed once.
pub struct Linker<'a> {
    elf: &'a ElfFile<'a>,
    btf: Option<&'a Btf<'a>>,
    code: Vec<Vec<Insn>>,
    functions: Vec<Vec<(String, usize, usize)>>,
    rels: BTreeMap<Origin, Rel>,
    core: BTreeMap<Origin, CoreRelo>,
    funcs: BTreeMap<Origin, u32>,
    maps_section: Option<usize>,
    map_offsets: &'a [(u64, usize)],
    data_maps: &'a [(usize, usize)],
}

impl<'a> Linker<'a> {
    /// Decodes the code sections and indexes functions, relocations and
    /// CO-RE records.
    pub fn new(
        elf: &'a ElfFile<'a>,
        map_offsets: &'a [(u64, usize)],
        data_maps: &'a [(usize, usize)],
        (core_list, func_list): ExtRecords,
        btf: Option<&'a Btf<'a>>,
    ) -> Result<Self, LoadError> {
        let n = elf.sections.len();
        let mut code = alloc::vec![Vec::new(); n];
        for (i, s) in elf.sections.iter().enumerate() {
            if s.flags & SHF_EXECINSTR != 0 {
                code[i] = Insn::decode_all(elf.data(i)).map_err(|e| e.in_section(&s.name))?;
            }
        }
        let mut functions = alloc::vec![Vec::new(); n];
        for sym in elf.symbols.iter().filter(|s| s.kind == STT_FUNC && s.section != SHN_UNDEF) {
            if let Some(list) = functions.get_mut(usize::from(sym.section)) {
                list.push((sym.name.clone(), (sym.value / 8) as usize, (sym.size / 8) as usize));
            }
        }
        functions.iter_mut().for_each(|l| l.sort_by_key(|f| f.1));
        let mut rels = BTreeMap::new();
        for (i, s) in elf.sections.iter().enumerate() {
            let target = s.info as usize;
            if s.kind != SHT_REL || elf.sections.get(target).is_none_or(|t| t.flags & SHF_EXECINSTR == 0) {
                continue;
            }
            for r in elf.rels(i)? {
                if r.offset % 8 != 0 || elf.symbols.get(r.symbol as usize).is_none() {
                    let why = format!("relocation at byte {} is misaligned or names no symbol", r.offset);
                    return Err(LoadError::new(Errno::EINVAL, why).in_section(&s.name));
                }
                rels.insert((target, (r.offset / 8) as usize), r);
            }
        }
        let by_name: BTreeMap<&str, usize> =
            elf.sections.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let mut core = BTreeMap::new();
        for (sec, relo) in core_list {
            if let Some(&i) = by_name.get(sec.as_str()) {
                core.insert((i, relo.insn), relo);
            }
        }
        let mut funcs = BTreeMap::new();
        for (sec, f) in func_list {
            if let Some(&i) = by_name.get(sec.as_str()) {
                funcs.insert((i, f.insn), f.type_id);
            }
        }
        let maps_section = elf.find(".maps");
        Ok(Linker { elf, btf, code, functions, rels, core, funcs, maps_section, map_offsets, data_maps })
    }

    /// The functions of section `sec`: (name, first instruction, length).
    pub fn functions(&self, sec: usize) -> Vec<(String, usize, usize)> {
        self.functions.get(sec).cloned().unwrap_or_default()
    }

    fn err(&self, (sec, idx): Origin, reason: impl Into<String>) -> LoadError {
        LoadError::at(idx, Errno::EINVAL, reason).in_section(&self.elf.sections[sec].name)
    }

    /// Links the function at `start` (`len` instructions) of section `sec`:
    /// its instructions with subprograms appended and references resolved,
    /// and the CO-RE relocations taken as local.
    pub fn link(&self, sec: usize, start: usize, len: usize, options: ParseOptions) -> Result<Linked, LoadError> {
        let mut prog = Prog::default();
        self.place(&mut prog, (sec, start))?;
        if prog.insns.len() != len {
            return Err(self.err((sec, start), "function size disagrees with its symbol"));
        }
        let mut core = Vec::new();
        let mut i = 0;
        while i < prog.insns.len() {
            let origin = prog.origin[i];
            if let Some(relo) = self.core.get(&origin) {
                self.check_core(origin, relo, options)?;
                core.push((i, relo.clone()));
            }
            i += self.relocate(&mut prog, i)?;
        }
        let func_info: Option<Vec<(u32, u32)>> =
            prog.placed.iter().map(|(origin, pos)| self.funcs.get(origin).map(|&ty| (*pos as u32, ty))).collect();
        Ok(Linked { insns: prog.insns, core, func_info: func_info.unwrap_or_default() })
    }

    /// Resolves instruction `i`; how many instructions it takes.
    fn relocate(&self, prog: &mut Prog, i: usize) -> Result<usize, LoadError> {
        let insn = prog.insns[i];
        let origin = prog.origin[i];
        let rel = self.rels.get(&origin);
        let sym = rel.map(|r| &self.elf.symbols[r.symbol as usize]);
        if insn.op == CALL && insn.src == PSEUDO_KFUNC_CALL {
            let name = sym.map(|s| s.name.as_str()).unwrap_or("?");
            return Err(self.err(origin, format!("call of kernel function {name} (kfunc): the runtime has none")));
        }
        if insn.op == CALL && insn.src == pseudo::CALL {
            let target = match (rel, sym) {
                (Some(r), Some(s)) => self.call_target(origin, r, s, insn.imm)?,
                _ => {
                    (origin.0, checked_target(origin.1, insn.imm).ok_or_else(|| self.err(origin, "call out of range"))?)
                }
            };
            let pos = self.place(prog, target).map_err(|e| self.explain(e, origin))?;
            prog.insns[i].imm = (pos as i64 - i as i64 - 1) as i32;
            return Ok(1);
        }
        if insn.op == LD_IMM64 {
            if i + 1 >= prog.insns.len() {
                return Err(self.err(origin, "ld_imm64 without its second half"));
            }
            if let (Some(r), Some(s)) = (rel, sym) {
                self.ld_imm64(prog, i, r, s)?;
            }
            return Ok(2);
        }
        if let Some(r) = rel {
            let why = format!("relocation type {} on an instruction (opcode {:#04x}) that takes none", r.kind, insn.op);
            return Err(self.err(origin, why));
        }
        Ok(1)
    }

    /// The (section, instruction) a relocated call goes to.
    fn call_target(&self, origin: Origin, r: &Rel, s: &Symbol, imm: i32) -> Result<Origin, LoadError> {
        if r.kind != R_BPF_64_32 {
            return Err(self.err(origin, format!("call relocation of type {}, expected R_BPF_64_32", r.kind)));
        }
        if s.section == SHN_UNDEF {
            let why = format!(
                "call of extern function {} (a kfunc, or a function of another object): \
                 the runtime has no kernel functions and links no other object",
                s.name
            );
            return Err(self.err(origin, why));
        }
        let target =
            checked_target((s.value / 8) as usize, imm).ok_or_else(|| self.err(origin, "call out of range"))?;
        Ok((usize::from(s.section), target))
    }

    /// Resolves an `ld_imm64` with a relocation: a map, global data or a function.
    fn ld_imm64(&self, prog: &mut Prog, i: usize, r: &Rel, s: &Symbol) -> Result<(), LoadError> {
        let origin = prog.origin[i];
        if r.kind != R_BPF_64_64 {
            return Err(self.err(origin, format!("ld_imm64 relocation of type {}, expected R_BPF_64_64", r.kind)));
        }
        if s.section == SHN_UNDEF {
            let why =
                format!("extern symbol {} (a ksym or kconfig variable): the runtime has no kernel symbols", s.name);
            return Err(self.err(origin, why));
        }
        let sec = usize::from(s.section);
        let offset = s.value as i64 + i64::from(prog.insns[i].imm);
        if Some(sec) == self.maps_section {
            let map = self.map_offsets.iter().find(|(o, _)| *o as i64 == offset).map(|m| m.1);
            let map = map.ok_or_else(|| self.err(origin, format!("{} is not a map of .maps", s.name)))?;
            prog.insns[i].src = pseudo::MAP_FD;
            prog.insns[i].imm = map as i32;
            prog.insns[i + 1].imm = 0;
        } else if let Some(&(_, map)) = self.data_maps.iter().find(|(d, _)| *d == sec) {
            let value = u32::try_from(offset).ok().filter(|&o| u64::from(o) <= self.elf.sections[sec].size);
            let value = value.ok_or_else(|| self.err(origin, format!("offset {offset} outside {}", s.name)))?;
            prog.insns[i].src = pseudo::MAP_VALUE;
            prog.insns[i].imm = map as i32;
            prog.insns[i + 1].imm = value as i32;
        } else if self.elf.sections.get(sec).is_some_and(|t| t.flags & SHF_EXECINSTR != 0) {
            let target = usize::try_from(offset / 8).map_err(|_| self.err(origin, "function address out of range"))?;
            let pos = self.place(prog, (sec, target)).map_err(|e| self.explain(e, origin))?;
            prog.insns[i].src = PSEUDO_FUNC;
            prog.insns[i].imm = (pos as i64 - i as i64 - 1) as i32;
            prog.insns[i + 1].imm = 0;
        } else {
            let name = &self.elf.sections.get(sec).map(|t| t.name.as_str()).unwrap_or("?");
            let why = format!("ld_imm64 of {} in section {name}, which is neither .maps nor global data", s.name);
            return Err(self.err(origin, why));
        }
        Ok(())
    }

    /// The position of the function starting at `target` in `prog`,
    /// appending it first if it is not there yet.
    fn place(&self, prog: &mut Prog, target: Origin) -> Result<usize, LoadError> {
        if let Some(&(_, pos)) = prog.placed.iter().find(|(t, _)| *t == target) {
            return Ok(pos);
        }
        let (sec, start) = target;
        let f = self.functions.get(sec).and_then(|l| l.iter().find(|f| f.1 == start));
        let Some((_, _, len)) = f else {
            let name = self.elf.sections.get(sec).map_or("?", |t| t.name.as_str());
            let why = format!("instruction {start} of section {name} is not the start of a function");
            return Err(LoadError::new(Errno::EINVAL, why));
        };
        let code = start.checked_add(*len).and_then(|end| self.code[sec].get(start..end)).filter(|c| !c.is_empty());
        let code = code.ok_or_else(|| self.err(target, "function outside its section"))?;
        let pos = prog.insns.len();
        prog.placed.push((target, pos));
        prog.insns.extend_from_slice(code);
        prog.origin.extend((start..start + len).map(|i| (sec, i)));
        Ok(pos)
    }

    /// A placement error, told at the instruction that asked for it.
    fn explain(&self, e: LoadError, origin: Origin) -> LoadError {
        if e.section.is_empty() {
            self.err(origin, format!("bad BPF-to-BPF call or callback: {}", e.reason))
        } else {
            e
        }
    }

    /// Refuses a CO-RE relocation unless it may be taken as local.
    fn check_core(&self, origin: Origin, relo: &CoreRelo, options: ParseOptions) -> Result<(), LoadError> {
        let ty = self.btf.map(|b| b.name_of(relo.type_id)).unwrap_or("?");
        let what = format!("CO-RE relocation (kind {}) of type {ty} access {}", relo.kind, relo.access);
        if !options.core_as_local {
            return Err(self.err(origin, format!("{what} needs the kernel's BTF, which the runtime does not have")));
        }
        if !LOCAL_CORE_KINDS.contains(&relo.kind) {
            return Err(self.err(origin, format!("{what} asks for a kernel type id")));
        }
        Ok(())
    }
}

/// `pc + imm + 1`, if it is an index.
fn checked_target(pc: usize, imm: i32) -> Option<usize> {
    usize::try_from(pc as i64 + i64::from(imm) + 1).ok()
}

/// A program being linked.
#[derive(Default)]
struct Prog {
    insns: Vec<Insn>,
    origin: Vec<Origin>,
    placed: Vec<(Origin, usize)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_targets_are_pc_relative() {
        assert_eq!(checked_target(0, 2), Some(3));
        assert_eq!(checked_target(5, -1), Some(5));
        assert_eq!(checked_target(0, -2), None);
    }
}
