//! Loading a parsed object: its maps' indexes become the ids (or file
//! descriptors) the maps got.

use super::ObjProgram;
use crate::consts::pseudo;
use crate::program::Insn;
use crate::retcode::{Errno, LoadError};
use alloc::format;
use alloc::vec::Vec;

impl ObjProgram {
    /// The instructions with each map index `i` of a `BPF_PSEUDO_MAP_FD` or
    /// `BPF_PSEUDO_MAP_VALUE` replaced by `ids[i]`: a runtime's map ids, or
    /// a kernel's map file descriptors.
    pub fn insns_with_maps(&self, ids: &[u32]) -> Result<Vec<Insn>, LoadError> {
        let mut insns = self.insns.clone();
        let mut i = 0;
        while i < insns.len() {
            let insn = insns[i];
            if insn.op == super::reloc::LD_IMM64 {
                if matches!(insn.src, pseudo::MAP_FD | pseudo::MAP_VALUE) {
                    let id = usize::try_from(insn.imm).ok().and_then(|m| ids.get(m));
                    let id = id.ok_or_else(|| {
                        let why = format!("map index {} of {} out of range", insn.imm, self.name);
                        LoadError::at(i, Errno::EINVAL, why).in_section(&self.section)
                    })?;
                    insns[i].imm = *id as i32;
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        Ok(insns)
    }
}
