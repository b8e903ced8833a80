//! Hook points: where the OS runs programs.
//!
//! The OS registers named hook points ([`Runtime::register_tracepoint`],
//! [`Runtime::register_kprobe`]), programs are attached to them through
//! `bpf(2)` or the typed API, and the OS calls [`Runtime::run`] with the
//! hook's name and its context when the event happens: every attached
//! program runs, in attach order, and the results come back per program.
//!
//! Names:
//! - a tracepoint is registered and run under its name (`sched_switch`),
//!   the name BPF_RAW_TRACEPOINT_OPEN takes;
//! - a kprobe on symbol `SYM` is two hook points, run as `kprobe/SYM`
//!   (function entry) and `kretprobe/SYM` (function return); LINK_CREATE
//!   with BPF_TRACE_KPROBE_MULTI attaches to the first, or with
//!   BPF_F_KPROBE_MULTI_RETURN to the second, naming the symbol.
//!
//! A kprobe's context is the registers: [`PtRegs`], laid out as x86-64's
//! `struct pt_regs`. Contexts are read-only to programs, as in Linux.

use crate::consts::prog_type;
use crate::osutil::Os;
use crate::program::{Env, Programs};
use crate::retcode::{Errno, Fault};
use crate::runtime::{Fd, Runtime};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// What kind of event a hook point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// A tracepoint: TRACEPOINT, RAW_TRACEPOINT and TRACING programs.
    Tracepoint,
    /// A function entry: KPROBE programs, context [`PtRegs`].
    Kprobe,
    /// A function return: KPROBE programs, context [`PtRegs`].
    Kretprobe,
}

impl HookKind {
    /// Whether programs of `prog_type` may attach to this kind of hook.
    pub fn accepts(self, t: u32) -> bool {
        match self {
            HookKind::Tracepoint => matches!(t, prog_type::TRACEPOINT | prog_type::RAW_TRACEPOINT | prog_type::TRACING),
            HookKind::Kprobe | HookKind::Kretprobe => t == prog_type::KPROBE,
        }
    }
}

/// One hook point and the links attached to it, in attach order.
#[derive(Debug, Clone)]
struct Hook {
    kind: HookKind,
    links: Vec<u32>,
}

/// The registry of hook points.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    hooks: BTreeMap<String, Hook>,
}

impl Hooks {
    /// Adds a hook point (EEXIST if the name is taken).
    pub fn register(&mut self, name: &str, kind: HookKind) -> Result<(), Errno> {
        if self.hooks.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        self.hooks.insert(name.to_string(), Hook { kind, links: Vec::new() });
        Ok(())
    }

    /// The kind of hook `name`, if registered.
    pub fn kind(&self, name: &str) -> Option<HookKind> {
        self.hooks.get(name).map(|h| h.kind)
    }

    /// The links attached to `name`, in attach order.
    pub fn links(&self, name: &str) -> Option<&[u32]> {
        self.hooks.get(name).map(|h| &h.links[..])
    }

    /// Attaches `link` to every hook of `names`, all or none: ENOENT for a
    /// hook that is not registered, EINVAL for one of another kind or a
    /// program type it does not run.
    pub(crate) fn attach_all(
        &mut self,
        names: &[String],
        kind: HookKind,
        prog_type: u32,
        link: u32,
    ) -> Result<(), Errno> {
        for n in names {
            let h = self.hooks.get(n).ok_or(Errno::ENOENT)?;
            if h.kind != kind || !kind.accepts(prog_type) {
                return Err(Errno::EINVAL);
            }
        }
        for n in names {
            if let Some(h) = self.hooks.get_mut(n) {
                h.links.push(link);
            }
        }
        Ok(())
    }

    /// Detaches `link` from `names`.
    pub(crate) fn detach_all(&mut self, names: &[String], link: u32) {
        for n in names {
            if let Some(h) = self.hooks.get_mut(n) {
                h.links.retain(|l| *l != link);
            }
        }
    }
}

/// The result of one program's run at a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// The program's id.
    pub prog: u32,
    /// Its r0, or why it stopped.
    pub result: Result<u64, Fault>,
}

/// x86-64's `struct pt_regs`, in its field order: a kprobe's context.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct PtRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub bp: u64,
    pub bx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub ax: u64,
    pub cx: u64,
    pub dx: u64,
    pub si: u64,
    pub di: u64,
    pub orig_ax: u64,
    pub ip: u64,
    pub cs: u64,
    pub flags: u64,
    pub sp: u64,
    pub ss: u64,
}

impl PtRegs {
    /// Bytes of the struct.
    pub const SIZE: usize = 21 * 8;

