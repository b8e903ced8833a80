//! Linux's own eBPF through raw `bpf(2)`: the kernel side of the
//! differential tests. An object's maps are created, global data filled
//! (and `.rodata` frozen), its programs relocated with the real file
//! descriptors and loaded as BPF_PROG_TYPE_SYSCALL, and run with
//! BPF_PROG_TEST_RUN. Shared by the kernel differential tests and the
//! benchmark (benches/vm.rs), whose kernel contender it loads.
#![allow(dead_code, unsafe_code)]

use proctap_vm::elf::{ObjProgram, Object};
use proctap_vm::map::MapDef;
use std::io;

const MAP_CREATE: libc::c_long = 0;
const MAP_LOOKUP_ELEM: libc::c_long = 1;
const MAP_UPDATE_ELEM: libc::c_long = 2;
const MAP_GET_NEXT_KEY: libc::c_long = 4;
const PROG_LOAD: libc::c_long = 5;
const PROG_TEST_RUN: libc::c_long = 10;
const MAP_FREEZE: libc::c_long = 22;
const BTF_LOAD: libc::c_long = 18;
const OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const ENABLE_STATS: libc::c_long = 32;
/// `enum bpf_stats_type`: run time and run count of every program.
const STATS_RUN_TIME: u32 = 0;
/// `struct bpf_prog_info`: its size and where run_time_ns and run_cnt sit.
const PROG_INFO_LEN: usize = 232;
const INFO_RUN_TIME_NS: usize = 192;
const INFO_RUN_CNT: usize = 200;
const PROG_TYPE_SYSCALL: u32 = 31;
const F_SLEEPABLE: u32 = 1 << 4;

/// `union bpf_attr`, as bytes (it is 128+ bytes; every command here fits).
struct Attr([u8; 144]);

impl Attr {
    fn new() -> Self {
        Attr([0; 144])
    }
    fn u32(mut self, at: usize, v: u32) -> Self {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, at: usize, v: u64) -> Self {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, at: usize, v: &[u8]) -> Self {
        self.0[at..at + v.len()].copy_from_slice(v);
        self
    }
    fn get_u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap())
    }
    fn call(&mut self, cmd: libc::c_long) -> io::Result<i64> {
        // SAFETY: the attribute buffer is valid for its whole size, which
        // we pass; every pointer inside it points at memory the caller
        // keeps alive for the call.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, self.0.as_mut_ptr(), self.0.len() as u32) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
}

fn ptr<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// A file descriptor, closed when dropped.
pub struct Fd(pub i32);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// A map name the kernel accepts: [A-Za-z0-9_.], 15 bytes.
fn kernel_name(name: &str) -> Vec<u8> {
    let clean = |c: char| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' };
    name.chars().map(clean).take(15).collect::<String>().into_bytes()
}

/// The number of possible CPUs (per-CPU values the kernel copies out).
pub fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("read possible CPUs");
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// A kernel map.
pub struct KMap {
    pub fd: Fd,
    pub def: MapDef,
}

impl KMap {
    pub fn create(def: &MapDef) -> io::Result<KMap> {
        let mut a = Attr::new()
            .u32(0, def.map_type)
            .u32(4, def.key_size)
            .u32(8, def.value_size)
            .u32(12, def.max_entries)
            .u32(16, def.flags)
            .bytes(28, &kernel_name(&def.name));
        let fd = a.call(MAP_CREATE)? as i32;
        Ok(KMap { fd: Fd(fd), def: def.clone() })
    }

    fn is_percpu(&self) -> bool {
        matches!(self.def.map_type, 5 | 6 | 10)
    }

    /// Bytes MAP_LOOKUP_ELEM copies out.
    pub fn value_len(&self) -> usize {
        if self.is_percpu() {
            (self.def.value_size as usize).div_ceil(8) * 8 * possible_cpus()
        } else {
            self.def.value_size as usize
        }
    }

    pub fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let mut a = Attr::new().u32(0, self.fd.0 as u32).u64(8, ptr(key.as_ptr())).u64(16, ptr(value.as_ptr()));
        a.call(MAP_UPDATE_ELEM).map(drop)
    }

    pub fn freeze(&self) -> io::Result<()> {
        Attr::new().u32(0, self.fd.0 as u32).call(MAP_FREEZE).map(drop)
    }

    pub fn lookup(&self, key: &[u8]) -> io::Result<Vec<u8>> {
        let mut value = vec![0u8; self.value_len()];
        let mut a = Attr::new().u32(0, self.fd.0 as u32).u64(8, ptr(key.as_ptr())).u64(16, ptr(value.as_mut_ptr()));
        a.call(MAP_LOOKUP_ELEM)?;
        Ok(value)
    }

    /// Every (key, value) MAP_GET_NEXT_KEY iteration yields.
    pub fn entries(&self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let ks = self.def.key_size as usize;
        let mut out = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        loop {
            let mut next = vec![0u8; ks];
            let kp = key.as_ref().map_or(0, |k| ptr(k.as_ptr()));
            let mut a = Attr::new().u32(0, self.fd.0 as u32).u64(8, kp).u64(16, ptr(next.as_mut_ptr()));
            match a.call(MAP_GET_NEXT_KEY) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
                Err(e) => return Err(e),
            }
            let value = self.lookup(&next)?;
            out.push((next.clone(), value));
            key = Some(next);
        }
    }
}

