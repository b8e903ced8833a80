//! Memcached's text protocol, classic and meta commands: a request is a
//! command line (plus a data block for storage commands), a response one
//! or more lines (VALUE blocks then END for retrievals). Parsed by hand:
//! the grammar is lines of words. Requests with `noreply` get no
//! response; they are reported without one at once. A meta request with
//! the `q` flag gets one only when it is not the common case (a hit for
//! mg, a failure for ms, md, ma): it waits, and a later response pairs
//! with it by the key or opaque token the response echoes (`k`, `O`), or
//! ends it without a response when a later request's answer comes first
//! (the meta no-op, `mn`, is sent for that).

use super::{Framed, Parse, Partial};

/// The longest command or response line taken (keys are at most 250 bytes).
const LINE_MAX: usize = 2048;
/// Bytes kept of a key.
const KEY_KEPT: usize = 250;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    pub command: String,
    /// The first key; null for commands without one (version, stats, ...).
    pub key: Option<String>,
    /// Keys named (a multi-get names several).
    pub keys: usize,
    #[serde(skip)]
    pub(crate) noreply: bool,
    /// A meta request with the `q` flag: its response may not come.
    #[serde(skip)]
    pub(crate) quiet: bool,
    /// A meta request's opaque token (`O` flag), which its response echoes.
    #[serde(skip)]
    pub(crate) opaque: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    /// The last line's first word: END, STORED, NOT_FOUND, DELETED, HD, EN,
    /// VA, a number (incr/decr), ERROR, CLIENT_ERROR, ...
    pub status: String,
    /// VALUE blocks (classic retrievals), or 1 for a meta VA.
    pub values: usize,
    /// The key (`k` flag) and the opaque token (`O`) a meta response
    /// echoes, which say which quiet request it answers.
    #[serde(skip)]
    pub(crate) key: Option<String>,
    #[serde(skip)]
    pub(crate) opaque: Option<String>,
}

/// The value of a meta flag (`k`, `O`: a letter and its token) among the
/// words after a meta command's or response's fixed ones.
fn flag(words: &[&[u8]], letter: u8) -> Option<String> {
    words.iter().find(|w| w.len() > 1 && w[0] == letter).map(|w| text(&w[1..], KEY_KEPT))
}

/// Storage commands: their line ends with the data block's size.
const STORAGE: &[&str] = &["set", "add", "replace", "append", "prepend", "cas"];
const RETRIEVAL: &[&str] = &["get", "gets", "gat", "gats"];
const OTHER: &[&str] = &[
    "delete",
    "incr",
    "decr",
    "touch",
    "version",
    "stats",
    "flush_all",
    "verbosity",
    "mg",
    "ms",
    "md",
    "ma",
    "mn",
    "me",
];
/// Commands whose words after the name are not keys.
const KEYLESS: &[&str] = &["version", "stats", "flush_all", "verbosity", "mn"];

/// The line at the start of `b` (without CRLF) and the bytes it takes;
/// Err if longer than any valid line.
fn line(b: &[u8]) -> Result<Option<(&[u8], usize)>, ()> {
    match memchr::memmem::find(&b[..b.len().min(LINE_MAX + 2)], b"\r\n") {
        Some(i) => Ok(Some((&b[..i], i + 2))),
        None if b.len() > LINE_MAX => Err(()),
        None => Ok(None),
    }
}

fn words(l: &[u8]) -> Vec<&[u8]> {
    l.split(|&c| c == b' ').filter(|w| !w.is_empty()).collect()
}

fn text(b: &[u8], kept: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(kept)]).into_owned()
}

/// The largest data block taken (memcached's item size limit is at most
/// 1 GiB): a bigger size is not the protocol's.
const BLOCK_MAX: usize = 1 << 30;

/// A data block's size with its CRLF.
fn size(w: Option<&&[u8]>) -> Result<usize, ()> {
    let n: usize = w.and_then(|w| std::str::from_utf8(w).ok()).and_then(|s| s.parse().ok()).ok_or(())?;
    if n > BLOCK_MAX {
        return Err(());
    }
    Ok(n + 2)
}

/// A whole message of `total` bytes (its data block's CRLF included) whose
/// first `b.len()` bytes are here.
fn framed<M>(msg: M, b: &[u8], total: usize) -> Parse<M> {
    let here = b.len().min(total);
    Parse::Message(Framed { msg, len: here, more: (total - here) as u64, size: total as u64 })
}

