//! `.BTF.ext`: per-section records about instructions. The loader reads
//! two kinds: function info (which BTF FUNC each function is, which a
//! kernel wants for `bpf_loop` callbacks and global functions) and CO-RE
//! relocations (refused, or taken as local).

use crate::retcode::{Errno, LoadError};
use alloc::string::String;
use alloc::vec::Vec;

/// One CO-RE relocation of `.BTF.ext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRelo {
    /// The instruction index in its section.
    pub insn: usize,
    /// The local type the access is against.
    pub type_id: u32,
    /// The access string ("0:1:2").
    pub access: String,
    /// `enum bpf_core_relo_kind`.
    pub kind: u32,
}

/// One function info record: the function at `insn` of a section is BTF
/// FUNC `type_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncInfo {
    /// The function's first instruction in its section.
    pub insn: usize,
    /// Its BTF FUNC type.
    pub type_id: u32,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn bad(reason: &str) -> LoadError {
    LoadError::new(Errno::EINVAL, reason).in_section(".BTF.ext")
}

/// Calls `each(section, record)` for every record of the table whose
/// offset and length the header has at `hdr_at` and `hdr_at + 4`.
fn records(
    ext: &[u8],
    strings: &[u8],
    hdr_at: usize,
    min_rec: usize,
    mut each: impl FnMut(&str, &[u8]) -> Result<(), LoadError>,
) -> Result<(), LoadError> {
    let hdr_len = u32_at(ext, 4).ok_or_else(|| bad("header past the end"))? as usize;
    if hdr_len < hdr_at + 8 {
        return Ok(());
    }
    let off = u32_at(ext, hdr_at).ok_or_else(|| bad("header past the end"))? as usize;
    let len = u32_at(ext, hdr_at + 4).ok_or_else(|| bad("header past the end"))? as usize;
    let start = hdr_len.checked_add(off).ok_or_else(|| bad("table past the end"))?;
    let data = start.checked_add(len).and_then(|end| ext.get(start..end)).ok_or_else(|| bad("table past the end"))?;
    if data.is_empty() {
        return Ok(());
    }
    let rec = u32_at(data, 0).ok_or_else(|| bad("truncated"))? as usize;
    if rec < min_rec {
        return Err(bad("record size too small"));
    }
    let mut at = 4;
    while at < data.len() {
        let sec = u32_at(data, at).and_then(|o| super::file::c_str(strings, o as usize));
        let sec = sec.ok_or_else(|| bad("bad section name"))?;
        let n = u32_at(data, at + 4).ok_or_else(|| bad("truncated"))? as usize;
        at += 8;
        let end = n.checked_mul(rec).and_then(|len| at.checked_add(len)).filter(|&e| e <= data.len());
        let end = end.ok_or_else(|| bad("truncated"))?;
        for r in data[at..end].chunks_exact(rec) {
            each(&sec, r)?;
        }
        at = end;
    }
    Ok(())
}

/// The CO-RE relocations, by section name.
pub fn core_relos(ext: &[u8], strings: &[u8]) -> Result<Vec<(String, CoreRelo)>, LoadError> {
    let mut out = Vec::new();
    records(ext, strings, 24, 16, |sec, r| {
        let field = |k: usize| u32_at(r, 4 * k).unwrap_or(0);
        let access = super::file::c_str(strings, field(2) as usize).unwrap_or_default();
        let relo = CoreRelo { insn: field(0) as usize / 8, type_id: field(1), access, kind: field(3) };
        out.push((sec.into(), relo));
        Ok(())
    })?;
    Ok(out)
}

/// The function info records, by section name.
pub fn func_infos(ext: &[u8], strings: &[u8]) -> Result<Vec<(String, FuncInfo)>, LoadError> {
    let mut out = Vec::new();
    records(ext, strings, 8, 8, |sec, r| {
        let field = |k: usize| u32_at(r, 4 * k).unwrap_or(0);
        out.push((sec.into(), FuncInfo { insn: field(0) as usize / 8, type_id: field(1) }));
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(func: &[u32], core: &[u32]) -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        let words = [32, 0, func.len() as u32 * 4, 0, 0, func.len() as u32 * 4, core.len() as u32 * 4];
        for w in words.iter().chain(func).chain(core) {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b
    }

    #[test]
    fn records_are_read_per_section() {
        let strings = b"\0syscall\0.text\0\x30:1\0";
        let func = [8, 1, 2, 0, 5, 16, 7];
        let core = [16, 9, 1, 24, 10, 15, 0];
        let b = ext(&func, &core);
        let f = func_infos(&b, strings).expect("func info");
        assert_eq!(
            f,
            [
                ("syscall".into(), FuncInfo { insn: 0, type_id: 5 }),
                ("syscall".into(), FuncInfo { insn: 2, type_id: 7 })
            ]
        );
        let c = core_relos(&b, strings).expect("core");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, ".text");
        assert_eq!(c[0].1, CoreRelo { insn: 3, type_id: 10, access: "0:1".into(), kind: 0 });
    }

    #[test]
    fn truncated_tables_are_refused() {
        let strings = b"\0syscall\0";
        let b = ext(&[8, 1, 3, 0, 5], &[]);
        assert!(func_infos(&b, strings).is_err());
        assert!(func_infos(&b[..12], strings).is_err());
    }
}
