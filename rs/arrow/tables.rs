//! Events into Arrow record batches, one table per kind.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::generated::{kind_schema, KindColumns};
use super::Error;
use crate::event::{Event, EventKind, KINDS};
use crate::Batch;

/// The schema of a kind's table: its columns are named as the keys of the
/// kind's JSON object, in the same order (see the [module](super) docs).
pub fn schema(kind: EventKind) -> SchemaRef {
    Arc::new(kind_schema(kind))
}

/// The events of a batch as one record batch per kind present, in kind
/// order. To gather rows across batches, use [`Tables`].
pub fn record_batches(batch: &Batch) -> Result<Vec<(EventKind, RecordBatch)>, Error> {
    let mut tables = Tables::new();
    tables.push_batch(batch);
    tables.finish()
}

/// One kind's rows so far.
struct Table {
    schema: SchemaRef,
    columns: KindColumns,
}

/// Column builders for every kind, made when the first event of a kind is
/// pushed. Pushing copies an event's values into the builders (no
/// allocation per event beyond their buffers' growth); [`Tables::finish`]
/// turns the rows into record batches and starts over, each table with
/// room for as many rows and bytes as it just had.
pub struct Tables {
    /// By [`EventKind`] index.
    tables: Vec<Option<Table>>,
}

impl Default for Tables {
    fn default() -> Tables {
        Tables::new()
    }
}

impl Tables {
    pub fn new() -> Tables {
        Tables { tables: (0..KINDS).map(|_| None).collect() }
    }

    /// Appends the event as a row of its kind's table.
    #[inline]
    pub fn push<B: AsRef<[u8]>>(&mut self, event: &Event<B>) {
        let kind = event.kind();
        if let Some(slot) = self.tables.get_mut(kind.index()) {
            let table = slot.get_or_insert_with(|| Table { schema: schema(kind), columns: KindColumns::new(kind) });
            table.columns.append(event);
        }
    }

    /// Appends every event of the batch.
    pub fn push_batch(&mut self, batch: &Batch) {
        for event in batch {
            self.push(&event);
        }
    }

    /// Rows of this kind pushed since it was last finished.
    pub fn rows(&self, kind: EventKind) -> usize {
        self.table(kind).map_or(0, |t| t.columns.len())
    }

    /// The kind's rows as a record batch (None when there are none); its
    /// table starts over.
    pub fn finish_kind(&mut self, kind: EventKind) -> Result<Option<RecordBatch>, Error> {
        let Some(Some(table)) = self.tables.get_mut(kind.index()) else {
            return Ok(None);
        };
        if table.columns.len() == 0 {
            return Ok(None);
        }
        let batch = table.columns.finish(Arc::clone(&table.schema));
        batch.map(Some).map_err(|source| Error::Convert { kind, source })
    }

    /// Every kind's rows, one record batch per kind that has rows, in kind
    /// order; the tables start over.
    pub fn finish(&mut self) -> Result<Vec<(EventKind, RecordBatch)>, Error> {
        let mut out = Vec::new();
        for kind in EventKind::ALL {
            if let Some(batch) = self.finish_kind(kind)? {
                out.push((kind, batch));
            }
        }
        Ok(out)
    }

    fn table(&self, kind: EventKind) -> Option<&Table> {
        self.tables.get(kind.index()).and_then(Option::as_ref)
    }
}
