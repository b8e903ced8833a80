//! One direction of a connection as the parsers see it: the captured bytes
//! in stream order, with what is known of the bytes that were not captured
//! (a gap between events, or the tail a capture cap cut).

/// What happened to the bytes before the ones [`Direction::take`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continuity {
    /// They follow the parser's last bytes.
    Contiguous,
    /// Bytes are missing before them: whatever was being parsed is lost.
    Broken,
}

/// A direction's bytes waiting to be parsed, and the bytes to pass over
/// (the rest of a body already accounted for).
#[derive(Debug, Default)]
pub(crate) struct Direction {
    /// Stream position just past the last segment seen.
    end: Option<u64>,
    /// Captured bytes not parsed yet; they start at a message boundary, or
    /// inside a message whose head is in them.
    pub(crate) pending: Vec<u8>,
    /// Bytes still to pass over before the next message.
    pub(crate) skip: u64,
    /// Set when bytes went missing: the next segment must begin a message.
    broken: bool,
    /// Uncaptured bytes right after `pending` (a cut tail): the parser can
    /// only pass over them.
    pub(crate) hole: u64,
    /// Uncaptured bytes were passed over since the parser last took this.
    pub(crate) cut: bool,
}

/// The most bytes kept per direction waiting for a message to complete
/// (a segment is taken on top of them).
pub(crate) const PENDING_MAX: usize = 64 << 10;

impl Direction {
    /// Adds a segment: `len` bytes at stream position `pos`, of which the
    /// first `data.len()` were captured. Returns whether bytes before it
    /// are missing (the parser must drop what it was parsing).
    pub(crate) fn push(&mut self, pos: u64, len: u64, data: &[u8]) -> Continuity {
        let mut continuity = Continuity::Contiguous;
        if let Some(end) = self.end {
            if pos > end {
                let gap = pos - end;
                if self.hole == 0 && self.pending.is_empty() && self.skip >= gap {
                    self.skip -= gap; // inside a body: nothing lost that matters
                } else {
                    continuity = Continuity::Broken;
                }
            } else if pos < end {
                return Continuity::Contiguous; // seen already (a replay): ignore
            }
        }
        self.end = Some(pos + len);
        if continuity == Continuity::Broken || self.broken || self.hole > 0 {
            // After a loss, parsing starts over at this segment.
            continuity = Continuity::Broken;
            self.pending.clear();
            self.skip = 0;
            self.hole = 0;
            self.broken = false;
        }
        let mut data = data;
        let mut uncaptured = len.saturating_sub(data.len() as u64);
        let s = (self.skip.min(data.len() as u64)) as usize;
        data = &data[s..];
        self.skip -= s as u64;
        if self.skip > 0 {
            let h = self.skip.min(uncaptured);
            self.skip -= h;
            uncaptured -= h;
            self.cut |= h > 0;
        }
        // Bytes wait up to PENDING_MAX, plus one segment (bounded by the
        // capture cap), which its parser may take in steps.
        if self.pending.len() > PENDING_MAX {
            // A message larger than we keep: give up on it.
            self.pending.clear();
            self.broken = true;
            return Continuity::Broken;
        }
        self.pending.extend_from_slice(data);
        self.hole = uncaptured;
        continuity
    }

    /// Drops `n` parsed bytes from the front; the rest of a message whose
    /// bytes are not all here yet (`more`) is passed over as it comes.
    pub(crate) fn consume(&mut self, n: usize, more: u64) {
        let n = n.min(self.pending.len());
        self.pending.drain(..n);
        self.skip = more;
        if more > 0 && self.hole > 0 {
            let h = self.hole.min(self.skip);
            self.hole -= h;
            self.skip -= h;
            self.cut |= h > 0;
        }
    }

    /// Drops what is waiting, without counting it as a loss: parsing
    /// starts at the next segment (which must begin a message).
    pub(crate) fn restart(&mut self) {
        self.pending.clear();
        self.skip = 0;
        self.hole = 0;
    }

    /// The bytes waiting cannot be parsed (an unknown or cut message):
    /// drop them and start over at the next segment.
    pub(crate) fn desync(&mut self) {
        self.pending.clear();
        self.skip = 0;
        self.hole = 0;
        self.broken = true;
    }
}