pub(crate) fn parse_request(b: &[u8]) -> Parse<Request> {
    let Ok(found) = line(b) else { return Parse::Invalid };
    let Some((l, used)) = found else { return Parse::NeedMore };
    let w = words(l);
    let Some(command) = w.first().map(|c| String::from_utf8_lossy(c).into_owned()) else { return Parse::Invalid };
    let c = command.as_str();
    if !STORAGE.contains(&c) && !RETRIEVAL.contains(&c) && !OTHER.contains(&c) {
        return Parse::Invalid;
    }
    let meta = c.len() == 2;
    let noreply = w.last().is_some_and(|x| *x == b"noreply");
    let quiet = meta && w.iter().skip(2).any(|f| *f == b"q");
    let opaque = if meta { flag(w.get(2..).unwrap_or_default(), b'O') } else { None };
    // gat and gats give the expiry first, then keys; version and the like
    // name none.
    let first_key = if c.starts_with("ga") { 2 } else { 1 };
    let keys = if KEYLESS.contains(&c) {
        0
    } else if RETRIEVAL.contains(&c) {
        w.len().saturating_sub(first_key)
    } else {
        usize::from(w.len() > first_key)
    };
    let key = w.get(first_key).filter(|_| keys > 0).map(|k| text(k, KEY_KEPT));
    // The data block: "set k flags exptime bytes", "ms k bytes ...".
    let block = if STORAGE.contains(&c) {
        match size(w.get(4)) {
            Ok(n) => n,
            Err(()) => return Parse::Invalid,
        }
    } else if c == "ms" {
        match size(w.get(2)) {
            Ok(n) => n,
            Err(()) => return Parse::Invalid,
        }
    } else {
        0
    };
    framed(Request { command, key, keys, noreply, quiet, opaque }, b, used + block)
}

/// The response at the start of `b` (after the steps in `partial`): lines
/// up to the one that ends it. A retrieval's VALUE blocks are taken in
/// steps, so values of any size pair.
pub(crate) fn parse_response(b: &[u8], partial: &mut Partial) -> Parse<Response> {
    let mut at = 0;
    let mut values = partial.rows.unwrap_or(0) as usize;
    loop {
        let Ok(found) = line(&b[at..]) else { return Parse::Invalid };
        let Some((l, used)) = found else {
            return if at > 0 { Parse::Progress { len: at, more: 0 } } else { Parse::NeedMore };
        };
        let w = words(l);
        let Some(&first) = w.first() else { return Parse::Invalid };
        match first {
            // A classic value block, then more lines; a meta value ends it.
            b"VALUE" | b"VA" => {
                let n = match size(w.get(if first == b"VA" { 1 } else { 3 })) {
                    Ok(n) => n,
                    Err(()) => return Parse::Invalid,
                };
                values += 1;
                let end = at + used + n;
                if first == b"VA" {
                    let (key, opaque) = (flag(&w[2..], b'k'), flag(&w[2..], b'O'));
                    let msg = Response { status: "VA".to_string(), values, key, opaque };
                    return framed(msg, &b[..b.len().min(end)], end);
                }
                if b.len() < end {
                    // The rest of the block is passed over as it comes.
                    partial.rows = Some(values as u64);
                    return Parse::Progress { len: b.len(), more: (end - b.len()) as u64 };
                }
                at = end;
            }
            b"STAT" => at += used,
            _ => {
                let end = at + used;
                // A meta status (two letters) may echo flags.
                let flags = if first.len() == 2 { &w[1..] } else { &[][..] };
                let (key, opaque) = (flag(flags, b'k'), flag(flags, b'O'));
                let msg = Response { status: text(first, 32), values, key, opaque };
                return match framed(msg, &b[..end], end) {
                    Parse::Message(f) => Parse::Message(Framed { size: partial.passed + f.size, ..f }),
                    other => other,
                };
            }
        }
    }
}

/// Does `b` start with a command line of the protocol (a known command,
/// then a space or the line's end)?
pub(crate) fn looks_like_request(b: &[u8]) -> bool {
    let head = &b[..b.len().min(LINE_MAX)];
    let Some(end) = memchr::memmem::find(head, b"\r\n") else { return false };
    let w = words(&head[..end]);
    w.first().is_some_and(|c| {
        let c = std::str::from_utf8(c).unwrap_or("");
        STORAGE.contains(&c) || RETRIEVAL.contains(&c) || OTHER.contains(&c)
    }) && head[..end].iter().all(|c| c.is_ascii_graphic() || *c == b' ')
}
