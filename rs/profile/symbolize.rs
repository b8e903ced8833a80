//! [`Symbolizer`]: stack frames → function, file and line.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use blazesym::symbolize::{self as bz, source};

use super::debuginfod::Debuginfod;
use super::elf::{self, ElfFacts};
use super::index::{self, BuildIdIndex};
use super::maps::Mappings;
use super::unwind::{StackUnwinder, UnwindStop};

mod raw;
use crate::{BuildId, Mapping, StackSample, UserFrame};

/// One function in a [`Location`]: the function itself, or one inlined into it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name; for addresses that did not resolve, a
    /// bracketed placeholder such as `[libc.so.6+0x2a1c9]` or `[unknown 0x7f12...]`.
    pub function: Arc<str>,
    /// Source file, when debug information covers the address.
    pub file: Option<Arc<str>>,
    /// Source line, when debug information covers the address.
    pub line: Option<u32>,
}

/// One symbolized stack address: where it is (module and address) and the
/// functions it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// A kernel address (module `[kernel]`).
    pub kernel: bool,
    /// The binary's path as the process saw it, `[kernel]`, a pseudo
    /// mapping such as `[vdso]`, or `None` when unknown.
    pub module: Option<Arc<str>>,
    /// The module's build id, for user frames that have one.
    pub build_id: Option<BuildId>,
    /// The address that was looked up: for user frames the offset in the
    /// module file, for kernel frames and unresolved raw addresses the
    /// virtual address. For callers (every frame but the innermost) this is
    /// the return address minus one, inside the call instruction.
    pub address: u64,
    /// The functions at this address, innermost first: functions inlined
    /// at the address come before the function that contains them. Never empty.
    pub frames: Vec<Frame>,
    /// At least the function name came from symbols (not a placeholder).
    pub symbolized: bool,
}

impl Location {
    /// The function that contains the address (the last, outermost frame).
    pub fn function(&self) -> &str {
        self.frames.last().map_or("", |f| &f.function)
    }

    fn unresolved(
        kernel: bool,
        module: Option<Arc<str>>,
        build_id: Option<BuildId>,
        address: u64,
        name: String,
    ) -> Location {
        Location {
            kernel,
            module,
            build_id,
            address,
            frames: vec![Frame { function: name.into(), file: None, line: None }],
            symbolized: false,
        }
    }
}

/// How to symbolize offsets of one build id, decided once.
struct Object {
    /// Display name for frames.
    module: Option<Arc<str>>,
    binary: Option<(PathBuf, ElfFacts)>,
    /// A separate debug file found by build id (debug directories, then debuginfod).
    debug: Option<PathBuf>,
}

/// Turns kernel addresses and user frames into [`Location`]s.
///
/// * Kernel addresses resolve through `/proc/kallsyms` (function names; run
///   as root, or names are missing).
/// * `(build id, file offset)` user frames resolve through the file the
///   [`BuildIdIndex`] knows for the build id ([`learn_process`](Self::learn_process)
///   feeds it), with DWARF file, line and inlined functions when the binary
///   has them. When it has none, a debug file named by build id
///   (`DIR/.build-id/ab/cdef....debug` in each [debug directory](Self::debug_dirs))
///   is used instead; the binary itself must still be known, as its program
///   headers turn file offsets into addresses. Works after the process exited.
///   When no debug directory has it, [debuginfod](Self::debuginfod) servers
///   (`DEBUGINFOD_URLS`) are asked.
/// * Raw-address user frames (frame-pointer samples, unwound stack copies)
///   resolve through the process' mappings: the stream's mapping records
///   ([`learn_mapping`](Self::learn_mapping)), or the live `/proc/PID/maps`.
///
/// Results are cached per (build id, offset) and per kernel address, so a
/// long profile symbolizes each distinct address once.
pub struct Symbolizer {
    blaze: bz::Symbolizer,
    index: BuildIdIndex,
    debug_dirs: Vec<PathBuf>,
    debuginfod: Option<Debuginfod>,
    kallsyms: PathBuf,
    objects: HashMap<BuildId, Arc<Object>>,
    kernel: HashMap<u64, Arc<Location>>,
    user: HashMap<(BuildId, u64), Arc<Location>>,
    /// Raw user addresses by pid, then address: the location, and the
    /// generation of the process' mappings it was resolved with (a newer
    /// one resolves again and replaces it, so a process keeps one entry per
    /// address).
    raw: HashMap<u32, HashMap<u64, (u64, Arc<Location>)>>,
    /// Processes' mappings (from `/proc` and from mapping records).
    maps: Mappings,
    /// Copied user stacks ([`Unwind::StackCopy`](crate::Unwind::StackCopy)).
    unwinder: StackUnwinder,
    /// One placeholder location per reason an unwinding stopped short.
    stops: HashMap<UnwindStop, Arc<Location>>,
    /// The system's library directories were indexed (once, at the first
    /// build id no process' mappings named).
    system_indexed: bool,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Symbolizer::new()
    }
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("index", &self.index)
            .field("debug_dirs", &self.debug_dirs)
            .field("debuginfod", &self.debuginfod)
            .finish()
    }
}

