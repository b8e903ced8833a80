//! [`BuildIdIndex`]: which ELF file on disk has a given build id.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::elf;
use crate::BuildId;

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MapsEntry {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    /// `st_dev` encoding of the `major:minor` column.
    pub dev: u64,
    pub inode: u64,
    /// The path column without a " (deleted)" suffix; `[vdso]`, `[heap]`... or empty.
    pub path: String,
    pub deleted: bool,
    /// Mapped executable (the perms column has `x`).
    pub exec: bool,
}

impl MapsEntry {
    /// A mapping of a file (not anonymous memory or a pseudo mapping such as `[vdso]`).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.starts_with('/')
    }
}

/// Parses `/proc/PID/maps`; unreadable lines are skipped.
pub(crate) fn parse_maps(text: &str) -> Vec<MapsEntry> {
    text.lines()
        .filter_map(|line| {
            let mut rest = line;
            let mut field = || {
                let trimmed = rest.trim_start();
                let end = trimmed.find(' ').unwrap_or(trimmed.len());
                let (f, r) = trimmed.split_at(end);
                rest = r;
                f
            };
            let (range, perms, offset, dev, inode) = (field(), field(), field(), field(), field());
            let path = rest.trim_start();
            let (start, end) = range.split_once('-')?;
            let (major, minor) = dev.split_once(':')?;
            let (major, minor) = (u64::from_str_radix(major, 16).ok()?, u64::from_str_radix(minor, 16).ok()?);
            let (path, deleted) = match path.strip_suffix(" (deleted)") {
                Some(p) => (p, true),
                None => (path, false),
            };
            Some(MapsEntry {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                // Linux `makedev`, so that it compares with `st_dev`.
                dev: (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32),
                inode: inode.parse().ok()?,
                path: path.to_string(),
                deleted,
                exec: perms.as_bytes().get(2) == Some(&b'x'),
            })
        })
        .collect()
}

/// Reads `/proc/PID/maps`, with an error that says what to do.
pub(crate) fn read_maps(pid: u32) -> io::Result<Vec<MapsEntry>> {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map(|text| parse_maps(&text)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot read /proc/{pid}/maps ({e}): the process has exited or belongs to another user; \
                 learn its files while it runs (for example on its exec event), as root"
            ),
        )
    })
}

/// An indexed file.
#[derive(Debug)]
struct Entry {
    /// A path that opens the file from this process, whatever happens to the
    /// process that mapped it.
    path: PathBuf,
    /// The path as the mapping process saw it.
    name: PathBuf,
}

/// Build id → ELF file on disk, so that `(build id, file offset)` frames
/// symbolize after the sampled process is gone.
///
/// Feed it with [`learn_process`](Self::learn_process) (every file-backed
/// mapping of a running process plus its executable) and
/// [`learn_file`](Self::learn_file). Both are cheap to repeat: a file seen
/// before (same device and inode) is not read again.
///
/// Files of a process in another mount namespace are opened through
/// `/proc/PID/root` (or `/proc/PID/map_files`). When the same file is not
/// reachable under the same path here, or was deleted, the index keeps it
/// open and refers to it as `/proc/self/fd/N`, which stays valid after the
/// process exits (one file descriptor per such file).
#[derive(Debug, Default)]
pub struct BuildIdIndex {
    by_id: HashMap<BuildId, Entry>,
    /// (st_dev, st_ino) → its build id, or `None` when it has none.
    seen: HashMap<(u64, u64), Option<BuildId>>,
    /// Files kept open for `/proc/self/fd/N` paths.
    held: Vec<File>,
}

impl BuildIdIndex {
    /// An empty index.
    pub fn new() -> BuildIdIndex {
        BuildIdIndex::default()
    }

    /// Reads the GNU build id note of the ELF file at `path` and indexes the
    /// file under it. `None` when the file cannot be read, is not an ELF64
    /// little-endian file or has no build id.
    pub fn learn_file(&mut self, path: &Path) -> Option<BuildId> {
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let key = (meta.dev(), meta.ino());
        if let Some(known) = self.seen.get(&key) {
            return *known;
        }
        let id = read_build_id(&file);
        self.seen.insert(key, id);
        if let Some(id) = id {
            self.by_id.entry(id).or_insert_with(|| Entry { path: path.to_path_buf(), name: path.to_path_buf() });
        }
        id
    }

    /// Indexes every file-backed mapping of a running process (from
    /// `/proc/PID/maps`) and its executable. Returns how many files it read
    /// for the first time. Fails when the process' maps cannot be read (it
    /// exited, or belongs to another user and we are not root).
    pub fn learn_process(&mut self, pid: u32) -> io::Result<usize> {
        Ok(self.learn_maps(pid, &read_maps(pid)?))
    }

