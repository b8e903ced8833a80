//! HPACK for an HTTP/2 connection joined in its middle: the header table
//! entries made before the join are unknown, so a field that refers to one
//! is reported unknown, never guessed, and decoding goes on.
//!
//! Why this holds: a table index counts from the newest entry (62 is the
//! last one inserted), and from the join on this decoder sees every
//! insertion the encoder makes. So index 62 + j is the same entry here and
//! in the encoder's table whenever this table holds j + 1 entries; past
//! that it is an entry of before the join. Evictions do not change this:
//! the encoder never refers to an entry it evicted, and one evicted here
//! only turns a known field into an unknown one. An inserted field whose
//! name came from an unknown entry is kept with its name unknown, so later
//! indexes still line up.
//!
//! A connection whose preface was seen uses loona-hpack's decoder instead
//! (its table is known from the start); this one uses loona-hpack's Huffman
//! decoder for the string literals.

use std::collections::VecDeque;

use loona_hpack::huffman::HuffmanDecoder;

/// RFC 7541, Appendix A: the static table, index 1 to 61.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The most table bytes kept (by HPACK's entry size), whatever size the
/// encoder announces: entries past it become unknown, not wrong.
const KEPT_MAX: usize = 64 << 10;
/// HPACK's default table size, until a size update says otherwise.
const DEFAULT_SIZE: usize = 4096;

/// A block that is not HPACK (the table cannot be followed past it).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// A decoded header block: the fields it could name, and how many it could
/// not (they referred to entries made before the join).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) unknown: usize,
}

/// A table entry; its name is unknown when it came from an unknown entry.
type Entry = (Option<Vec<u8>>, Vec<u8>);

/// One direction's table as far as it is known since the join.
pub(crate) struct Partial {
    /// Newest first.
    entries: VecDeque<Entry>,
    bytes: usize,
    max: usize,
}

impl Default for Partial {
    fn default() -> Partial {
        Partial { entries: VecDeque::new(), bytes: 0, max: DEFAULT_SIZE }
    }
}

fn entry_size(e: &Entry) -> usize {
    e.0.as_ref().map_or(0, Vec::len) + e.1.len() + 32
}

impl Partial {
    /// Decodes one whole header block.
    pub(crate) fn decode(&mut self, mut b: &[u8]) -> Result<Block, Malformed> {
        let mut block = Block::default();
        while let Some(&first) = b.first() {
            if first & 0x80 != 0 {
                let index = integer(&mut b, 7)?;
                match self.lookup(index)? {
                    (Some(name), value) => block.fields.push((name, value)),
                    (None, _) => block.unknown += 1,
                }
                continue;
            }
            if first & 0xe0 == 0x20 {
                self.max = integer(&mut b, 5)?.min(KEPT_MAX);
                self.evict(0);
                continue;
            }
            // A literal: incremental indexing (01), or not indexed (0000,
            // 0001): a name index, or 0 and a literal name.
            let (indexing, prefix) = if first & 0xc0 == 0x40 { (true, 6) } else { (false, 4) };
            let index = integer(&mut b, prefix)?;
            let name = if index == 0 { Some(string(&mut b)?) } else { self.lookup(index)?.0 };
            let value = string(&mut b)?;
            match &name {
                Some(name) => block.fields.push((name.clone(), value.clone())),
                None => block.unknown += 1,
            }
            if indexing {
                self.insert((name, value));
            }
        }
        Ok(block)
    }

    /// The entry at `index`: Ok((None, _)) when it is one of before the
    /// join (or one evicted here); an index 0 is malformed.
    fn lookup(&self, index: usize) -> Result<Entry, Malformed> {
        match index {
            0 => Err(Malformed),
            1..=61 => {
                let (n, v) = STATIC[index - 1];
                Ok((Some(n.as_bytes().to_vec()), v.as_bytes().to_vec()))
            }
            _ => Ok(self.entries.get(index - 62).cloned().unwrap_or((None, Vec::new()))),
        }
    }

    fn insert(&mut self, e: Entry) {
        let size = entry_size(&e);
        self.evict(size);
        if size <= self.max {
            self.bytes += size;
            self.entries.push_front(e);
        }
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.bytes + room > self.max {
            let Some(old) = self.entries.pop_back() else { break };
            self.bytes -= entry_size(&old);
        }
    }
}