fn blaze_symbolizer(debug_dirs: &[PathBuf]) -> bz::Symbolizer {
    bz::Symbolizer::builder().set_debug_dirs(Some(debug_dirs)).build()
}

impl Symbolizer {
    /// A symbolizer with an empty index, debug directory `/usr/lib/debug`,
    /// the debuginfod servers in `DEBUGINFOD_URLS` (none when it is unset:
    /// no network) and `/proc/kallsyms`.
    pub fn new() -> Symbolizer {
        let debug_dirs = vec![PathBuf::from("/usr/lib/debug")];
        Symbolizer {
            blaze: blaze_symbolizer(&debug_dirs),
            index: BuildIdIndex::new(),
            debug_dirs,
            debuginfod: Debuginfod::from_env(),
            kallsyms: PathBuf::from("/proc/kallsyms"),
            objects: HashMap::new(),
            kernel: HashMap::new(),
            user: HashMap::new(),
            raw: HashMap::new(),
            stops: HashMap::new(),
            maps: Mappings::default(),
            system_indexed: false,
            unwinder: StackUnwinder::new(),
        }
    }

    /// Directories searched for `.build-id/xx/rest.debug` debug files
    /// (replaces the default `/usr/lib/debug`).
    pub fn debug_dirs(mut self, dirs: Vec<PathBuf>) -> Symbolizer {
        self.blaze = blaze_symbolizer(&dirs);
        self.debug_dirs = dirs;
        self.objects.clear();
        self.user.clear();
        self.raw.clear();
        self
    }

    /// Fetches debug files from these debuginfod servers (replaces the
    /// default, [`Debuginfod::from_env`]); `None` turns the network off.
    ///
    /// They are asked only for a binary that is known (its program headers
    /// are needed to place file offsets, so a debug file alone would not
    /// help), has no DWARF of its own, and whose debug file no debug
    /// directory holds: a download is slow and may be large, so it is kept
    /// for frames that cannot get file and line any other way.
    pub fn debuginfod(mut self, client: Option<Debuginfod>) -> Symbolizer {
        self.debuginfod = client;
        self.objects.clear();
        self.user.clear();
        self.raw.clear();
        self
    }

    /// Uses a copy of `/proc/kallsyms` (for example one saved on the profiled host).
    pub fn kallsyms(mut self, path: PathBuf) -> Symbolizer {
        self.kallsyms = path;
        self.kernel.clear();
        self
    }

    /// Uses an index that already knows files.
    pub fn with_index(mut self, index: BuildIdIndex) -> Symbolizer {
        self.index = index;
        self
    }

    /// The build id index (to [learn files](BuildIdIndex::learn_file)).
    pub fn index_mut(&mut self) -> &mut BuildIdIndex {
        &mut self.index
    }

    pub fn index(&self) -> &BuildIdIndex {
        &self.index
    }

    /// Indexes a running process' files ([`BuildIdIndex::learn_process`])
    /// and reads its mappings for unwinding copied stacks; call it when a
    /// process starts being profiled (and when it may have loaded more
    /// libraries), while it runs: its samples then symbolize after it exits.
    pub fn learn_process(&mut self, pid: u32) -> io::Result<usize> {
        let maps = index::read_maps(pid)?;
        let learned = self.index.learn_maps(pid, &maps);
        self.maps.learn(pid, maps); // raw addresses resolve after its exit
        Ok(learned)
    }

    /// Takes a [`Mapping`] record (an executable mmap, an exec, a fork or
    /// an exit): with them, the stacks of processes that exited before
    /// their samples were read still unwind and symbolize. Feed every mapping
    /// record of the stream, in order, before the samples that follow it
    /// ([`Unwind::StackCopy`](crate::Unwind::StackCopy) enables them).
    ///
    /// A process' exit record lets go of what is held for it two seconds
    /// later in the stream's time, as [`forget_process`](Self::forget_process)
    /// does: a long run's memory does not grow with the processes it saw.
    pub fn learn_mapping<B: AsRef<[u8]>>(&mut self, mapping: &Mapping<B>) {
        if let Some(entry) = self.maps.record(mapping) {
            if entry.is_file() {
                // While the process most likely still runs: its view of the file.
                self.index.learn_entries(mapping.pid, std::slice::from_ref(&entry));
            }
        }
        for pid in self.maps.expired(mapping.ts_ns) {
            self.forget_process(pid);
        }
    }

