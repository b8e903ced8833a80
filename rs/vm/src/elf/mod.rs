//! The loader: objects as `clang -O2 -g -target bpf` and libbpf write them.
//!
//! [`Object::parse`] reads an ELF object into maps and programs, in safe
//! code and without I/O:
//! - **Programs** are the functions of executable sections other than
//!   `.text`; the section name (`SEC("...")`) gives the program type
//!   ([`prog_type_of`]). Several programs may share a section.
//! - **Maps** are the BTF-defined maps of `.maps` (decoded from `.BTF`, see
//!   [`btf`]), in the order of the `.maps` DATASEC, then one single-entry
//!   array per global data section (`.rodata*`, `.data*`, `.bss*`, in
//!   section order) holding the section's contents (`.bss` zeroed) as
//!   libbpf's internal maps do. Such a map is named after its section
//!   (`.rodata`, `.data.counters`...): libbpf prefixes the object's name,
//!   which a runtime without object names has no use for. `.rodata*` maps
//!   are read-only for programs.
//! - **Relocations** ([`reloc`]) leave each program self-contained: an
//!   `ld_imm64` of a map becomes `BPF_PSEUDO_MAP_FD` with `imm` = the map's
//!   index in [`Object::maps`], one of a global variable
//!   `BPF_PSEUDO_MAP_VALUE` with the map's index and the offset in the next
//!   instruction's `imm`. BPF-to-BPF calls and `bpf_loop` callbacks
//!   (`BPF_PSEUDO_FUNC`) get their subprograms appended, as libbpf does, and
//!   pc-relative offsets. Loading swaps the indexes for the ids (or file
//!   descriptors) the maps got ([`ObjProgram::insns_with_maps`]).
//!
//! Three ways to load a parsed object:
//! - [`Loaded::new`] (or [`Loaded::with_programs`] for some of its
//!   programs): its own [`crate::map::MapTable`], programs found and run by
//!   name in the interpreter or the JIT; what `vm_run` and the tests use.
//! - [`Object::load_into`] a [`crate::runtime::Runtime`]: maps and
//!   programs as fds, programs attached to hooks by section name, as a
//!   libbpf-style loader does over `bpf(2)`.
//! - By hand, for another `bpf(2)` (a kernel's): [`Object::maps`] to
//!   create, [`ObjProgram::insns_with_maps`] with their fds, and
//!   [`Object::btf`] with [`ObjProgram::func_info`] for the kernel's
//!   verifier (the differential tests do this).
//!
//! What the runtime cannot run is refused with a [`LoadError`] naming the
//! section and the instruction: CO-RE relocations (unless the caller asks
//! for them to be taken as local, [`ParseOptions::core_as_local`]), kfunc
//! calls and extern symbols, relocation types other than the two clang
//! emits for code, and legacy `maps` sections. Map types the runtime lacks
//! are refused when the maps are created ([`Object::create_maps`]), so a
//! parse still reports what is wrong with the programs.

pub mod btf;
pub mod btf_ext;
pub mod file;
mod load;
pub use load::entries;
mod loaded;
mod runtime_load;
pub use loaded::{Engine, Loaded, RunError};
pub use runtime_load::{AttachPoint, ObjectFds};
pub mod reloc;

use crate::consts::{map_flags, map_type, prog_type};
use crate::map::MapDef;
use crate::program::Insn;
use crate::retcode::{Errno, LoadError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use btf::Btf;
use btf_ext::CoreRelo;
use file::{ElfFile, SHF_EXECINSTR, SHT_NOBITS, SHT_PROGBITS};

/// A map of an object: BTF-defined, or the internal map of a data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjMap {
    /// The variable's name, or the data section's name.
    pub name: String,
    /// What to create.
    pub def: MapDef,
    /// The initial value of a data section's map (its one entry).
    pub init: Option<Vec<u8>>,
    /// Read-only for programs (`.rodata*`): freeze it after filling it.
    pub readonly: bool,
}