/// A shared mapping of a map's pages, unmapped when dropped.
struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: i32, len: usize, offset: usize, prot: i32) -> io::Result<Mapping> {
        // SAFETY: a new shared mapping of the map's pages; the kernel checks
        // the fd, length, offset and protection.
        let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, offset as libc::off_t) };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes for as long as self lives.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }

    fn load_u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes()[at..at + 8].try_into().unwrap())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own the mapping.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

impl KMap {
    /// A ringbuf's committed samples since the last drain, in order
    /// (discarded ones skipped), consumed as libbpf's ring_buffer does:
    /// through the consumer and producer pages mapped from the map's fd.
    pub fn drain_ringbuf(&self) -> io::Result<Vec<Vec<u8>>> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let size = self.def.max_entries as usize;
        let cons = Mapping::new(self.fd.0, page, 0, libc::PROT_READ | libc::PROT_WRITE)?;
        let prod = Mapping::new(self.fd.0, page + 2 * size, page, libc::PROT_READ)?;
        let (mut pos, end) = (cons.load_u64(0), prod.load_u64(0));
        let data = &prod.bytes()[page..];
        let mut out = Vec::new();
        while pos < end {
            let at = (pos as usize) & (size - 1);
            let hdr = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            if hdr & (1 << 31) != 0 {
                break; // busy: not committed yet
            }
            let len = (hdr & !(3 << 30)) as usize;
            if hdr & (1 << 30) == 0 {
                out.push(data[at + 8..at + 8 + len].to_vec());
            }
            pos += (len as u64 + 8).div_ceil(8) * 8;
        }
        // SAFETY: the consumer page is mapped writable; the position is
        // the u64 at its start, which only this consumer writes.
        unsafe { std::ptr::write_volatile(cons.addr as *mut u64, pos) };
        Ok(out)
    }
}

/// An object's maps in the kernel, filled and frozen as libbpf does.
pub fn create_maps(obj: &Object) -> io::Result<Vec<KMap>> {
    let mut maps = Vec::new();
    for m in &obj.maps {
        let km = KMap::create(&m.def).map_err(|e| io::Error::new(e.kind(), format!("map {}: {e}", m.name)))?;
        if let Some(init) = &m.init {
            km.update(&0u32.to_le_bytes(), init)?;
        }
        if m.readonly {
            km.freeze()?;
        }
        maps.push(km);
    }
    Ok(maps)
}