    /// Processes whose mappings are held (from `/proc` or records): each is
    /// dropped by [`forget_process`](Self::forget_process).
    pub fn processes_held(&self) -> usize {
        self.maps.len()
    }

    /// Drops what is cached about a process' raw addresses and mappings
    /// (its build-id frames stay cached). Mapping records do this two
    /// seconds after a process' exit; call it for processes known only
    /// from `/proc`, when their exit is seen otherwise.
    pub fn forget_process(&mut self, pid: u32) {
        self.maps.forget(pid);
        self.unwinder.forget(pid);
        self.raw.remove(&pid);
    }

    /// Symbolizes both stacks of a sample: kernel locations, then user
    /// locations, innermost first. Stack errors and lost data yield no
    /// locations here (see [`Profile`](super::Profile) for how they are counted).
    pub fn symbolize_sample<B: AsRef<[u8]>>(&mut self, sample: &StackSample<B>) -> Vec<Arc<Location>> {
        let mut out = Vec::with_capacity(sample.kernel_stack.len() + sample.user_stack.len());
        for (i, address) in sample.kernel_stack.iter().enumerate() {
            out.push(self.symbolize_kernel(address, i > 0));
        }
        for (i, address) in sample.user_stack.iter().enumerate() {
            out.push(self.symbolize_user(sample.pid, UserFrame::Address(address), i > 0));
        }
        if sample.user_ip != 0 {
            let regs = (sample.user_ip, sample.user_sp, sample.user_bp);
            out.extend(self.symbolize_stack_copy(sample.pid, regs, sample.user_stack_copy.as_ref()));
        }
        out
    }

    /// Symbolizes a kernel address; `return_address` for every frame but the
    /// innermost (looks up `address - 1`).
    pub fn symbolize_kernel(&mut self, address: u64, return_address: bool) -> Arc<Location> {
        let address = address.wrapping_sub(u64::from(return_address));
        if let Some(hit) = self.kernel.get(&address) {
            return hit.clone();
        }
        let src = bz::source::Source::Kernel(source::Kernel {
            kallsyms: blazesym::MaybeDefault::Some(self.kallsyms.clone()),
            vmlinux: blazesym::MaybeDefault::None,
            kaslr_offset: Some(0),
            debug_syms: false,
            ..Default::default()
        });
        let module: Arc<str> = "[kernel]".into();
        let result = self.blaze.symbolize_single(&src, bz::Input::AbsAddr(address)).ok();
        let location = match result.as_ref().and_then(|r| r.as_sym()) {
            // At the function's address: kallsyms names nothing finer, and
            // one location per function keeps a long profile's distinct
            // stacks bounded by the kernel's code paths, not its addresses.
            Some(sym) => to_location(sym, true, Some(module), None, sym.addr),
            None => Location::unresolved(true, Some(module), None, address, format!("[unknown {address:#x}]")),
        };
        let location = Arc::new(location);
        self.kernel.insert(address, location.clone());
        location
    }

    /// Symbolizes a user frame of process `pid` (the pid matters only for
    /// raw addresses); `return_address` for every frame but the innermost.
    pub fn symbolize_user(&mut self, pid: u32, frame: UserFrame, return_address: bool) -> Arc<Location> {
        let back = u64::from(return_address);
        match frame {
            UserFrame::FileOffset { build_id, file_offset } => {
                self.symbolize_file_offset(build_id, file_offset.wrapping_sub(back))
            }
            UserFrame::Address(ip) => self.symbolize_address(pid, ip.wrapping_sub(back)),
        }
    }

    /// Symbolizes an offset in the file with this build id.
    pub fn symbolize_file_offset(&mut self, build_id: BuildId, file_offset: u64) -> Arc<Location> {
        if let Some(hit) = self.user.get(&(build_id, file_offset)) {
            return hit.clone();
        }
        let object = self.object(build_id);
        let location = Arc::new(self.resolve_in_object(&object, build_id, file_offset));
        if object.binary.is_some() || object.debug.is_some() {
            self.user.insert((build_id, file_offset), location.clone());
        }
        location
    }

