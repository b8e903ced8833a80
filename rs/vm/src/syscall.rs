//! The `bpf(2)` command surface: [`Runtime::bpf`] takes a command number
//! and `union bpf_attr` as bytes, with Linux's numbers and field offsets
//! (include/uapi/linux/bpf.h), reads and writes user memory through the
//! OS, and calls the typed API of [`crate::runtime`].
//!
//! Size checks follow Linux: bytes past the `union bpf_attr` this runtime
//! knows ([`ATTR_SIZE`]) must be zero (E2BIG); a shorter attr is zero
//! extended; bytes past the last field of the command must be zero
//! (EINVAL).
//!
//! Commands:
//! - MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM,
//!   MAP_GET_NEXT_KEY as in Linux (BTF fields are accepted and ignored),
//!   MAP_LOOKUP_AND_DELETE_ELEM (hash maps) and MAP_FREEZE (libbpf
//!   freezes `.rodata`);
//! - PROG_LOAD: the standard command; ld_imm64 with BPF_PSEUDO_MAP_FD or
//!   BPF_PSEUDO_MAP_VALUE carries map fds; a refusal's reason is written
//!   to `log_buf` when a log is asked for; BTF, func and line info are
//!   ignored;
//! - attaching: BPF_RAW_TRACEPOINT_OPEN names a tracepoint hook;
//!   LINK_CREATE with attach type BPF_TRACE_KPROBE_MULTI names kprobe hooks
//!   by symbol (`kprobe_multi.syms`; with BPF_F_KPROBE_MULTI_RETURN, the
//!   kretprobe hooks); both return a link fd;
//! - detaching: LINK_DETACH (the link's fd stays open, defunct) or closing
//!   the link's fd ([`Runtime::close`]); PROG_ATTACH and PROG_DETACH, which
//!   attach to cgroups and devices in Linux, are EINVAL;
//! - PROG_TEST_RUN: runs a program on `ctx_in`, `repeat` times, writing
//!   `retval`, `duration` and `ctx_out`;
//! - PROG_GET_NEXT_ID, MAP_GET_NEXT_ID, PROG_GET_FD_BY_ID,
//!   MAP_GET_FD_BY_ID and OBJ_GET_INFO_BY_FD (maps, programs, links), for
//!   tools that list what is loaded; ids in `bpf(2)` are the runtime's ids
//!   plus one (Linux's start at 1);
//! - closing an object is [`Runtime::close`] (Linux's `close(2)`).

use crate::consts::{cmd, MAX_INSNS};
use crate::map::MapDef;
use crate::osutil::Os;
use crate::program::Insn;
use crate::retcode::{Errno, LoadError};
use crate::runtime::{Fd, Runtime};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

mod info;

/// Bytes of `union bpf_attr` this runtime knows (Linux 6.18's).
pub const ATTR_SIZE: usize = 168;
/// Linux's BPF_MAP_LOOKUP_AND_DELETE_ELEM command.
pub const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
/// Linux's BPF_MAP_FREEZE command.
pub const MAP_FREEZE: u32 = 22;
/// Linux's BPF_TRACE_KPROBE_MULTI attach type.
pub const TRACE_KPROBE_MULTI: u32 = 42;
/// Linux's BPF_F_KPROBE_MULTI_RETURN.
pub const KPROBE_MULTI_RETURN: u32 = 1;
/// Linux's cap on kprobe_multi.cnt (MAX_KPROBE_MULTI_CNT).
const MAX_KPROBE_MULTI: u32 = 1 << 20;
/// The largest PROG_TEST_RUN context (Linux's U16_MAX for syscall programs).
const MAX_TEST_CTX: u32 = u16::MAX as u32;
/// PROG_LOAD prog_flags accepted (alignment and verifier-test flags, ignored).
const PROG_FLAGS_OK: u32 = 0xf;

/// The end of each command's last field (Linux's `CHECK_ATTR`).
fn last_field_end(c: u32) -> Option<usize> {
    Some(match c {
        cmd::MAP_CREATE => 92,
        cmd::MAP_LOOKUP_ELEM | cmd::MAP_UPDATE_ELEM | MAP_LOOKUP_AND_DELETE_ELEM => 32,
        cmd::MAP_DELETE_ELEM => 16,
        cmd::MAP_GET_NEXT_KEY => 24,
        cmd::PROG_LOAD => 168,
        cmd::PROG_ATTACH | cmd::PROG_DETACH => 32,
        cmd::PROG_TEST_RUN => 76,
        cmd::RAW_TRACEPOINT_OPEN => 24,
        cmd::LINK_CREATE => 60,
        cmd::LINK_DETACH | MAP_FREEZE => 4,
        info::PROG_GET_NEXT_ID | info::MAP_GET_NEXT_ID | info::PROG_GET_FD_BY_ID | info::MAP_GET_FD_BY_ID => 16,
        info::OBJ_GET_INFO_BY_FD => 16,
        _ => return None,
    })
}

