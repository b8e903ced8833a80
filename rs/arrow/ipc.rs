//! A directory of Arrow IPC files, one per kind (`DIR/exec.arrow`, …).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow_ipc::writer::FileWriter;

use super::generated::table_name;
use super::{Error, Tables};
use crate::event::{Event, EventKind, KINDS};
use crate::Batch;

/// One kind's open file.
struct KindFile {
    path: PathBuf,
    writer: FileWriter<BufWriter<File>>,
}

/// Writes events into one Arrow IPC file per kind, `DIR/<kind>.arrow`
/// (the kind as its declaration names it: `exec`, `exit`, `lost`, …), each
/// created when the first event of its kind arrives. Rows are gathered and
/// written as record batches of [`rows_per_batch`](IpcDir::rows_per_batch)
/// rows, and on [`flush`](IpcDir::flush).
///
/// [`finish`](IpcDir::finish) writes what is left and each file's footer,
/// and reports any failure. Dropping an `IpcDir` unfinished finishes its
/// files too, but can only print a failure on stderr.
pub struct IpcDir {
    dir: PathBuf,
    tables: Tables,
    /// By [`EventKind`] index.
    files: Vec<Option<KindFile>>,
    rows_per_batch: usize,
    finished: bool,
}

impl IpcDir {
    /// Rows per record batch unless [`rows_per_batch`](IpcDir::rows_per_batch) says otherwise.
    pub const DEFAULT_ROWS_PER_BATCH: usize = 8192;

    /// Creates `dir` (and its parents) if needed. Refuses a directory that
    /// holds a kind's file already: an earlier trace's files would mix with
    /// this one's.
    pub fn create(dir: impl AsRef<Path>) -> Result<IpcDir, Error> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| Error::CreateDir { path: dir.clone(), source })?;
        if let Some(path) = EventKind::ALL.iter().map(|&k| kind_path(&dir, k)).find(|p| p.exists()) {
            return Err(Error::Exists { path });
        }
        Ok(IpcDir {
            dir,
            tables: Tables::new(),
            files: (0..KINDS).map(|_| None).collect(),
            rows_per_batch: IpcDir::DEFAULT_ROWS_PER_BATCH,
            finished: false,
        })
    }

    /// Rows per record batch (at least 1): fewer cost more per row in the
    /// files, more hold more memory and delay rows to the next flush.
    pub fn rows_per_batch(mut self, rows: usize) -> IpcDir {
        self.rows_per_batch = rows.max(1);
        self
    }

    /// The file of a kind's events (written only if one arrived).
    pub fn path(&self, kind: EventKind) -> PathBuf {
        kind_path(&self.dir, kind)
    }

    /// Appends every event of the batch to its kind's file.
    pub fn write(&mut self, batch: &Batch) -> Result<(), Error> {
        for event in batch {
            self.write_event(&event)?;
        }
        Ok(())
    }

    /// Appends one event to its kind's file.
    pub fn write_event<B: AsRef<[u8]>>(&mut self, event: &Event<B>) -> Result<(), Error> {
        let kind = event.kind();
        if self.files.get(kind.index()).is_some_and(Option::is_none) {
            self.open(kind)?;
        }
        self.tables.push(event);
        if self.tables.rows(kind) >= self.rows_per_batch {
            self.write_rows(kind)?;
        }
        Ok(())
    }

    /// Writes the rows gathered so far into their files, and the files'
    /// buffers to the OS.
    pub fn flush(&mut self) -> Result<(), Error> {
        for kind in EventKind::ALL {
            self.write_rows(kind)?;
            if let Some(Some(file)) = self.files.get_mut(kind.index()) {
                file.writer.flush().map_err(|source| Error::Write { path: file.path.clone(), source })?;
            }
        }
        Ok(())
    }

    /// Writes the rows left and every file's footer; returns the files
    /// written, in kind order.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, Error> {
        self.finish_files()
    }

    /// Creates the kind's file and writes its schema.
    fn open(&mut self, kind: EventKind) -> Result<(), Error> {
        let path = self.path(kind);
        let file = File::create(&path).map_err(|source| Error::CreateFile { path: path.clone(), source })?;
        let writer = FileWriter::try_new_buffered(file, &super::schema(kind))
            .map_err(|source| Error::Write { path: path.clone(), source })?;
        if let Some(slot) = self.files.get_mut(kind.index()) {
            *slot = Some(KindFile { path, writer });
        }
        Ok(())
    }

    /// The kind's gathered rows as one record batch in its file.
    fn write_rows(&mut self, kind: EventKind) -> Result<(), Error> {
        let Some(batch) = self.tables.finish_kind(kind)? else {
            return Ok(());
        };
        match self.files.get_mut(kind.index()) {
            Some(Some(file)) => {
                file.writer.write(&batch).map_err(|source| Error::Write { path: file.path.clone(), source })
            }
            _ => Ok(()),
        }
    }

    /// Finishes every file, all of them even when one fails; the first
    /// failure is returned.
    fn finish_files(&mut self) -> Result<Vec<PathBuf>, Error> {
        self.finished = true;
        let mut first_error = None;
        let mut written = Vec::new();
        for kind in EventKind::ALL {
            let rows = self.write_rows(kind);
            let Some(Some(file)) = self.files.get_mut(kind.index()).map(Option::take) else {
                continue;
            };
            let closed = rows.and_then(|()| close(file.writer, &file.path));
            match closed {
                Ok(()) => written.push(file.path),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(written), Err)
    }
}

/// Writes the file's footer and flushes it to the OS.
fn close(writer: FileWriter<BufWriter<File>>, path: &Path) -> Result<(), Error> {
    let error = |source| Error::Write { path: path.to_path_buf(), source };
    let buffered = writer.into_inner().map_err(error)?;
    buffered.into_inner().map_err(|e| error(e.into_error().into()))?;
    Ok(())
}

fn kind_path(dir: &Path, kind: EventKind) -> PathBuf {
    dir.join(format!("{}.arrow", table_name(kind)))
}

impl Drop for IpcDir {
    fn drop(&mut self) {
        if !self.finished {
            if let Err(e) = self.finish_files() {
                eprintln!("proctap: an Arrow IPC directory dropped without finish() failed to finish: {e}");
            }
        }
    }
}
