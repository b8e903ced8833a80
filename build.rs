//! Generates the per-kind code from the event registry (c/events/*.toml),
//! builds the C core with `make lib` into OUT_DIR, links it statically, and
//! provides the Rust bindings of c/proctap.h.
//!
//! By default the compiled BPF pieces are the checked-in ones: the CO-RE
//! object and its skeleton for the target architecture (prebuilt/ARCH/) and
//! the bindings (prebuilt/proctap_sys.rs). Building the crate then takes a
//! C compiler, make and libelf's headers, and nothing from the BPF
//! toolchain. The `bpf-rebuild` feature compiles them from source instead
//! (clang, bpftool, libclang for bindgen), as CI and `./dev.sh` always do;
//! a test there fails when prebuilt/ is stale (`./dev.sh prebuilt`
//! refreshes it). User tracepoints (PROCTAP_EVENTS) are compiled here, so
//! they need `bpf-rebuild`.
//!
//! libbpf comes from libbpf-sys (`links = "bpf"`), which hands us its header
//! directory as DEP_BPF_INCLUDE and links libbpf, libelf and zlib statically.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the BPF object, skeleton and bindings are compiled from source.
const REBUILD: bool = cfg!(feature = "bpf-rebuild");

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let libbpf_include =
        env::var("DEP_BPF_INCLUDE").expect("libbpf-sys did not export its include directory (DEP_BPF_INCLUDE)");

    // A watched path that does not exist reruns the script every build: a
    // package has no vendor/ (only bpf-rebuild reads it).
    for path in ["c", "vendor", "prebuilt", "Makefile"] {
        if root.join(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    for var in ["CLANG", "BPFTOOL", "LLVM_STRIP", "CC"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let arch = target_arch();

    // User tracepoints (README: "Adding tracepoints"), typed from this machine's kernel.
    println!("cargo:rerun-if-env-changed=PROCTAP_EVENTS");
    let tracepoints = env::var_os("PROCTAP_EVENTS").filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(file) = &tracepoints {
        // Relative to what? cargo runs this in proctap's own directory.
        if file.is_relative() {
            panic!("PROCTAP_EVENTS={}: give the file's absolute path", file.display());
        }
        if !REBUILD {
            panic!(
                "PROCTAP_EVENTS={}: declared tracepoints are compiled into the BPF object here; enable proctap's \
                 `bpf-rebuild` feature, which needs clang, bpftool and libclang (./dev.sh setup installs them)",
                file.display()
            );
        }
        println!("cargo:rerun-if-changed={}", file.display());
    }
    if let Err(e) = proctap_codegen::generate(&root.join("c/events"), tracepoints.as_deref(), &out) {
        match tracepoints {
            Some(_) => panic!("the event registry or PROCTAP_EVENTS is invalid: {e}"),
            None => panic!("the event registry is invalid: {e}"),
        }
    }

    // For the test that rebuilds every architecture's object (prebuilt_tests.rs).
    println!("cargo:rustc-env=PROCTAP_LIBBPF_INCLUDE={libbpf_include}");
    // Documentation builds (docs.rs sets DOCS_RS) link nothing: no C, no
    // BPF toolchain, the checked-in bindings.
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    if env::var_os("DOCS_RS").is_some() {
        prebuilt_bindings(&root, &out);
        return;
    }
    make_lib(&root, &out, &libbpf_include, arch);
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=proctap");
    bindings(&root, &out, &libbpf_include);
}

/// The target's architecture as the Makefile and vendor/ name it, from
/// cargo's target (never the build machine's `uname`: cross builds).
fn target_arch() -> &'static str {
    match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86_64",
        Ok("aarch64") => "aarch64",
        Ok(other) => panic!("proctap supports x86_64 and aarch64 targets, not {other}"),
        Err(_) => panic!("cargo did not set CARGO_CFG_TARGET_ARCH"),
    }
}

/// `make lib`: the loader, the registry's C and the BPF object's bytes
/// into OUT_DIR/libproctap.a.
fn make_lib(root: &Path, out: &Path, libbpf_include: &str, arch: &str) {
    let mut make = Command::new("make");
    make.current_dir(root)
        .args(["--no-print-directory", "lib"])
        .arg(format!("O={}", out.display()))
        .arg(format!("LIBBPF_INCLUDE={libbpf_include}"))
        .arg(format!("ARCH={arch}"));
    if !REBUILD {
        let object = root.join("prebuilt").join(arch).join("proctap.bpf.o");
        if !object.exists() {
            panic!("{} is missing: build with proctap's bpf-rebuild feature (clang, bpftool)", object.display());
        }
        make.arg("BPF_PREBUILT=1");
    }
    let status = make
        .status()
        .unwrap_or_else(|e| panic!("could not run make ({e}): proctap's build needs make and a C compiler"));
    if !status.success() {
        if REBUILD {
            panic!("`make lib` failed building the C core and the BPF object; are clang-19, bpftool and libelf-dev installed? (./dev.sh setup)");
        }
        panic!("`make lib` failed building the C core; it needs a C compiler, make and libelf's headers (libelf-dev)");
    }
}

/// Generates the bindings of c/proctap.h with bindgen.
#[cfg(feature = "bpf-rebuild")]
fn bindings(root: &Path, out: &Path, libbpf_include: &str) {
    let bindings = bindgen::Builder::default()
        .header(root.join("c/proctap.h").to_string_lossy())
        .clang_arg(format!("-I{libbpf_include}"))
        .clang_arg(format!("-I{}", out.join("gen").display()))
        .allowlist_type("pt_hdr|pt_cpu_ctl|pt_wake|proctap_.*")
        .allowlist_function("proctap_.*")
        .allowlist_var("PT_.*|PROCTAP_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen could not parse c/proctap.h (is libclang installed? ./dev.sh setup)");
    bindings.write_to_file(out.join("proctap_sys.rs")).expect("writing bindings into OUT_DIR");
}

#[cfg(not(feature = "bpf-rebuild"))]
fn bindings(root: &Path, out: &Path, _libbpf_include: &str) {
    prebuilt_bindings(root, out)
}

/// The checked-in bindings (both architectures are LP64 with the same
/// layouts; the layout tests in them check it on each).
fn prebuilt_bindings(root: &Path, out: &Path) {
    let prebuilt = root.join("prebuilt/proctap_sys.rs");
    std::fs::copy(&prebuilt, out.join("proctap_sys.rs"))
        .unwrap_or_else(|e| panic!("{}: {e} (build with the bpf-rebuild feature to generate it)", prebuilt.display()));
}
