//! prebuilt/ holds what the sources build to: the BPF object and skeleton of
//! each architecture, and the bindings. A crate that depends on proctap
//! uses them and needs no BPF toolchain, so they must never go stale.

use std::path::{Path, PathBuf};

/// (freshly built in OUT_DIR, checked in) pairs of this architecture.
fn pairs() -> Vec<(PathBuf, PathBuf)> {
    let out = Path::new(env!("OUT_DIR"));
    let prebuilt = Path::new(env!("CARGO_MANIFEST_DIR")).join("prebuilt");
    let arch = prebuilt.join(std::env::consts::ARCH);
    vec![
        (out.join("proctap.bpf.o"), arch.join("proctap.bpf.o")),
        (out.join("proctap.skel.h"), arch.join("proctap.skel.h")),
        (out.join("proctap_sys.rs"), prebuilt.join("proctap_sys.rs")),
    ]
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
    let mut stale = Vec::new();
    for (fresh, kept) in pairs() {
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
    assert!(stale.is_empty(), "stale: {stale:?}; run ./dev.sh prebuilt and commit the result");
}