    /// [`learn_process`](Self::learn_process) with the mappings already read.
    pub(crate) fn learn_maps(&mut self, pid: u32, maps: &[MapsEntry]) -> usize {
        self.learn_entries(pid, maps) + self.learn_exe(pid)
    }

    /// Indexes the files of these mappings of a process (not yet seen ones).
    pub(crate) fn learn_entries(&mut self, pid: u32, maps: &[MapsEntry]) -> usize {
        let mut learned = 0;
        for entry in maps.iter().filter(|e| e.is_file()) {
            if self.seen.contains_key(&(entry.dev, entry.inode)) {
                continue;
            }
            let Some(file) = open_mapped(pid, entry) else { continue };
            let key = (entry.dev, entry.inode);
            let name = Path::new(&entry.path);
            self.learn_open(file, Some(key), name, (!entry.deleted).then_some(name));
            learned += 1;
        }
        learned
    }

    /// Indexes a running process' executable (`/proc/PID/exe`).
    fn learn_exe(&mut self, pid: u32) -> usize {
        let mut learned = 0;
        let exe = format!("/proc/{pid}/exe");
        if let (Ok(file), Ok(name)) = (File::open(&exe), std::fs::read_link(&exe)) {
            let text = name.to_string_lossy();
            let (plain, deleted) = match text.strip_suffix(" (deleted)") {
                Some(p) => (PathBuf::from(p), true),
                None => (name.clone(), false),
            };
            let key = file.metadata().ok().map(|m| (m.dev(), m.ino()));
            if key.is_none_or(|k| !self.seen.contains_key(&k)) {
                self.learn_open(file, key, &plain, (!deleted).then_some(plain.as_path()));
                learned += 1;
            }
        }
        learned
    }

    /// Indexes an opened mapped file. `here` is the path to try in our own
    /// mount namespace before holding the file open.
    fn learn_open(&mut self, file: File, key: Option<(u64, u64)>, name: &Path, here: Option<&Path>) {
        let meta = file.metadata().ok();
        let id = read_build_id(&file);
        if let Some(key) = key {
            self.seen.insert(key, id);
        }
        if let Some(meta) = &meta {
            self.seen.insert((meta.dev(), meta.ino()), id);
        }
        let Some(id) = id else { return };
        if self.by_id.contains_key(&id) {
            return;
        }
        let same_file_here = here.filter(|p| {
            let Ok(f) = File::open(p) else { return false };
            match (f.metadata(), &meta) {
                (Ok(m), Some(meta)) if (m.dev(), m.ino()) == (meta.dev(), meta.ino()) => true,
                // Another file system view (e.g. overlayfs): same build id is the same file.
                _ => read_build_id(&f) == Some(id),
            }
        });
        let path = match same_file_here {
            Some(p) => p.to_path_buf(),
            None => {
                use std::os::fd::AsRawFd;
                let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
                self.held.push(file);
                path
            }
        };
        self.by_id.insert(id, Entry { path, name: name.to_path_buf() });
    }

    /// A path that opens the file with this build id, if it was learned.
    pub fn path(&self, build_id: &BuildId) -> Option<&Path> {
        self.by_id.get(build_id).map(|e| e.path.as_path())
    }

    /// The file's path as the process that mapped it saw it (differs from
    /// [`path`](Self::path) for files of other mount namespaces or deleted files).
    pub fn original_path(&self, build_id: &BuildId) -> Option<&Path> {
        self.by_id.get(build_id).map(|e| e.name.as_path())
    }

    /// How many build ids are indexed.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Opens a mapped file: through the process while it runs (its own view
/// of the file systems), else at its path here when that is the same file
/// (device and inode), as for a process that exited.
pub(crate) fn open_mapped(pid: u32, entry: &MapsEntry) -> Option<File> {
    let map_files = format!("/proc/{pid}/map_files/{:x}-{:x}", entry.start, entry.end);
    let in_root = format!("/proc/{pid}/root{}", entry.path);
    File::open(map_files).or_else(|_| File::open(in_root)).ok().or_else(|| {
        let file = File::open(&entry.path).ok()?;
        let meta = file.metadata().ok()?;
        ((meta.dev(), meta.ino()) == (entry.dev, entry.inode)).then_some(file)
    })
}

fn read_build_id(file: &File) -> Option<BuildId> {
    elf::read(file)?.build_id.map(|note| BuildId::from_note(&note))
}

impl BuildIdIndex {
    /// The build id of a file seen before, by device and inode.
    pub(crate) fn build_id_of(&self, dev: u64, inode: u64) -> Option<BuildId> {
        self.seen.get(&(dev, inode)).copied().flatten()
    }
}
