//! `proctap-codegen EVENTS_DIR OUT_DIR`: writes the generated files, to read
//! or diff them outside a cargo build (with the user tracepoints of the file
//! PROCTAP_EVENTS names, if set).

fn main() {
    let args: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let [events, out] = args.as_slice() else {
        eprintln!("usage: proctap-codegen EVENTS_DIR OUT_DIR");
        std::process::exit(2);
    };
    let tracepoints = std::env::var_os("PROCTAP_EVENTS").filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    match proctap_codegen::generate(events, tracepoints.as_deref(), out) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
        }
        Err(e) => {
            eprintln!("proctap-codegen: {e}");
            std::process::exit(1);
        }
    }
}