/// `union bpf_attr`, zero-extended to [`ATTR_SIZE`].
pub(crate) struct Attr([u8; ATTR_SIZE]);

impl Attr {
    pub(crate) fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap_or_default())
    }
    pub(crate) fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.0[at..at + 8].try_into().unwrap_or_default())
    }
}

/// Writes `v` at `at` of the caller's attr, if the caller passed that far.
pub(crate) fn put_u32(attr: &mut [u8], at: usize, v: u32) {
    if let Some(b) = attr.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

/// Checks the attr's size as Linux does and copies it.
fn read_attr(c: u32, raw: &[u8]) -> Result<Attr, Errno> {
    if raw.len() > ATTR_SIZE && raw[ATTR_SIZE..].iter().any(|b| *b != 0) {
        return Err(Errno::E2BIG);
    }
    let mut a = [0u8; ATTR_SIZE];
    let n = raw.len().min(ATTR_SIZE);
    a[..n].copy_from_slice(&raw[..n]);
    let end = last_field_end(c).ok_or(Errno::EINVAL)?;
    if a[end..].iter().any(|b| *b != 0) {
        return Err(Errno::EINVAL);
    }
    Ok(Attr(a))
}

/// A Linux object name (`map_name`, `prog_name`): NUL-terminated within 16
/// bytes, letters, digits, `_` and `.` only.
fn object_name(b: &[u8]) -> Result<String, Errno> {
    let len = b.iter().position(|c| *c == 0).ok_or(Errno::EINVAL)?;
    let name = &b[..len];
    if !name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.') {
        return Err(Errno::EINVAL);
    }
    Ok(name.iter().map(|c| *c as char).collect())
}

impl<O: Os> Runtime<O> {
    /// The `bpf(2)` system call: command `cmd` on `attr` (`union bpf_attr`
    /// as the caller's bytes, `size` = `attr.len()`). Returns what the
    /// syscall returns on success (an fd, or 0), or the errno.
    pub fn bpf(&mut self, cmd: u32, attr: &mut [u8]) -> Result<i64, Errno> {
        let a = read_attr(cmd, attr)?;
        match cmd {
            cmd::MAP_CREATE => self.sys_map_create(&a).map(i64::from),
            cmd::MAP_LOOKUP_ELEM => self.sys_map_lookup(&a).map(|_| 0),
            cmd::MAP_UPDATE_ELEM => self.sys_map_update(&a).map(|_| 0),
            cmd::MAP_DELETE_ELEM => self.sys_map_delete(&a).map(|_| 0),
            cmd::MAP_GET_NEXT_KEY => self.sys_map_next_key(&a).map(|_| 0),
            cmd::PROG_LOAD => self.sys_prog_load(&a, attr).map(i64::from),
            cmd::RAW_TRACEPOINT_OPEN => self.sys_raw_tracepoint_open(&a).map(i64::from),
            cmd::LINK_CREATE => self.sys_link_create(&a).map(i64::from),
            cmd::LINK_DETACH => self.link_detach(a.u32(0)).map(|_| 0),
            cmd::PROG_TEST_RUN => self.sys_test_run(&a, attr).map(|_| 0),
            MAP_FREEZE => self.map_freeze(a.u32(0)).map(|_| 0),
            MAP_LOOKUP_AND_DELETE_ELEM => self.sys_map_lookup_and_delete(&a).map(|_| 0),
            info::PROG_GET_NEXT_ID | info::MAP_GET_NEXT_ID => self.sys_next_id(cmd, &a, attr).map(|_| 0),
            info::PROG_GET_FD_BY_ID | info::MAP_GET_FD_BY_ID => self.sys_fd_by_id(cmd, &a).map(i64::from),
            info::OBJ_GET_INFO_BY_FD => self.sys_obj_info(&a, attr).map(|_| 0),
            _ => Err(Errno::EINVAL),
        }
    }