/// A program of an object, relocated and self-contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjProgram {
    /// The function's name.
    pub name: String,
    /// The section's name (`SEC("...")`).
    pub section: String,
    /// `enum bpf_prog_type`, from the section name.
    pub prog_type: u32,
    /// The instructions, subprograms appended; map references carry map
    /// indexes of [`Object::maps`] (see the module docs).
    pub insns: Vec<Insn>,
    /// CO-RE relocations taken as local (instruction index in `insns`);
    /// empty unless [`ParseOptions::core_as_local`].
    pub core: Vec<(usize, CoreRelo)>,
    /// BTF function info, (instruction index, BTF FUNC id), one per
    /// function the program holds; empty when the object has none (a
    /// kernel wants it with [`Object::btf`] for `bpf_loop` callbacks).
    pub func_info: Vec<(u32, u32)>,
}

/// A parsed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The maps, in the order relocations index them.
    pub maps: Vec<ObjMap>,
    /// The programs, in section and then function order.
    pub programs: Vec<ObjProgram>,
    /// The `license` section's string (empty if none).
    pub license: String,
    /// The `.BTF` section with its DATASECs fixed up, for a kernel.
    pub btf: Option<Vec<u8>>,
}

/// How lenient [`Object::parse_with`] is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Apply CO-RE relocations as if the running kernel's types were the
    /// object's own (the instructions keep the offsets clang computed).
    /// Right only when the memory programs read really has those layouts,
    /// as in tests against fake kernel structures.
    pub core_as_local: bool,
}

/// The program type a section name (`SEC("...")`) stands for, as libbpf
/// reads it; `None` for names the runtime does not know.
pub fn prog_type_of(section: &str) -> Option<u32> {
    const TABLE: &[(&str, u32)] = &[
        ("socket", prog_type::SOCKET_FILTER),
        ("kprobe/", prog_type::KPROBE),
        ("kretprobe/", prog_type::KPROBE),
        ("uprobe", prog_type::KPROBE),
        ("uretprobe", prog_type::KPROBE),
        ("ksyscall/", prog_type::KPROBE),
        ("kretsyscall/", prog_type::KPROBE),
        ("usdt", prog_type::KPROBE),
        ("tracepoint/", prog_type::TRACEPOINT),
        ("tp/", prog_type::TRACEPOINT),
        ("raw_tracepoint/", prog_type::RAW_TRACEPOINT),
        ("raw_tp/", prog_type::RAW_TRACEPOINT),
        ("tp_btf/", prog_type::TRACING),
        ("fentry/", prog_type::TRACING),
        ("fexit/", prog_type::TRACING),
        ("fmod_ret/", prog_type::TRACING),
        ("iter/", prog_type::TRACING),
        ("syscall", prog_type::SYSCALL),
        ("perf_event", PERF_EVENT),
        ("cgroup/sock", CGROUP_SOCK),
        ("cgroup/sock_create", CGROUP_SOCK),
        ("cgroup/sock_release", CGROUP_SOCK),
        ("cgroup/post_bind4", CGROUP_SOCK),
        ("cgroup/post_bind6", CGROUP_SOCK),
    ];
    let exact = |p: &str| !p.ends_with('/') && section == p;
    let prefixed = |p: &str| section.starts_with(p) && (p.ends_with('/') || section[p.len()..].starts_with('/'));
    TABLE.iter().find(|(p, _)| exact(p) || prefixed(p)).map(|&(_, t)| t)
}

/// BPF_PROG_TYPE_PERF_EVENT.
pub const PERF_EVENT: u32 = 7;
/// BPF_PROG_TYPE_CGROUP_SOCK.
pub const CGROUP_SOCK: u32 = 9;

/// Whether section `name` is global data libbpf makes an internal map of.
fn is_data_section(name: &str) -> bool {
    ["rodata", "data", "bss"].iter().any(|k| {
        let rest = name.strip_prefix('.').and_then(|n| n.strip_prefix(k));
        matches!(rest, Some(r) if r.is_empty() || r.starts_with('.'))
    })
}

