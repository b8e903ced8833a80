//! `proctap-codegen EVENTS_DIR OUT_DIR`: writes the generated files, to read
//! or diff them outside a cargo build.

fn main() {
    let args: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let [events, out] = args.as_slice() else {
        eprintln!("usage: proctap-codegen EVENTS_DIR OUT_DIR");
        std::process::exit(2);
    };
    match proctap_codegen::generate(events, out) {
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