    pub(crate) fn copy_in(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; len];
        self.os.copy_from_user(&mut buf, addr).map_err(|_| Errno::EFAULT)?;
        Ok(buf)
    }

    pub(crate) fn copy_out(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.os.copy_to_user(addr, bytes).map_err(|_| Errno::EFAULT)
    }

    /// A user C string of at most `max` bytes (longer ones are cut, as
    /// `strncpy_from_user` into a `max + 1` buffer does).
    fn user_str(&self, addr: u64, max: usize) -> Result<String, Errno> {
        let mut out = String::new();
        for i in 0..max as u64 {
            let mut c = [0u8];
            self.os.copy_from_user(&mut c, addr + i).map_err(|_| Errno::EFAULT)?;
            if c[0] == 0 {
                break;
            }
            out.push(c[0] as char);
        }
        Ok(out)
    }

    fn sys_map_create(&mut self, a: &Attr) -> Result<Fd, Errno> {
        if a.u32(44) != 0 || a.u64(64) != 0 {
            return Err(Errno::EINVAL); // map_ifindex (offload), map_extra (bloom filters)
        }
        let def = MapDef {
            map_type: a.u32(0),
            key_size: a.u32(4),
            value_size: a.u32(8),
            max_entries: a.u32(12),
            flags: a.u32(16),
            name: object_name(&a.0[28..44])?,
        };
        self.create_map(&def)
    }

    /// The map fd and key of an ELEM command, with the key copied in.
    fn elem_key(&self, a: &Attr) -> Result<(Fd, Vec<u8>), Errno> {
        let fd = a.u32(0);
        let key_size = self.map_key_size(fd)?;
        Ok((fd, self.copy_in(a.u64(8), key_size)?))
    }

    fn sys_map_lookup(&mut self, a: &Attr) -> Result<(), Errno> {
        let fd = a.u32(0);
        self.map_key_size(fd)?;
        if a.u64(24) != 0 {
            return Err(Errno::EINVAL); // BPF_F_LOCK: no spin locks here
        }
        let (fd, key) = self.elem_key(a)?;
        let value = self.map_lookup_vec(fd, &key)?;
        self.copy_out(a.u64(16), &value)
    }

    fn sys_map_lookup_and_delete(&mut self, a: &Attr) -> Result<(), Errno> {
        let (fd, key) = self.elem_key(a)?;
        if a.u64(24) != 0 {
            return Err(Errno::EINVAL); // BPF_F_LOCK: no spin locks here
        }
        let mut value = vec![0u8; self.map_value_size(fd)?];
        self.map_lookup_and_delete(fd, &key, &mut value)?;
        self.copy_out(a.u64(16), &value)
    }

    fn sys_map_update(&mut self, a: &Attr) -> Result<(), Errno> {
        let (fd, key) = self.elem_key(a)?;
        let value = self.copy_in(a.u64(16), self.map_value_size(fd)?)?;
        self.map_update(fd, &key, &value, a.u64(24))
    }

    fn sys_map_delete(&mut self, a: &Attr) -> Result<(), Errno> {
        let (fd, key) = self.elem_key(a)?;
        self.map_delete(fd, &key)
    }

    fn sys_map_next_key(&mut self, a: &Attr) -> Result<(), Errno> {
        let fd = a.u32(0);
        let key_size = self.map_key_size(fd)?;
        let key = match a.u64(8) {
            0 => None,
            addr => Some(self.copy_in(addr, key_size)?),
        };
        let mut next = vec![0u8; key_size];
        self.map_next_key(fd, key.as_deref(), &mut next)?;
        self.copy_out(a.u64(16), &next)
    }

    fn sys_prog_load(&mut self, a: &Attr, raw: &mut [u8]) -> Result<Fd, Errno> {
        let (insn_cnt, log_level, log_size, log_buf) = (a.u32(4) as usize, a.u32(24), a.u32(28), a.u64(32));
        if a.u32(44) & !PROG_FLAGS_OK != 0 || a.u32(64) != 0 {
            return Err(Errno::EINVAL); // prog_flags, prog_ifindex (offload)
        }
        let log_ok = if log_level == 0 {
            log_buf == 0 && log_size == 0
        } else {
            log_level <= 0xf && log_buf != 0 && log_size >= 128
        };
        if !log_ok {
            return Err(Errno::EINVAL);
        }
        if insn_cnt == 0 {
            return Err(Errno::EINVAL);
        }
        if insn_cnt > MAX_INSNS {
            return Err(Errno::E2BIG);
        }
        self.user_str(a.u64(16), 127)?; // the license: read, as Linux does; every license is accepted
        let name = object_name(&a.0[48..64])?;
        let insns = Insn::decode_all(&self.copy_in(a.u64(8), insn_cnt * 8)?).map_err(|e| e.errno)?;
        let loaded = self.prog_load(&name, a.u32(0), insns);
        if log_level != 0 {
            let text = match &loaded {
                Ok(_) => String::new(),
                Err(e) => alloc::format!("{e}\n"),
            };
            if let Err(e) = self.write_log(log_buf, log_size, &text, raw) {
                if let Ok(fd) = loaded {
                    let _ = self.close(fd); // the load fails with its log, as in Linux
                }
                return Err(e);
            }
        }
        loaded.map_err(|e: LoadError| e.errno)
    }

    /// Writes `text` to the user log buffer, cut to `size - 1` bytes and
    /// NUL-terminated, and `log_true_size` (the bytes a full log needs).
    fn write_log(&self, buf: u64, size: u32, text: &str, raw: &mut [u8]) -> Result<(), Errno> {
        let keep = text.len().min(size as usize - 1);
        let mut out = Vec::from(&text.as_bytes()[..keep]);
        out.push(0);
        self.copy_out(buf, &out)?;
        put_u32(raw, 140, text.len() as u32 + 1);
        Ok(())
    }

    fn sys_raw_tracepoint_open(&mut self, a: &Attr) -> Result<Fd, Errno> {
        let prog_fd = a.u32(8);
        self.prog_id(prog_fd)?;
        if a.u64(0) == 0 {
            return Err(Errno::EINVAL); // BTF-based attach (no name) is not supported
        }
        let name = self.user_str(a.u64(0), 127)?;
        self.attach_tracepoint(prog_fd, &name)
    }

    fn sys_link_create(&mut self, a: &Attr) -> Result<Fd, Errno> {
        let prog_fd = a.u32(0);
        self.prog_id(prog_fd)?;
        if a.u32(8) != TRACE_KPROBE_MULTI || a.u32(12) != 0 {
            return Err(Errno::EINVAL);
        }
        let (flags, cnt, syms, addrs) = (a.u32(16), a.u32(20), a.u64(24), a.u64(32));
        if flags & !KPROBE_MULTI_RETURN != 0 || cnt == 0 || syms == 0 || addrs != 0 {
            return Err(Errno::EINVAL);
        }
        if cnt > MAX_KPROBE_MULTI {
            return Err(Errno::E2BIG);
        }
        let ptrs = self.copy_in(syms, cnt as usize * 8)?;
        let mut names = Vec::with_capacity(cnt as usize);
        for p in ptrs.chunks_exact(8) {
            let addr = u64::from_le_bytes(p.try_into().unwrap_or_default());
            names.push(self.user_str(addr, 511)?);
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.attach_kprobe(prog_fd, &refs, flags & KPROBE_MULTI_RETURN != 0)
    }

    fn sys_test_run(&mut self, a: &Attr, raw: &mut [u8]) -> Result<(), Errno> {
        let prog_fd = a.u32(0);
        self.prog_id(prog_fd)?;
        let (ctx_size_in, ctx_size_out, ctx_in, ctx_out) = (a.u32(40), a.u32(44), a.u64(48), a.u64(56));
        if a.u32(8) != 0 || a.u32(12) != 0 || a.u64(16) != 0 || a.u64(24) != 0 || a.u32(64) != 0 || a.u32(68) != 0 {
            return Err(Errno::EINVAL); // packet data, flags and cpu are not supported
        }
        if ctx_size_in > MAX_TEST_CTX {
            return Err(Errno::EINVAL);
        }
        let mut ctx = match (ctx_in, ctx_size_in) {
            (_, 0) => Vec::new(),
            (0, _) => return Err(Errno::EFAULT),
            (addr, len) => self.copy_in(addr, len as usize)?,
        };
        let runs = a.u32(32).max(1);
        let start = self.os.ktime_ns();
        let mut r0 = 0;
        for _ in 0..runs {
            r0 = self.run_program(prog_fd, &mut ctx)?.map_err(|_| Errno::EFAULT)?;
        }
        let per_run = (self.os.ktime_ns().saturating_sub(start) / runs as u64).min(u32::MAX as u64);
        put_u32(raw, 4, r0 as u32);
        put_u32(raw, 36, per_run as u32);
        if ctx_out != 0 {
            let fit = ctx.len().min(ctx_size_out as usize);
            self.copy_out(ctx_out, &ctx[..fit])?;
            put_u32(raw, 44, ctx.len() as u32);
            if fit < ctx.len() {
                return Err(Errno::ENOSPC);
            }
        }
        Ok(())
    }
}
