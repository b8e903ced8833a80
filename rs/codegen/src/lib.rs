//! Code generation for proctap's event registry.
//!
//! [`generate`] reads the declarations in `c/events` (one TOML file per kind)
//! ([`registry`] checks them) and writes every piece of per-kind code the
//! project would otherwise write by hand: C record structs and asserts
//! ([`c`]), BPF emit wrappers ([`bpf`]), C JSON printers ([`json`]), the
//! Rust event types ([`rust`]) and their Arrow tables ([`arrow`]). build.rs runs it; so can
//! `cargo run -p proctap-codegen -- c/events DIR` to read the output.

pub mod arrow;
pub mod bpf;
pub mod c;
mod decl;
pub mod json;
pub mod model;
mod names;
pub mod registry;
pub mod rust;
pub mod schema;
#[cfg(test)]
mod tests;
pub mod tracepoints;

use std::path::{Path, PathBuf};

pub use registry::{Error, Registry};

/// The user tracepoints' programs, when any are declared.
const TRACEPOINTS_BPF: &str = "gen/pt_tracepoints.bpf.c";

/// Every generated file: (path relative to the output directory, contents).
pub fn render(reg: &Registry) -> Vec<(&'static str, String)> {
    vec![
        ("gen/pt_kinds.h", c::header(reg)),
        ("gen/pt_kinds.c", c::table(reg)),
        ("gen/pt_kinds.bpf.h", bpf::helpers(reg)),
        ("gen/pt_json.c", json::printers(reg)),
        ("kinds.rs", rust::module(reg)),
        ("arrow.rs", arrow::module(reg)),
        ("proctap.schema.json", schema::document(reg)),
    ]
}

/// Generates every output of the registry in `events`, plus the user
/// tracepoints declared in the JSON file `tracepoints` (typed from the
/// running kernel), into `out`. A file whose contents did not change is not
/// rewritten, so make does not rebuild what depends on it. Returns the
/// files written.
pub fn generate(
    events: &Path,
    tracepoints: Option<&Path>,
    out: &Path,
) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let tps = match tracepoints {
        Some(file) => tracepoints::load(file, &tracepoints::kernel::SystemKernel::new())?,
        None => Vec::new(),
    };
    let decls = tracepoints
        .map_or_else(Vec::new, |file| tps.iter().map(|tp| (file.to_path_buf(), tracepoints::decl(tp, file))).collect());
    let reg = registry::load_dir_with(events, decls)?;
    let mut files = render(&reg);
    files.push((TRACEPOINTS_BPF, tracepoints::bpf::source(&tps)));
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