/// Loads an object's BTF (fixed up by the parser); the log in the error.
pub fn load_btf(btf: &[u8]) -> Result<Fd, String> {
    let mut log = vec![0u8; 1 << 16];
    let mut a = Attr::new()
        .u64(0, ptr(btf.as_ptr()))
        .u64(8, ptr(log.as_mut_ptr()))
        .u32(16, btf.len() as u32)
        .u32(20, log.len() as u32)
        .u32(24, 1);
    match a.call(BTF_LOAD) {
        Ok(fd) => Ok(Fd(fd as i32)),
        Err(e) => Err(format!("BPF_BTF_LOAD: {e}\n{}", c_string(&log))),
    }
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A loaded kernel program.
pub struct KProg {
    pub fd: Fd,
}

impl KProg {
    /// Loads `prog` as a BPF_PROG_TYPE_SYSCALL program, which Linux wants
    /// sleepable (BPF_F_SLEEPABLE, as libbpf's SEC("syscall") loads it);
    /// the verifier's log is in the error. The load that succeeds asks for
    /// no log (a long loop's log overflows any buffer: ENOSPC); a refusal
    /// is loaded again with the log on.
    pub fn load(prog: &ObjProgram, maps: &[KMap], btf: Option<&Fd>) -> Result<KProg, String> {
        match KProg::load_logged(prog, maps, btf, 0) {
            Ok(p) => Ok(p),
            Err(_) => KProg::load_logged(prog, maps, btf, 1),
        }
    }

    fn load_logged(prog: &ObjProgram, maps: &[KMap], btf: Option<&Fd>, log_level: u32) -> Result<KProg, String> {
        let fds: Vec<u32> = maps.iter().map(|m| m.fd.0 as u32).collect();
        let insns = prog.insns_with_maps(&fds).map_err(|e| e.to_string())?;
        let bytes: Vec<u8> = insns.iter().flat_map(|i| i.encode()).collect();
        let license = b"GPL\0";
        let mut log = vec![0u8; if log_level > 0 { 1 << 20 } else { 0 }];
        let mut a = Attr::new()
            .u32(0, PROG_TYPE_SYSCALL)
            .u32(4, insns.len() as u32)
            .u64(8, ptr(bytes.as_ptr()))
            .u64(16, ptr(license.as_ptr()))
            .u32(24, log_level)
            .u32(28, log.len() as u32)
            .u64(32, if log.is_empty() { 0 } else { ptr(log.as_mut_ptr()) })
            .u32(44, F_SLEEPABLE)
            .bytes(48, &kernel_name(&prog.name));
        let func_info: Vec<u8> =
            prog.func_info.iter().flat_map(|(i, t)| [i.to_le_bytes(), t.to_le_bytes()]).flatten().collect();
        if let (Some(fd), false) = (btf, prog.func_info.is_empty()) {
            a = a.u32(72, fd.0 as u32).u32(76, 8).u64(80, ptr(func_info.as_ptr())).u32(88, prog.func_info.len() as u32);
        }
        match a.call(PROG_LOAD) {
            Ok(fd) => Ok(KProg { fd: Fd(fd as i32) }),
            Err(e) => Err(format!("BPF_PROG_LOAD of {}: {e}\n{}", prog.name, c_string(&log))),
        }
    }

    /// BPF_PROG_TEST_RUN with `repeat` runs: r0 and the kernel's mean
    /// duration of one run in ns. Linux (6.x) refuses `repeat` for
    /// BPF_PROG_TYPE_SYSCALL with EINVAL; the benchmark then times
    /// [`KProg::run`] calls instead.
    pub fn run_repeat(&self, ctx: &mut [u8], repeat: u32) -> io::Result<(u32, u32)> {
        let mut a = Attr::new()
            .u32(0, self.fd.0 as u32)
            .u32(32, repeat)
            .u32(40, ctx.len() as u32)
            .u64(48, ptr(ctx.as_mut_ptr()));
        a.call(PROG_TEST_RUN)?;
        Ok((a.get_u32(4), a.get_u32(36)))
    }

    /// The kernel's run statistics of the program: the total ns it ran
    /// and how many runs (counted only while [`enable_stats`]' fd is open).
    pub fn stats(&self) -> io::Result<(u64, u64)> {
        let mut info = [0u8; PROG_INFO_LEN];
        let mut a = Attr::new().u32(0, self.fd.0 as u32).u32(4, PROG_INFO_LEN as u32).u64(8, ptr(info.as_mut_ptr()));
        a.call(OBJ_GET_INFO_BY_FD)?;
        let word = |at: usize| u64::from_le_bytes(info[at..at + 8].try_into().unwrap());
        Ok((word(INFO_RUN_TIME_NS), word(INFO_RUN_CNT)))
    }

    /// Runs the program on `ctx` (which the kernel writes back); r0 as the
    /// kernel reports it (32 bits).
    pub fn run(&self, ctx: &mut [u8]) -> io::Result<u32> {
        let mut a = Attr::new().u32(0, self.fd.0 as u32).u32(40, ctx.len() as u32).u64(48, ptr(ctx.as_mut_ptr()));
        a.call(PROG_TEST_RUN)?;
        Ok(a.get_u32(4))
    }
}

/// BPF_ENABLE_STATS: the kernel times every program run (run_time_ns,
/// run_cnt) while the returned descriptor is open.
pub fn enable_stats() -> io::Result<Fd> {
    let fd = Attr::new().u32(0, STATS_RUN_TIME).call(ENABLE_STATS)?;
    Ok(Fd(fd as i32))
}

/// Whether the kernel side can run here: `Err` says why not (not root,
/// or the kernel refuses bpf(2)).
pub fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root (BPF_PROG_LOAD needs root)".into());
    }
    let probe = MapDef { map_type: 2, key_size: 4, value_size: 4, max_entries: 1, ..Default::default() };
    KMap::create(&probe).map(drop).map_err(|e| format!("this kernel refuses bpf(BPF_MAP_CREATE): {e}"))
}

/// Pins the calling thread to the first CPU it may run on, so that
/// per-CPU values land in one known slot on both sides: that CPU.
pub fn pin_to_one_cpu() -> u32 {
    // SAFETY: zeroed cpu_set_t values are valid empty sets; the libc calls
    // only read and write the sets we pass with their size.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(libc::sched_getaffinity(0, size, &mut allowed), 0, "sched_getaffinity");
        let cpu = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &allowed)).expect("a CPU");
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        assert_eq!(libc::sched_setaffinity(0, size, &one), 0, "sched_setaffinity");
        cpu as u32
    }
}
