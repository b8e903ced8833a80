//! Unit tests: real binaries compiled with `cc`, no kernel programs needed.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::{BuildId, Comm, KernelStack, Mapping, MappingChange, StackSample, UserFrame, UserStack, WallTime};

const PROGRAM: &str = r#"#include <stdio.h>
static inline __attribute__((always_inline)) unsigned mix(unsigned x) {
    return (x * 2654435761u) ^ (x >> 7);
}
__attribute__((noinline)) unsigned proctap_hot_loop(unsigned n) {
    unsigned acc = 0;
    for (unsigned i = 0; i < n; i++)
        acc += mix(i + acc);
    return acc;
}
int main(int argc, char **argv) {
    (void)argv;
    printf("%u\n", proctap_hot_loop((unsigned)argc * 1000));
    return 0;
}
"#;
/// Lines of `proctap_hot_loop` and `mix` in PROGRAM.
pub(super) const HOT_LINES: std::ops::RangeInclusive<u32> = 2..=10;

/// A fresh directory under the system temp dir.
pub(super) fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("proctap-profile-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(super) fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Compiles PROGRAM with DWARF and a build id: `DIR/prog`.
pub(super) fn compile(dir: &Path) -> PathBuf {
    let source = dir.join("prog.c");
    std::fs::write(&source, PROGRAM).unwrap();
    let binary = dir.join("prog");
    run(
        "cc",
        &[
            "-g",
            "-O1",
            "-fno-omit-frame-pointer",
            "-Wl,--build-id=sha1",
            "-o",
            binary.to_str().unwrap(),
            source.to_str().unwrap(),
        ],
    );
    binary
}

/// `readelf -n`'s build id of a file.
pub(super) fn readelf_build_id(path: &Path) -> BuildId {
    let notes = run("readelf", &["-n", path.to_str().unwrap()]);
    let hex = notes.lines().find_map(|l| l.trim().strip_prefix("Build ID: ")).expect("readelf shows no build id");
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    BuildId::from_note(&bytes)
}

/// The file offset and size of a function, from `nm -S` and `readelf -lW` (PT_LOAD).
pub(super) fn function_file_offset(path: &Path, function: &str) -> (u64, u64) {
    let p = path.to_str().unwrap();
    let symbols = run("nm", &["-S", p]);
    let (addr, size) = symbols
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[3] == function)
                .then(|| (u64::from_str_radix(f[0], 16).unwrap(), u64::from_str_radix(f[1], 16).unwrap()))
        })
        .unwrap_or_else(|| panic!("nm does not list {function}"));
    let headers = run("readelf", &["-lW", p]);
    for line in headers.lines().map(str::trim).filter(|l| l.starts_with("LOAD")) {
        let f: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(5)
            .map(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).unwrap())
            .collect();
        let (offset, vaddr, file_size) = (f[0], f[1], f[3]);
        if addr >= vaddr && addr < vaddr + file_size {
            return (addr - vaddr + offset, size);
        }
    }
    panic!("no PT_LOAD holds {function} at {addr:#x}");
}

/// Where the fixtures' samples (pid PID) have their binary mapped.
pub(super) const BASE: u64 = 0x5555_0000_0000;
pub(super) const PID: u32 = 4242;

/// Tells the symbolizer, as mapping records do, that PID maps the fixture's
/// binary at BASE from its start.
pub(super) fn map_binary(fx: &mut Fixture) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&fx.binary).unwrap();
    let mut record = Mapping {
        ts_ns: 0,
        time: WallTime::default(),
        pid: PID,
        tid: PID,
        change: MappingChange::Exec,
        parent_pid: 0,
        start: 0,
        len: 0,
        file_offset: 0,
        dev: 0,
        inode: 0,
        path: Vec::new(),
        data_lost: false,
    };
    fx.symbolizer.learn_mapping(&record);
    record.change = MappingChange::Mmap;
    (record.start, record.len, record.dev, record.inode) = (BASE, meta.len(), meta.dev(), meta.ino());
    record.path = fx.binary.as_os_str().as_bytes().to_vec();
    fx.symbolizer.learn_mapping(&record);
}