/// An HPACK integer with an n-bit prefix, at the start of `b` (consumed).
fn integer(b: &mut &[u8], prefix: u32) -> Result<usize, Malformed> {
    let mask = (1u8 << prefix) - 1;
    let (&first, mut rest) = b.split_first().ok_or(Malformed)?;
    let mut value = usize::from(first & mask);
    if value == usize::from(mask) {
        let mut shift = 0;
        loop {
            let (&byte, tail) = rest.split_first().ok_or(Malformed)?;
            rest = tail;
            // Beyond 28 bits no index or length makes sense here.
            if shift > 21 {
                return Err(Malformed);
            }
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    *b = rest;
    Ok(value)
}

/// An HPACK string literal (Huffman-coded or not), consumed from `b`.
fn string(b: &mut &[u8]) -> Result<Vec<u8>, Malformed> {
    let huffman = b.first().ok_or(Malformed)? & 0x80 != 0;
    let len = integer(b, 7)?;
    let raw = b.get(..len).ok_or(Malformed)?;
    *b = &b[len..];
    if huffman {
        HuffmanDecoder::new().decode(raw).map_err(|_| Malformed)
    } else {
        Ok(raw.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    /// Header lists drawn from a small vocabulary, so that the encoder's
    /// table is used (repeats) and evicts (long values).
    fn lists() -> impl Strategy<Value = Vec<Fields>> {
        let name = prop::sample::select(vec![":method", ":path", ":authority", "x-a", "x-b", "content-type", "cookie"]);
        let value = prop_oneof![
            prop::sample::select(vec!["GET", "POST", "/", "/x?y=1", "h:80", "application/grpc"]).prop_map(String::from),
            "[a-z]{0,40}",
            "[a-z]{300,700}",
        ];
        let field = (name, value).prop_map(|(n, v)| (n.as_bytes().to_vec(), v.into_bytes()));
        prop::collection::vec(prop::collection::vec(field, 1..8), 1..12)
    }

    fn encode(lists: &[Fields]) -> Vec<Vec<u8>> {
        let mut encoder = loona_hpack::Encoder::new();
        lists.iter().map(|l| encoder.encode(l.iter().map(|(n, v)| (&n[..], &v[..])))).collect()
    }

    proptest! {
        /// From the start every field is known and right.
        #[test]
        fn from_the_start_it_decodes_what_the_encoder_encoded(lists in lists()) {
            let mut table = Partial::default();
            for (list, block) in lists.iter().zip(encode(&lists)) {
                let got = table.decode(&block).unwrap();
                prop_assert_eq!(got.unknown, 0);
                prop_assert_eq!(&got.fields, list);
            }
        }

        /// Joined at any block: every field given is right (in order), and
        /// the rest are counted unknown.
        #[test]
        fn joined_later_it_never_gives_a_wrong_field(lists in lists(), join in 0usize..12) {
            let blocks = encode(&lists);
            let mut table = Partial::default();
            for (list, block) in lists.iter().zip(&blocks).skip(join.min(lists.len())) {
                let got = table.decode(block).unwrap();
                prop_assert_eq!(got.fields.len() + got.unknown, list.len());
                let mut rest = list.iter();
                for field in &got.fields {
                    prop_assert!(rest.any(|f| f == field), "{:?} is not in {:?}", field, list);
                }
            }
        }

        #[test]
        fn any_bytes_are_decoded_or_malformed(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Partial::default().decode(&bytes);
        }
    }

    #[test]
    fn the_static_table_is_the_one_loona_hpack_decodes() {
        for index in 1..=61u8 {
            let mut whole = loona_hpack::Decoder::new();
            let want = whole.decode(&[0x80 | index]).unwrap();
            assert_eq!(Partial::default().decode(&[0x80 | index]).unwrap().fields, want, "index {index}");
        }
    }

    #[test]
    fn an_insertion_named_by_an_unknown_entry_keeps_the_indexes_in_line() {
        let mut table = Partial::default();
        // 0x7e: literal with incremental indexing, name from index 62 (an
        // entry of before the join); then the value "v".
        let got = table.decode(&[0x7e, 0x01, b'v', 0xbe]).unwrap();
        // The inserted entry is unknown by name, and index 62 (0xbe) is now it.
        assert_eq!(got, Block { fields: vec![], unknown: 2 });
        let got = table.decode(&[0x82, 0xbf]).unwrap();
        assert_eq!(got, Block { fields: vec![(b":method".to_vec(), b"GET".to_vec())], unknown: 1 });
        assert_eq!(table.decode(&[0x80]), Err(Malformed), "index 0");
        assert_eq!(table.decode(&[0xff]), Err(Malformed), "a cut integer");
    }
}
