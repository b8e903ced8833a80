//! The commands tools list loaded objects with: PROG_GET_NEXT_ID,
//! MAP_GET_NEXT_ID, PROG_GET_FD_BY_ID, MAP_GET_FD_BY_ID and
//! OBJ_GET_INFO_BY_FD, with `struct bpf_map_info`, `struct bpf_prog_info`
//! and `struct bpf_link_info` at Linux's offsets. Object ids in `bpf(2)`
//! are the runtime's ids plus one: Linux's ids start at 1 and a start id of
//! 0 means "from the first".

use super::{put_u32, Attr};
use crate::osutil::Os;
use crate::retcode::Errno;
use crate::runtime::{Fd, Object, Runtime};
use crate::tracepoints::HookKind;
use alloc::vec;
use alloc::vec::Vec;

#[allow(missing_docs)]
pub const PROG_GET_NEXT_ID: u32 = 11;
#[allow(missing_docs)]
pub const MAP_GET_NEXT_ID: u32 = 12;
#[allow(missing_docs)]
pub const PROG_GET_FD_BY_ID: u32 = 13;
#[allow(missing_docs)]
pub const MAP_GET_FD_BY_ID: u32 = 14;
#[allow(missing_docs)]
pub const OBJ_GET_INFO_BY_FD: u32 = 15;

/// sizeof(struct bpf_map_info), (struct bpf_prog_info), (struct bpf_link_info).
const MAP_INFO: usize = 104;
const PROG_INFO: usize = 232;
const LINK_INFO: usize = 12;

/// Linux's BPF_LINK_TYPE_RAW_TRACEPOINT and BPF_LINK_TYPE_KPROBE_MULTI.
const LINK_RAW_TRACEPOINT: u32 = 1;
const LINK_KPROBE_MULTI: u32 = 8;

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A name as a 16-byte NUL-padded C array (cut to 15 bytes).
fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = name.len().min(15);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

impl<O: Os> Runtime<O> {
    pub(super) fn sys_next_id(&mut self, cmd: u32, a: &Attr, raw: &mut [u8]) -> Result<(), Errno> {
        let start = a.u32(0).checked_sub(1);
        let next = if cmd == MAP_GET_NEXT_ID { self.next_map_id(start) } else { self.next_prog_id(start) };
        put_u32(raw, 4, next.ok_or(Errno::ENOENT)? + 1);
        Ok(())
    }

    pub(super) fn sys_fd_by_id(&mut self, cmd: u32, a: &Attr) -> Result<Fd, Errno> {
        if a.u32(8) != 0 {
            return Err(Errno::EINVAL); // open_flags (BPF_F_RDONLY...) are not supported
        }
        let id = a.u32(0).checked_sub(1).ok_or(Errno::ENOENT)?;
        if cmd == MAP_GET_FD_BY_ID {
            self.map_fd_by_id(id)
        } else {
            self.prog_fd_by_id(id)
        }
    }

    /// OBJ_GET_INFO_BY_FD: fills the caller's info struct (up to `info_len`
    /// bytes; the bytes past the struct this runtime knows must be zero,
    /// E2BIG) and writes back the length it filled.
    pub(super) fn sys_obj_info(&mut self, a: &Attr, raw: &mut [u8]) -> Result<(), Errno> {
        let (fd, len, addr) = (a.u32(0), a.u32(4) as usize, a.u64(8));
        let known = match self.fds().get(fd)? {
            Object::Map(_) => MAP_INFO,
            Object::Prog(_) => PROG_INFO,
            Object::Link(_) => LINK_INFO,
        };
        let user = self.copy_in(addr, len.min(4096))?;
        if len > 4096 || user.get(known..).is_some_and(|t| t.iter().any(|b| *b != 0)) {
            return Err(Errno::E2BIG);
        }
        let mut info = vec![0u8; known];
        let n = len.min(known);
        info[..n].copy_from_slice(&user[..n]);
        match self.fds().get(fd)? {
            Object::Map(id) => self.map_info(id, &mut info),
            Object::Prog(id) => self.prog_info(id, &mut info)?,
            Object::Link(id) => self.link_info_bytes(id, &mut info),
        }
        self.copy_out(addr, &info[..n])?;
        put_u32(raw, 4, n as u32);
        Ok(())
    }

    fn map_info(&self, id: u32, info: &mut [u8]) {
        let Some(m) = self.maps().get(id) else { return };
        let d = m.def();
        for (at, v) in
            [(0, d.map_type), (4, id + 1), (8, d.key_size), (12, d.value_size), (16, d.max_entries), (20, d.flags)]
        {
            put(info, at, &v.to_le_bytes());
        }
        put(info, 24, &name16(&d.name));
    }

    /// `struct bpf_prog_info`: type, id, name, the map ids (up to the
    /// caller's `nr_map_ids` into `map_ids`) and the resolved instructions
    /// (up to the caller's `xlated_prog_len` into `xlated_prog_insns`).
    fn prog_info(&self, id: u32, info: &mut [u8]) -> Result<(), Errno> {
        let Some(p) = self.program(id) else { return Ok(()) };
        let rd32 = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let rd64 = |b: &[u8], at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let (xlated_cap, xlated_ptr) = (rd32(info, 20) as usize, rd64(info, 32));
        let (maps_cap, maps_ptr) = (rd32(info, 52) as usize, rd64(info, 56));
        let code: Vec<u8> = p.insns.iter().flat_map(|i| i.encode()).collect();
        if xlated_cap > 0 && xlated_ptr != 0 {
            self.copy_out(xlated_ptr, &code[..xlated_cap.min(code.len())])?;
        }
        let map_ids: Vec<u8> = self.prog_map_ids(id).iter().flat_map(|m| (m + 1).to_le_bytes()).collect();
        if maps_cap > 0 && maps_ptr != 0 {
            self.copy_out(maps_ptr, &map_ids[..(maps_cap * 4).min(map_ids.len())])?;
        }
        put(info, 0, &p.prog_type.to_le_bytes());
        put(info, 4, &(id + 1).to_le_bytes());
        put(info, 20, &(code.len() as u32).to_le_bytes());
        put(info, 52, &(map_ids.len() as u32 / 4).to_le_bytes());
        put(info, 64, &name16(&p.name));
        put(info, 216, &(p.insns.len() as u32).to_le_bytes());
        Ok(())
    }

    fn link_info_bytes(&self, id: u32, info: &mut [u8]) {
        let Some(l) = self.link_info(id) else { return };
        let kind = match l.kind {
            HookKind::Tracepoint => LINK_RAW_TRACEPOINT,
            HookKind::Kprobe | HookKind::Kretprobe => LINK_KPROBE_MULTI,
        };
        put(info, 0, &kind.to_le_bytes());
        put(info, 4, &(id + 1).to_le_bytes());
        put(info, 8, &l.prog.map_or(0, |p| p + 1).to_le_bytes());
    }
}