/// A frame-pointer sample of PID; `user` holds raw addresses.
pub(super) fn sample(comm: &str, kernel: &[u64], user: &[u64]) -> StackSample {
    StackSample {
        ts_ns: 1_000,
        time: WallTime { unix_ns: 1_700_000_000_000_000_000 },
        pid: PID,
        tid: PID,
        proc_start_ns: 0,
        cpu: 0,
        comm: Comm::new(comm.as_bytes()),
        cgroup_id: 0,
        kernel_mode: !kernel.is_empty(),
        kernel_stack: KernelStack(kernel.iter().flat_map(|a| a.to_ne_bytes()).collect()),
        user_stack: UserStack(user.iter().flat_map(|a| a.to_ne_bytes()).collect()),
        kernel_stack_error: None,
        user_stack_error: None,
        user_ip: 0,
        user_sp: 0,
        user_bp: 0,
        user_stack_copy: Vec::new(),
        data_lost: false,
    }
}

/// A binary, its build id and a symbolizer that knows it, with a fake
/// kallsyms (two functions) so kernel frames are deterministic.
pub(super) struct Fixture {
    pub(super) dir: PathBuf,
    pub(super) binary: PathBuf,
    pub(super) build_id: BuildId,
    pub(super) symbolizer: Symbolizer,
}

pub(super) const KERNEL_A: u64 = 0xffff_ffff_8100_0000;
pub(super) const KERNEL_B: u64 = 0xffff_ffff_8100_1000;

pub(super) fn fixture(name: &str) -> Fixture {
    let dir = temp_dir(name);
    let binary = compile(&dir);
    let kallsyms = dir.join("kallsyms");
    std::fs::write(
        &kallsyms,
        format!("{KERNEL_A:x} T fake_kernel_entry\n{KERNEL_B:x} T fake_kernel_work\nffffffff81002000 T fake_end\n"),
    )
    .unwrap();
    let mut symbolizer = Symbolizer::new().debug_dirs(vec![dir.join("no-debug")]).kallsyms(kallsyms);
    let build_id = symbolizer.index_mut().learn_file(&binary).expect("no build id read");
    Fixture { dir, binary, build_id, symbolizer }
}

/// (file offset, size) of a section, from `readelf -SW`.
fn section(path: &Path, name: &str) -> Option<(u64, u64)> {
    let table = run("readelf", &["-SW", path.to_str().unwrap()]);
    table.lines().find_map(|l| {
        let tokens: Vec<&str> = l.split_whitespace().collect();
        let at = tokens.iter().position(|t| *t == name)?;
        let hex = |i: usize| u64::from_str_radix(tokens.get(at + i)?, 16).ok();
        Some((hex(3)?, hex(4)?))
    })
}

/// A PLT stub (main calls printf through one) has no symbol: it is named
/// by its module and offset, never after the symbol before it (_init).
#[test]
fn plt_stubs_are_not_named_after_the_symbol_before_them() {
    let mut fx = fixture("plt");
    let (offset, size) = [".plt.sec", ".plt"]
        .iter()
        .find_map(|name| section(&fx.binary, name))
        .expect("the fixture calls printf through a PLT");
    for at in [offset, offset + size / 2] {
        let location = fx.symbolizer.symbolize_file_offset(fx.build_id, at);
        assert!(!location.symbolized, "{location:?}");
        assert_eq!(location.function(), format!("prog+{at:#x}"));
    }
    let _ = std::fs::remove_dir_all(&fx.dir);
}

/// A library of a process already gone (no mappings to learn it from) is
/// found among the system's libraries by its build id, and named by its
/// file, not by the id.
#[test]
fn a_system_library_is_found_by_its_build_id_alone() {
    let libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("a libc.so.6 in the system's library directories");
    let id = BuildIdIndex::new().learn_file(libc).expect("libc has a build id");
    let mut symbolizer = Symbolizer::new();
    let location = symbolizer.symbolize_file_offset(id, 0x30000);
    assert_eq!(location.module.as_deref().map(|m| m.rsplit('/').next().unwrap()), Some("libc.so.6"), "{location:?}");
    assert!(!location.function().contains("build-id"), "{location:?}");
}

