//! prebuilt/ holds what the sources build to: the BPF object and skeleton of
//! each architecture, the bindings, and the JSON Schema of the output. A
//! crate that depends on proctap uses them and needs no BPF toolchain, so
//! they must never go stale.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The architectures prebuilt/ holds objects for.
const ARCHES: [&str; 2] = ["x86_64", "aarch64"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// (freshly built, checked in) pairs: this build's own outputs in OUT_DIR,
/// and the other architectures' objects built into `scratch`.
fn pairs(scratch: &Path) -> Vec<(PathBuf, PathBuf)> {
    let out = Path::new(env!("OUT_DIR"));
    let prebuilt = root().join("prebuilt");
    let mut pairs = vec![
        (out.join("proctap_sys.rs"), prebuilt.join("proctap_sys.rs")),
        // The JSON reference, generated from the registry (README links it).
        (out.join("proctap.schema.json"), prebuilt.join("proctap.schema.json")),
    ];
    for arch in ARCHES {
        let built = if arch == std::env::consts::ARCH { out.to_path_buf() } else { build_objects(arch, scratch) };
        for file in ["proctap.bpf.o", "proctap.skel.h"] {
            pairs.push((built.join(file), prebuilt.join(arch).join(file)));
        }
    }
    pairs
}

/// Another architecture's BPF object and skeleton, made by `make` from this
/// build's generated headers (the registry's, the same for every arch) and
/// vendor/ARCH/vmlinux.h.
fn build_objects(arch: &str, scratch: &Path) -> PathBuf {
    let dir = scratch.join(arch);
    std::fs::create_dir_all(dir.join("gen")).unwrap();
    for entry in std::fs::read_dir(Path::new(env!("OUT_DIR")).join("gen")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join("gen").join(entry.file_name())).unwrap();
    }
    let status = Command::new("make")
        .current_dir(root())
        .arg("--no-print-directory")
        .arg(format!("O={}", dir.display()))
        .arg(format!("ARCH={arch}"))
        .arg(format!("LIBBPF_INCLUDE={}", env!("PROCTAP_LIBBPF_INCLUDE")))
        .arg(dir.join("proctap.skel.h"))
        .status()
        .expect("running make");
    assert!(status.success(), "building the {arch} BPF object");
    dir
}

/// With the `bpf-rebuild` feature (as `./dev.sh` and CI build), the fresh
/// outputs must equal prebuilt/; `./dev.sh prebuilt` (PROCTAP_BLESS=1)
/// copies them there instead.
#[test]
fn prebuilt_outputs_match_the_sources() {
    if !cfg!(feature = "bpf-rebuild") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must build with --features proctap/bpf-rebuild, so that prebuilt/ is compared with the sources"
        );
        eprintln!("SKIPPED: built from prebuilt/ (the bpf-rebuild feature is off), nothing to compare it with");
        return;
    }
    if option_env!("PROCTAP_EVENTS").is_some_and(|v| !v.is_empty()) {
        eprintln!("SKIPPED: built with user tracepoints (PROCTAP_EVENTS), which prebuilt/ does not have");
        return;
    }
    let bless = std::env::var_os("PROCTAP_BLESS").is_some();
    let scratch = std::env::temp_dir().join(format!("proctap-prebuilt-{}", std::process::id()));
    let mut stale = Vec::new();
    for (fresh, kept) in pairs(&scratch) {
        let bytes = std::fs::read(&fresh).unwrap_or_else(|e| panic!("{}: {e}", fresh.display()));
        if std::fs::read(&kept).ok().as_ref() == Some(&bytes) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
            std::fs::write(&kept, &bytes).unwrap_or_else(|e| panic!("{}: {e}", kept.display()));
        } else {
            stale.push(kept.display().to_string());
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(stale.is_empty(), "stale: {stale:?}; run ./dev.sh prebuilt and commit the result");
}