    fn resolve_in_object(&self, object: &Object, build_id: BuildId, file_offset: u64) -> Location {
        let module = object.module.clone();
        let found = |sym: &bz::Sym| to_location(sym, false, module.clone(), Some(build_id), file_offset);
        let unnamed = |module: &Option<Arc<str>>| {
            let name = match module {
                Some(m) => format!("{}+{file_offset:#x}", base_name(m)),
                None => format!("[build-id {}+{file_offset:#x}]", &build_id.to_string()[..16]),
            };
            Location::unresolved(false, module.clone(), Some(build_id), file_offset, name)
        };
        // A PLT stub has no symbol of its own: the nearest one before it
        // (often _init) would be wrong.
        if object.binary.as_ref().is_some_and(|(_, f)| f.in_plt(file_offset)) {
            return unnamed(&module);
        }
        let binary_has_dwarf = object.binary.as_ref().is_some_and(|(_, f)| f.has_debug_info);
        if !binary_has_dwarf {
            // The debug file has the binary's virtual addresses, but not its
            // file layout (its PT_LOAD offsets are not the binary's): convert
            // with the binary's segments.
            if let (Some(debug), Some((_, facts))) = (&object.debug, &object.binary) {
                if let Some(vaddr) = facts.file_offset_to_vaddr(file_offset) {
                    let src = bz::source::Source::Elf(source::Elf::new(debug));
                    if let Ok(bz::Symbolized::Sym(sym)) =
                        self.blaze.symbolize_single(&src, bz::Input::VirtOffset(vaddr))
                    {
                        return found(&sym);
                    }
                }
            }
        }
        if let Some((binary, _)) = &object.binary {
            let src = bz::source::Source::Elf(source::Elf::new(binary));
            if let Ok(bz::Symbolized::Sym(sym)) = self.blaze.symbolize_single(&src, bz::Input::FileOffset(file_offset))
            {
                return found(&sym);
            }
        }
        unnamed(&module)
    }

    /// The resolution plan for a build id; redone when the index learned the
    /// binary since.
    fn object(&mut self, build_id: BuildId) -> Arc<Object> {
        if let Some(known) = self.objects.get(&build_id) {
            if known.binary.is_some() || self.index.path(&build_id).is_none() {
                return known.clone();
            }
        }
        if self.index.path(&build_id).is_none() && !self.system_indexed {
            // A library of a process gone before its mappings were read:
            // most are the system's own.
            self.system_indexed = true;
            index_system_libraries(&mut self.index);
        }
        let facts_of = |path: &Path| File::open(path).ok().and_then(|f| elf::read(&f));
        let binary = self.index.path(&build_id).and_then(|p| Some((p.to_path_buf(), facts_of(p)?)));
        let mut debug =
            debug_file_candidates(&self.debug_dirs, &build_id).into_iter().find(|p| elf::has_build_id(p, &build_id));
        if debug.is_none() && binary.as_ref().is_some_and(|(_, f)| !f.has_debug_info) {
            debug = self.debuginfod.as_mut().and_then(|d| d.fetch(&build_id).ok());
        }
        let module = self.index.original_path(&build_id).map(|p| Arc::from(p.to_string_lossy().as_ref()));
        let object = Arc::new(Object { module, binary, debug });
        self.objects.insert(build_id, object.clone());
        object
    }
}

/// Where the system keeps its shared libraries (Debian's multiarch
/// directories first).
const SYSTEM_LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// Indexes the shared libraries (`*.so*`) directly in the system's library
/// directories by build id.
fn index_system_libraries(index: &mut BuildIdIndex) {
    for dir in SYSTEM_LIBRARY_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().contains(".so") && entry.file_type().is_ok_and(|t| !t.is_dir()) {
                index.learn_file(&entry.path());
            }
        }
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `DIR/.build-id/ab/cdef....debug` for each debug dir. The kernel pads
/// build ids to 20 bytes, so shorter ids (16 or 8 bytes) are tried too
/// when the padding is zero.
fn debug_file_candidates(dirs: &[PathBuf], build_id: &BuildId) -> Vec<PathBuf> {
    let bytes = build_id.as_bytes();
    let mut lengths = vec![20];
    for len in [16, 8] {
        if bytes[len..].iter().all(|&b| b == 0) {
            lengths.push(len);
        }
    }
    let mut out = Vec::new();
    for dir in dirs {
        for &len in &lengths {
            let mut hex = String::with_capacity(2 * len);
            for b in &bytes[..len] {
                let _ = write!(hex, "{b:02x}");
            }
            out.push(dir.join(".build-id").join(&hex[..2]).join(format!("{}.debug", &hex[2..])));
        }
    }
    out
}

fn frame(name: &str, code: Option<&bz::CodeInfo>) -> Frame {
    let file = code.map(|c| Arc::from(c.to_path().to_string_lossy().as_ref()));
    Frame { function: name.into(), file, line: code.and_then(|c| c.line) }
}

fn to_location(
    sym: &bz::Sym,
    kernel: bool,
    module: Option<Arc<str>>,
    build_id: Option<BuildId>,
    address: u64,
) -> Location {
    // blazesym lists inlined functions outermost first, each with its own
    // source location; the containing function's location is the call site.
    let mut frames: Vec<Frame> = sym.inlined.iter().rev().map(|f| frame(&f.name, f.code_info.as_ref())).collect();
    frames.push(frame(&sym.name, sym.code_info.as_deref()));
    Location { kernel, module, build_id, address, frames, symbolized: true }
}
