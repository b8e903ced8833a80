//! Loading an object into a [`Runtime`] as a libbpf-style loader does over
//! `bpf(2)`: maps created (global data filled, `.rodata` frozen), programs
//! loaded with the maps' fds, and each program attached where its section
//! name says (`tracepoint/CATEGORY/NAME`, `kprobe/SYMBOL`, ...) when asked.

use super::{ObjProgram, Object};
use crate::consts::update;
use crate::osutil::Os;
use crate::retcode::{Errno, LoadError};
use crate::runtime::{Fd, Runtime};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Where a program attaches, from its section name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachPoint {
    /// `tracepoint/CATEGORY/NAME` or `tp/...`: the tracepoint `CATEGORY/NAME`.
    Tracepoint(String),
    /// `kprobe/SYMBOL` (or, with `ret`, `kretprobe/SYMBOL`).
    Kprobe {
        /// The probed function.
        symbol: String,
        /// Whether it is the return probe.
        ret: bool,
    },
}

impl ObjProgram {
    /// Where the program attaches, if its section names a hook the runtime
    /// has (tracepoints and kprobes).
    pub fn attach_point(&self) -> Option<AttachPoint> {
        let s = self.section.as_str();
        if let Some(tp) = s.strip_prefix("tracepoint/").or_else(|| s.strip_prefix("tp/")) {
            return Some(AttachPoint::Tracepoint(tp.into()));
        }
        let (symbol, ret) = match (s.strip_prefix("kprobe/"), s.strip_prefix("kretprobe/")) {
            (Some(sym), _) => (sym, false),
            (_, Some(sym)) => (sym, true),
            _ => return None,
        };
        Some(AttachPoint::Kprobe { symbol: symbol.into(), ret })
    }
}

/// What an object became in a runtime: fds by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectFds {
    /// Each map's name and fd, in the object's order.
    pub maps: Vec<(String, Fd)>,
    /// Each program's function name and fd.
    pub programs: Vec<(String, Fd)>,
    /// Each attached program's function name and link fd.
    pub links: Vec<(String, Fd)>,
}

impl ObjectFds {
    /// The fd of map `name`.
    pub fn map(&self, name: &str) -> Option<Fd> {
        self.maps.iter().find(|(n, _)| n == name).map(|m| m.1)
    }
    /// The fd of program `name`.
    pub fn program(&self, name: &str) -> Option<Fd> {
        self.programs.iter().find(|(n, _)| n == name).map(|p| p.1)
    }
}

impl Object {
    /// Creates the maps and loads the programs in `rt`; with `attach`, also
    /// attaches every program whose section names a hook (registered in
    /// `rt` by the OS). The first refusal is the error, naming the section
    /// (and the program and instruction, for a program), and what was
    /// already made is closed again.
    pub fn load_into<O: Os>(&self, rt: &mut Runtime<O>, attach: bool) -> Result<ObjectFds, LoadError> {
        let mut out = ObjectFds::default();
        let loaded = self.load_steps(rt, attach, &mut out);
        if loaded.is_err() {
            let all = out.links.iter().chain(&out.programs).chain(&out.maps);
            for (_, fd) in all {
                let _ = rt.close(*fd);
            }
        }
        loaded.map(|()| out)
    }

    fn load_steps<O: Os>(&self, rt: &mut Runtime<O>, attach: bool, out: &mut ObjectFds) -> Result<(), LoadError> {
        for m in &self.maps {
            let section = if m.init.is_some() { m.name.as_str() } else { ".maps" };
            let refuse =
                |e: Errno, what: &str| LoadError::new(e, format!("map {}: {what}", m.name)).in_section(section);
            let fd = rt.create_map(&m.def).map_err(|e| refuse(e, "MAP_CREATE failed"))?;
            if let Some(init) = &m.init {
                rt.map_update(fd, &0u32.to_le_bytes(), init, update::ANY)
                    .map_err(|e| refuse(e, "filling it failed"))?;
            }
            if m.readonly {
                rt.map_freeze(fd).map_err(|e| refuse(e, "MAP_FREEZE failed"))?;
            }
            out.maps.push((m.name.clone(), fd));
        }
        let fds: Vec<u32> = out.maps.iter().map(|m| m.1).collect();
        for p in &self.programs {
            let named = |mut e: LoadError| {
                e.section = p.section.clone();
                e.reason = format!("program {}: {}", p.name, e.reason);
                e
            };
            let insns = p.insns_with_maps(&fds).map_err(named)?;
            let fd = rt.prog_load(&p.name, p.prog_type, insns).map_err(named)?;
            out.programs.push((p.name.clone(), fd));
            if attach {
                if let Some(link) = attach_one(rt, p, fd)? {
                    out.links.push((p.name.clone(), link));
                }
            }
        }
        Ok(())
    }
}

/// Attaches `p` (loaded as `fd`) where its section says: the link's fd.
fn attach_one<O: Os>(rt: &mut Runtime<O>, p: &ObjProgram, fd: Fd) -> Result<Option<Fd>, LoadError> {
    let linked = match p.attach_point() {
        None => return Ok(None),
        Some(AttachPoint::Tracepoint(tp)) => rt.attach_tracepoint(fd, &tp),
        Some(AttachPoint::Kprobe { symbol, ret }) => rt.attach_kprobe(fd, &[&symbol], ret),
    };
    let refuse = |e: Errno| LoadError::new(e, format!("program {}: cannot attach", p.name)).in_section(&p.section);
    linked.map(Some).map_err(refuse)
}
