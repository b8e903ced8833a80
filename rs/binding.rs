#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
mod sys { include!(concat!(env!("OUT_DIR"), "/proctap_sys.rs")); }