    fn fields(&self) -> [u64; 21] {
        [
            self.r15,
            self.r14,
            self.r13,
            self.r12,
            self.bp,
            self.bx,
            self.r11,
            self.r10,
            self.r9,
            self.r8,
            self.ax,
            self.cx,
            self.dx,
            self.si,
            self.di,
            self.orig_ax,
            self.ip,
            self.cs,
            self.flags,
            self.sp,
            self.ss,
        ]
    }

    /// The registers as a program reads them (little-endian u64s in field order).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        for (chunk, v) in out.chunks_exact_mut(8).zip(self.fields()) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// The System V argument registers: di, si, dx, cx, r8, r9 set to `args`
    /// (what PT_REGS_PARM1..6 read).
    pub fn with_args(args: &[u64]) -> Self {
        let mut r = PtRegs::default();
        let slots = [&mut r.di, &mut r.si, &mut r.dx, &mut r.cx, &mut r.r8, &mut r.r9];
        for (slot, a) in slots.into_iter().zip(args) {
            *slot = *a;
        }
        r
    }
}

impl<O: Os> Runtime<O> {
    /// Registers a tracepoint hook point `name`.
    pub fn register_tracepoint(&mut self, name: &str) -> Result<(), Errno> {
        self.hooks.register(name, HookKind::Tracepoint)
    }

    /// Registers the kprobe hook points of `symbol`: `kprobe/SYMBOL` and
    /// `kretprobe/SYMBOL`.
    pub fn register_kprobe(&mut self, symbol: &str) -> Result<(), Errno> {
        let (entry, ret) = (kprobe_hook(symbol, false), kprobe_hook(symbol, true));
        if self.hooks.kind(&entry).is_some() || self.hooks.kind(&ret).is_some() {
            return Err(Errno::EEXIST);
        }
        self.hooks.register(&entry, HookKind::Kprobe)?;
        self.hooks.register(&ret, HookKind::Kretprobe)
    }

    /// The registry.
    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Attaches program `prog_fd` to tracepoint `name`: a link fd.
    pub fn attach_tracepoint(&mut self, prog_fd: Fd, name: &str) -> Result<Fd, Errno> {
        self.link(prog_fd, alloc::vec![name.to_string()], HookKind::Tracepoint)
    }

    /// Attaches program `prog_fd` to the entry (or, with `ret`, the return)
    /// of every symbol of `symbols`: one link fd.
    pub fn attach_kprobe(&mut self, prog_fd: Fd, symbols: &[&str], ret: bool) -> Result<Fd, Errno> {
        if symbols.is_empty() {
            return Err(Errno::EINVAL);
        }
        let names = symbols.iter().map(|s| kprobe_hook(s, ret)).collect();
        let kind = if ret { HookKind::Kretprobe } else { HookKind::Kprobe };
        self.link(prog_fd, names, kind)
    }

    /// Runs every program attached to hook `hook`, in attach order, on
    /// context `ctx` and this CPU; ENOENT for a hook not registered.
    pub fn run(&mut self, hook: &str, ctx: &mut [u8]) -> Result<Vec<RunResult>, Errno> {
        let links = self.hooks.links(hook).ok_or(Errno::ENOENT)?.to_vec();
        let mut results = Vec::with_capacity(links.len());
        for link in links {
            let Some(prog) = self.links.get(link as usize).and_then(|l| l.as_ref()).and_then(|l| l.prog) else {
                continue;
            };
            results.push(RunResult { prog, result: self.run_prog_id(prog, ctx) });
        }
        Ok(results)
    }

    /// Runs program `prog_fd` once on `ctx` (what PROG_TEST_RUN does): r0.
    pub fn run_program(&mut self, prog_fd: Fd, ctx: &mut [u8]) -> Result<Result<u64, Fault>, Errno> {
        let prog = self.prog_id(prog_fd)?;
        Ok(self.run_prog_id(prog, ctx))
    }

    fn run_prog_id(&mut self, id: u32, ctx: &mut [u8]) -> Result<u64, Fault> {
        let Some(prog) = self.progs.get(id as usize).and_then(Option::as_ref) else {
            return Err(Fault::Other { pc: 0, reason: format!("program {id} is gone") });
        };
        let table = crate::runtime::ProgramTable { progs: &self.progs, jits: &self.jits };
        let jit = table.jit(id);
        let mut env = Env::new(&self.os, &mut self.maps, ctx);
        // As in Linux, only BPF_PROG_TYPE_SYSCALL programs write their context.
        env.ctx_writable = prog.prog_type == prog_type::SYSCALL;
        env.budget = self.budget;
        env.progs = Some(&table);
        crate::runtime::engine::run(prog, jit, &mut env)
    }
}

/// The hook name of a kprobe (or, with `ret`, kretprobe) on `symbol`.
pub fn kprobe_hook(symbol: &str, ret: bool) -> String {
    if ret {
        format!("kretprobe/{symbol}")
    } else {
        format!("kprobe/{symbol}")
    }
}
