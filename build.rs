//! Generates the per-kind code from the event registry (c/events/*.toml),
//! builds the C core with `make lib` into OUT_DIR, links it statically, and
//! generates the Rust bindings of c/proctap.h with bindgen.
//!
//! libbpf comes from libbpf-sys (`links = "bpf"`), which hands us its header
//! directory as DEP_BPF_INCLUDE and links its static libbpf.a itself.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let libbpf_include =
        env::var("DEP_BPF_INCLUDE").expect("libbpf-sys did not export its include directory (DEP_BPF_INCLUDE)");

    for path in ["c", "vendor", "Makefile"] {
        println!("cargo:rerun-if-changed={path}");
    }
    for var in ["CLANG", "BPFTOOL", "LLVM_STRIP", "CC"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    // User tracepoints (README: "Adding tracepoints"), typed from this machine's kernel.
    println!("cargo:rerun-if-env-changed=PROCTAP_EVENTS");
    let tracepoints = env::var_os("PROCTAP_EVENTS").filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(file) = &tracepoints {
        // Relative to what? cargo runs this in proctap's own directory.
        if file.is_relative() {
            panic!("PROCTAP_EVENTS={}: give the file's absolute path", file.display());
        }
        println!("cargo:rerun-if-changed={}", file.display());
    }
    if let Err(e) = proctap_codegen::generate(&root.join("c/events"), tracepoints.as_deref(), &out) {
        match tracepoints {
            Some(_) => panic!("the event registry or PROCTAP_EVENTS is invalid: {e}"),
            None => panic!("the event registry is invalid: {e}"),
        }
    }

    let status = Command::new("make")
        .current_dir(&root)
        .arg("--no-print-directory")
        .arg("lib")
        .arg(format!("O={}", out.display()))
        .arg(format!("LIBBPF_INCLUDE={libbpf_include}"))
        .status()
        .unwrap_or_else(|e| panic!("could not run make ({e}); run ./dev.sh setup to install the build tools"));
    if !status.success() {
        panic!("`make lib` failed building the C core; is clang, bpftool and libelf-dev installed? (./dev.sh setup)");
    }

    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=proctap");
    // libbpf-sys links libbpf.a, libelf and zlib; our archive needs them after it.
    println!("cargo:rustc-link-lib=elf");
    println!("cargo:rustc-link-lib=z");

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