impl Object {
    /// Parses an object, refusing CO-RE relocations.
    pub fn parse(bytes: &[u8]) -> Result<Object, LoadError> {
        Object::parse_with(bytes, ParseOptions::default())
    }

    /// Parses an object.
    pub fn parse_with(bytes: &[u8], options: ParseOptions) -> Result<Object, LoadError> {
        let elf = ElfFile::parse(bytes)?;
        let btf_data = elf.find(".BTF").map(|i| elf.data(i));
        let btf = btf_data.map(Btf::parse).transpose()?;
        if elf.find("maps").is_some() {
            let why = "legacy `struct bpf_map_def` maps are not supported: declare maps in SEC(\".maps\") with BTF";
            return Err(LoadError::new(Errno::EINVAL, why).in_section("maps"));
        }
        let mut maps = Vec::new();
        let map_offsets = btf_maps(&elf, btf.as_ref(), &mut maps)?;
        let data_maps = data_maps(&elf, &mut maps)?;
        let (core, funcs) = match (elf.find(".BTF.ext"), btf_data) {
            (Some(i), Some(b)) => {
                (btf_ext::core_relos(elf.data(i), Btf::strings(b))?, btf_ext::func_infos(elf.data(i), Btf::strings(b))?)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let linker = reloc::Linker::new(&elf, &map_offsets, &data_maps, (core, funcs), btf.as_ref())?;
        let programs = programs(&elf, &linker, options)?;
        let license = elf.find("license").and_then(|i| file::c_str(elf.data(i), 0)).unwrap_or_default();
        let btf = match (btf, btf_data) {
            (Some(b), Some(data)) => Some(fix_datasecs(&elf, &b, data)),
            _ => None,
        };
        Ok(Object { maps, programs, license, btf })
    }

    /// The program whose function is `name`.
    pub fn program(&self, name: &str) -> Option<&ObjProgram> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The index of the map named `name`.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }
}

/// Every function of every program section, linked.
fn programs(
    elf: &ElfFile<'_>,
    linker: &reloc::Linker<'_>,
    options: ParseOptions,
) -> Result<Vec<ObjProgram>, LoadError> {
    let mut programs = Vec::new();
    for (sec, s) in elf.sections.iter().enumerate() {
        if s.flags & SHF_EXECINSTR == 0 || s.name == ".text" || s.size == 0 {
            continue;
        }
        let ty = prog_type_of(&s.name).ok_or_else(|| {
            LoadError::new(Errno::EINVAL, "a section name no program type is known for").in_section(&s.name)
        })?;
        for (name, start, len) in linker.functions(sec) {
            let l = linker.link(sec, start, len, options).map_err(|mut e| {
                e.reason = format!("program {name}: {}", e.reason);
                e
            })?;
            let section = s.name.clone();
            let (insns, core, func_info) = (l.insns, l.core, l.func_info);
            programs.push(ObjProgram { name, section, prog_type: ty, insns, core, func_info });
        }
    }
    Ok(programs)
}

/// The BTF with its DATASECs' sizes and offsets from the ELF file.
fn fix_datasecs(elf: &ElfFile<'_>, btf: &Btf, data: &[u8]) -> Vec<u8> {
    let size = |name: &str| elf.find(name).map(|i| elf.sections[i].size);
    let offset = |sec: &str, var: &str| {
        let i = elf.find(sec)?;
        elf.symbols.iter().find(|s| usize::from(s.section) == i && s.name == var).map(|s| s.value)
    };
    btf.fixed_up(data, size, offset)
}

/// Decodes the maps of `.maps`; the (offset in `.maps`, map index) pairs.
fn btf_maps(elf: &ElfFile<'_>, btf: Option<&Btf>, maps: &mut Vec<ObjMap>) -> Result<Vec<(u64, usize)>, LoadError> {
    let Some(sec) = elf.find(".maps") else {
        return Ok(Vec::new());
    };
    let err = |why: &str| LoadError::new(Errno::EINVAL, why).in_section(".maps");
    let btf = btf.ok_or_else(|| err("BTF-defined maps need a .BTF section (compile with -g)"))?;
    let vars = btf.datasec(".maps").ok_or_else(|| err("no .maps DATASEC in .BTF"))?;
    let mut offsets = Vec::new();
    // clang leaves the DATASEC's offsets to the loader: the symbols have them.
    for (var, _, _) in vars {
        let name: String = btf.name_of(var).into();
        let def = btf.map_def(var, &name)?;
        let sym = elf.symbols.iter().find(|s| usize::from(s.section) == sec && s.name == name);
        let offset = sym.ok_or_else(|| err(&format!("map {name} has no symbol in .maps")))?.value;
        offsets.push((offset, maps.len()));
        maps.push(ObjMap { name, def, init: None, readonly: false });
    }
    Ok(offsets)
}

/// The largest global data section the loader makes a map of (64 MiB):
/// a hostile object's `.bss` size must not become a host allocation.
pub const MAX_DATA_SECTION: u64 = 64 << 20;

/// Adds one internal map per data section; the (section index, map index) pairs.
fn data_maps(elf: &ElfFile<'_>, maps: &mut Vec<ObjMap>) -> Result<Vec<(usize, usize)>, LoadError> {
    let mut out = Vec::new();
    for (i, s) in elf.sections.iter().enumerate() {
        let data_kind = s.kind == SHT_PROGBITS || s.kind == SHT_NOBITS;
        if !data_kind || s.flags & SHF_EXECINSTR != 0 || !is_data_section(&s.name) || s.size == 0 {
            continue;
        }
        if s.size > MAX_DATA_SECTION {
            let why = format!("{} bytes of global data, over the {MAX_DATA_SECTION} a map may hold here", s.size);
            return Err(LoadError::new(Errno::E2BIG, why).in_section(&s.name));
        }
        let readonly = s.name.starts_with(".rodata");
        let init = if s.kind == SHT_NOBITS { alloc::vec![0; s.size as usize] } else { elf.data(i).to_vec() };
        let flags = map_flags::MMAPABLE | if readonly { map_flags::RDONLY_PROG } else { 0 };
        let def = MapDef {
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: s.size as u32,
            max_entries: 1,
            flags,
            name: s.name.clone(),
        };
        out.push((i, maps.len()));
        maps.push(ObjMap { name: s.name.clone(), def, init: Some(init), readonly });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_names_give_program_types() {
        assert_eq!(prog_type_of("syscall"), Some(prog_type::SYSCALL));
        assert_eq!(prog_type_of("tracepoint/sched/sched_switch"), Some(prog_type::TRACEPOINT));
        assert_eq!(prog_type_of("tp/syscalls/sys_enter_write"), Some(prog_type::TRACEPOINT));
        assert_eq!(prog_type_of("kprobe/do_exit"), Some(prog_type::KPROBE));
        assert_eq!(prog_type_of("raw_tp/sys_enter"), Some(prog_type::RAW_TRACEPOINT));
        assert_eq!(prog_type_of("tp_btf/sched_switch"), Some(prog_type::TRACING));
        assert_eq!(prog_type_of("socket"), Some(prog_type::SOCKET_FILTER));
        assert_eq!(prog_type_of("socket/x"), Some(prog_type::SOCKET_FILTER));
        assert_eq!(prog_type_of("cgroup/sock_release"), Some(CGROUP_SOCK));
        assert_eq!(prog_type_of("perf_event"), Some(PERF_EVENT));
        assert_eq!(prog_type_of("syscalls"), None);
        assert_eq!(prog_type_of("xdp"), None);
    }

    #[test]
    fn data_sections_are_recognized_by_name() {
        for yes in [".data", ".rodata", ".bss", ".rodata.str1.1", ".data.counters", ".bss.x"] {
            assert!(is_data_section(yes), "{yes}");
        }
        for no in [".datax", "data", ".rodatax", ".maps", ".text", ".BTF"] {
            assert!(!is_data_section(no), "{no}");
        }
    }
}
