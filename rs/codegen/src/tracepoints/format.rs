//! A tracefs event format file (events/CATEGORY/NAME/format): its own
//! fields, as the kernel lays them out. Pure: it parses text it is given.

/// One field of the event (the common_* header fields left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatField {
    /// The C type as written, without the array suffix ("const char *",
    /// "__data_loc char[]", "unsigned int").
    pub ty: String,
    pub name: String,
    /// Elements, when the field is a fixed array (`char comm[16]`).
    pub array: Option<u32>,
    pub offset: u32,
    pub size: u32,
}

/// The event's own fields, in order.
pub fn parse(text: &str) -> Result<Vec<FormatField>, String> {
    let mut fields = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("field:")) {
        let mut decl = None;
        let (mut offset, mut size) = (None, None);
        for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(d) = part.strip_prefix("field:") {
                decl = Some(d.trim());
            } else if let Some(v) = part.strip_prefix("offset:") {
                offset = v.trim().parse().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.trim().parse().ok();
            }
        }
        let (Some(decl), Some(offset), Some(size)) = (decl, offset, size) else {
            return Err(format!("format line not understood: {line}"));
        };
        // A declaration this reader cannot split (a kernel's own syntax) is
        // left out: only the attributes an entry names must be found.
        if let Some(field) = parse_decl(decl, offset, size).filter(|f| !f.name.starts_with("common_")) {
            fields.push(field);
        }
    }
    Ok(fields)
}

/// `TYPE NAME` or `TYPE NAME[N]` (N may be an expression: then None).
fn parse_decl(decl: &str, offset: u32, size: u32) -> Option<FormatField> {
    let (head, array) = match decl.strip_suffix(']') {
        Some(rest) => {
            let (head, n) = rest.split_once('[')?;
            (head.trim_end(), n.trim().parse().ok())
        }
        None => (decl, None),
    };
    let split = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (ty, name) = (head[..=split].trim(), &head[split + 1..]);
    if ty.is_empty() || name.is_empty() {
        return None;
    }
    Some(FormatField { ty: ty.to_string(), name: name.to_string(), array, offset, size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OPENAT: &str = "name: sys_enter_openat\nID: 782\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n\n\
print fmt: \"dfd: 0x%08lx\", ((unsigned long)(REC->dfd))\n";

    #[test]
    fn fields_keep_their_type_name_offset_and_array_length() {
        let f = parse(OPENAT).unwrap();
        let got: Vec<(&str, &str, u32)> = f.iter().map(|f| (f.ty.as_str(), f.name.as_str(), f.offset)).collect();
        assert_eq!(
            got,
            [("int", "__syscall_nr", 8), ("int", "dfd", 16), ("const char *", "filename", 24), ("umode_t", "mode", 40)]
        );
        let comm = parse("field:char comm[16];\toffset:20;\tsize:16;\tsigned:0;").unwrap();
        assert_eq!(
            comm[0],
            FormatField { ty: "char".into(), name: "comm".into(), array: Some(16), offset: 20, size: 16 }
        );
        let loc = parse("field:__data_loc char[] name;\toffset:8;\tsize:4;\tsigned:0;").unwrap();
        assert_eq!((loc[0].ty.as_str(), loc[0].name.as_str(), loc[0].array), ("__data_loc char[]", "name", None));
    }

    #[test]
    fn a_line_without_offset_is_an_error() {
        assert!(parse("field:int x;\tsize:4;").is_err());
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panicking(text in "(field:[ -~]{0,40};[ -~\\t]{0,40}\n){0,4}") {
            let _ = parse(&text);
        }
    }
}
