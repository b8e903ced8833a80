//! Batches as an async stream, for tokio users (the `tokio` feature).
//!
//! The poll thread hands each filled batch to a tokio channel without ever
//! waiting on it; the runtime's tasks await the next one. Nothing here
//! blocks a runtime worker: the receiving side only polls the channel.

use std::pin::Pin;
use std::task::{Context, Poll};

use super::Batch;

/// The batches of a tracer started with [`super::Tracer::start_stream`], in
/// order. Ends (`None`) once the tracer stopped and every batch was read.
///
/// A [`futures_core::Stream`], and [`BatchStream::next_batch`] for callers
/// without a stream combinator crate. Dropping it does not stop the tracer:
/// the batches the poll thread fills after that are counted in
/// [`super::Stats::undelivered`].
pub struct BatchStream {
    pub(super) batches: tokio::sync::mpsc::Receiver<Batch>,
}

impl BatchStream {
    /// The next batch; `None` after the tracer stopped and the last batch
    /// was taken.
    pub async fn next_batch(&mut self) -> Option<Batch> {
        self.batches.recv().await
    }
}

impl futures_core::Stream for BatchStream {
    type Item = Batch;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Batch>> {
        self.batches.poll_recv(cx)
    }
}
