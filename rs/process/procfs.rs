//! Reading a process from /proc: its stat line, executable and arguments.

use std::io;
use std::path::Path;

use super::{Origin, Process, ProcessKey};

/// The fields of /proc/PID/stat the table needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Stat {
    pub comm: Vec<u8>,
    pub ppid: u32,
    pub start_ticks: u64,
}

/// Parses a stat line. The command name is between the first `(` and the
/// last `)`: it may hold spaces and parentheses itself.
pub(super) fn parse_stat(line: &[u8]) -> Option<Stat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let comm = line.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    // After the name: state (field 3), ppid (4), ... starttime (22).
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let start_ticks = fields.get(19)?.parse().ok()?;
    Some(Stat { comm, ppid, start_ticks })
}

/// Splits a cmdline file (arguments each ended by a NUL) into arguments.
pub(super) fn split_cmdline(bytes: &[u8]) -> Vec<Vec<u8>> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// Reads process `pid` under `root` (a procfs mount). Its parent's key is
/// left for the caller, who knows the other processes.
pub(super) fn read_process(root: &Path, pid: u32) -> io::Result<Process> {
    use std::os::unix::ffi::OsStrExt;

    let dir = root.join(pid.to_string());
    let stat = std::fs::read(dir.join("stat"))?;
    let stat = parse_stat(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{}/stat does not parse", dir.display())))?;
    // Kernel threads have no executable, and a process may exit meanwhile:
    // the name and start are what matter.
    let filename = std::fs::read_link(dir.join("exe")).map(|p| p.as_os_str().as_bytes().to_vec()).unwrap_or_default();
    let argv = std::fs::read(dir.join("cmdline")).map(|b| split_cmdline(&b)).unwrap_or_default();
    Ok(Process {
        key: ProcessKey { pid, start_ticks: stat.start_ticks },
        ppid: stat.ppid,
        parent: None,
        comm: stat.comm,
        filename,
        argv,
        origin: Origin::Procfs,
        exited: false,
    })
}

/// The pids of the processes under `root`.
pub(super) fn pids(root: &Path) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> =
        std::fs::read_dir(root)?.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_name_with_spaces_and_parentheses_parses() {
        let line =
            b"42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat, Stat { comm: b"a) b (c)".to_vec(), ppid: 7, start_ticks: 12345 });
    }

    #[test]
    fn a_short_or_broken_line_is_none() {
        assert_eq!(parse_stat(b"42 (x) S 1 2 3"), None);
        assert_eq!(parse_stat(b"no parentheses"), None);
        assert_eq!(parse_stat(b"1 )x( S"), None);
    }

    #[test]
    fn cmdline_splits_at_each_nul() {
        assert_eq!(split_cmdline(b"sh\0-c\0\0echo\0"), vec![b"sh".to_vec(), b"-c".to_vec(), vec![], b"echo".to_vec()]);
        assert_eq!(split_cmdline(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split_cmdline(b"no-nul"), vec![b"no-nul".to_vec()]);
    }

    #[test]
    fn this_process_reads_from_proc() {
        let me = read_process(Path::new("/proc"), std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.start_ticks() > 0);
        assert!(!me.argv.is_empty());
    }

    impl Process {
        fn start_ticks(&self) -> u64 {
            self.key.start_ticks
        }
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_stat(&line);
            let _ = split_cmdline(&line);
        }

        #[test]
        fn any_name_round_trips(comm in proptest::collection::vec(any::<u8>(), 0..16), ppid: u32, start: u64) {
            let mut line = b"9 (".to_vec();
            line.extend_from_slice(&comm);
            line.extend_from_slice(format!(") R {ppid} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 {start} 0").as_bytes());
            let stat = parse_stat(&line).unwrap();
            prop_assert_eq!(stat, Stat { comm, ppid, start_ticks: start });
        }
    }
}