#[test]
fn build_ids_print_without_the_kernels_padding() {
    for len in [8, 16, 20] {
        let id = BuildId::from_note(&vec![0x5a; len]);
        assert_eq!(id.to_string(), "5a".repeat(len));
    }
}

#[test]
fn build_id_note_matches_readelf() {
    let dir = temp_dir("note");
    let binary = compile(&dir);
    let mut index = BuildIdIndex::new();
    let id = index.learn_file(&binary).expect("learn_file found no build id");
    assert_eq!(id, readelf_build_id(&binary));
    assert_eq!(index.path(&id), Some(binary.as_path()));
    // Known files are not read again; non-ELF files have none.
    assert_eq!(index.learn_file(&binary), Some(id));
    assert_eq!(index.learn_file(&dir.join("prog.c")), None);
    assert_eq!(index.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn learns_own_process_and_symbolizes_raw_addresses() {
    let mut symbolizer = Symbolizer::new();
    assert!(symbolizer.learn_process(std::process::id()).expect("own maps readable") > 0);
    let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
    let exe_id = symbolizer.index_mut().learn_file(&exe);
    if let Some(id) = exe_id {
        assert!(symbolizer.index().path(&id).is_some());
    }
    // Learning again reads nothing new.
    assert_eq!(symbolizer.learn_process(std::process::id()).unwrap(), 0);

    #[inline(never)]
    fn proctap_marker_function() -> u64 {
        std::hint::black_box(7)
    }
    let address = proctap_marker_function as *const () as usize as u64;
    let location = symbolizer.symbolize_user(std::process::id(), UserFrame::Address(address + 1), false);
    assert!(location.function().contains("proctap_marker_function"), "{location:?}");
    assert!(location.symbolized);
    // An address nobody maps is one "[unknown]" location whatever the
    // address (they differ per process: a long run keeps one).
    let unknown = symbolizer.symbolize_user(std::process::id(), UserFrame::Address(0x10), false);
    assert_eq!((unknown.function(), unknown.address), ("[unknown]", 0));
    // A process that does not exist: unknown, not a panic.
    let gone = symbolizer.symbolize_user(u32::MAX - 1, UserFrame::Address(0x1234), true);
    assert_eq!(gone, unknown);
}

#[test]
fn file_offset_resolves_to_function_file_line_and_inlined_frames() {
    let mut fx = fixture("dwarf");
    let (offset, size) = function_file_offset(&fx.binary, "proctap_hot_loop");
    let location =
        fx.symbolizer.symbolize_user(1, UserFrame::FileOffset { build_id: fx.build_id, file_offset: offset }, false);
    assert!(location.symbolized);
    assert_eq!(location.function(), "proctap_hot_loop");
    assert_eq!(location.module.as_deref(), Some(fx.binary.to_str().unwrap()));
    assert_eq!(location.build_id, Some(fx.build_id));
    let frame = location.frames.last().unwrap();
    assert!(frame.file.as_deref().unwrap().ends_with("prog.c"), "{frame:?}");
    assert!(HOT_LINES.contains(&frame.line.unwrap()), "{frame:?}");

    // Somewhere in the function, `mix` is inlined: innermost frame first.
    let inlined = (offset..offset + size)
        .map(|o| fx.symbolizer.symbolize_file_offset(fx.build_id, o))
        .find(|l| l.frames.len() > 1)
        .expect("no inlined frame found in proctap_hot_loop");
    assert_eq!(&*inlined.frames[0].function, "mix");
    assert_eq!(inlined.function(), "proctap_hot_loop");
    assert!(HOT_LINES.contains(&inlined.frames[0].line.unwrap()));

    // Unknown build id: a placeholder that names it.
    let other = BuildId([0xab; 20]);
    let unknown = fx.symbolizer.symbolize_file_offset(other, 0x10);
    assert!(!unknown.symbolized);
    assert_eq!(unknown.function(), "[build-id abababababababab+0x10]");
    let _ = std::fs::remove_dir_all(&fx.dir);
}

#[test]
fn stripped_binary_resolves_through_build_id_debug_file() {
    let dir = temp_dir("stripped");
    let binary = compile(&dir);
    let (offset, _) = function_file_offset(&binary, "proctap_hot_loop");
    let stripped = dir.join("prog.stripped");
    run("strip", &["--strip-all", "-o", stripped.to_str().unwrap(), binary.to_str().unwrap()]);
    let id = readelf_build_id(&stripped);
    let hex = id.to_string();
    let debug_dir = dir.join("debug");
    let debug_file = debug_dir.join(".build-id").join(&hex[..2]).join(format!("{}.debug", &hex[2..]));
    std::fs::create_dir_all(debug_file.parent().unwrap()).unwrap();
    run("objcopy", &["--only-keep-debug", binary.to_str().unwrap(), debug_file.to_str().unwrap()]);
    std::fs::remove_file(&binary).unwrap();

    let frame = UserFrame::FileOffset { build_id: id, file_offset: offset + 1 };
    // Without the debug file the stripped binary has no name for it.
    let mut plain = Symbolizer::new().debug_dirs(vec![dir.join("none")]).debuginfod(None);
    assert_eq!(plain.index_mut().learn_file(&stripped), Some(id));
    let placeholder = plain.symbolize_user(1, frame, false);
    assert!(!placeholder.symbolized, "{placeholder:?}");
    assert_eq!(placeholder.function(), format!("prog.stripped+{:#x}", offset + 1));

    let mut symbolizer = Symbolizer::new().debug_dirs(vec![debug_dir.clone()]);
    assert_eq!(symbolizer.index_mut().learn_file(&stripped), Some(id));
    let location = symbolizer.symbolize_user(1, frame, false);
    assert_eq!(location.function(), "proctap_hot_loop", "{location:?}");
    assert_eq!(location.module.as_deref(), Some(stripped.to_str().unwrap()));
    let f = location.frames.last().unwrap();
    assert!(f.file.as_deref().unwrap().ends_with("prog.c") && HOT_LINES.contains(&f.line.unwrap()), "{f:?}");

    // The debug file alone cannot place a file offset (its PT_LOAD offsets
    // are not the binary's): a placeholder naming the build id.
    let mut debug_only = Symbolizer::new().debug_dirs(vec![debug_dir]);
    assert_eq!(
        debug_only.symbolize_user(1, frame, false).function(),
        format!("[build-id {}+{:#x}]", &hex[..16], offset + 1)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn kernel_addresses_resolve_through_kallsyms() {
    let mut fx = fixture("kernel");
    let entry = fx.symbolizer.symbolize_kernel(KERNEL_A + 0x21, false);
    assert!(entry.kernel && entry.symbolized);
    assert_eq!(entry.function(), "fake_kernel_entry");
    assert_eq!(entry.module.as_deref(), Some("[kernel]"));
    // A return address at the start of the next function belongs to the caller.
    assert_eq!(fx.symbolizer.symbolize_kernel(KERNEL_B, true).function(), "fake_kernel_entry");
    assert_eq!(fx.symbolizer.symbolize_kernel(KERNEL_B, false).function(), "fake_kernel_work");

    // The live kernel, when /proc/kallsyms shows addresses (root).
    let live = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let known = live.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[1] == "T" && f[2] == "schedule").then(|| u64::from_str_radix(f[0], 16).unwrap())
    });
    match known {
        Some(address) if address != 0 => {
            let mut symbolizer = Symbolizer::new();
            assert_eq!(symbolizer.symbolize_kernel(address + 4, false).function(), "schedule");
        }
        _ => println!("/proc/kallsyms hides addresses: skipping the live kernel check"),
    }
    let _ = std::fs::remove_dir_all(&fx.dir);
}
