//! MongoDB's wire protocol: a 16-byte header (length, requestID,
//! responseTo, opCode; little-endian) then the body. A reply names the
//! request it answers (responseTo = its requestID), by which the two pair.
//! The command is the first field of the body's document (OP_MSG, or the
//! legacy OP_QUERY); a reply's `ok` is read from its document. Parsed by
//! hand: only the header and the top-level fields of one BSON document are
//! read, which a small walker does without a BSON library. A message larger
//! than what is captured is still framed by its length.

use serde::Serialize;

use super::{Framed, Parse};

/// The server's maxMessageSizeBytes.
const MESSAGE_MAX: u64 = 48_000_000;
const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_COMPRESSED: i32 = 2012;
const OP_MSG: i32 = 2013;
/// Bytes kept of a command name.
const NAME_KEPT: usize = 64;
/// Bytes of a message waited for before it is parsed (all of a smaller
/// one): its document's first fields are in them.
const HEAD_WANTED: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// "msg", "query" or "compressed".
    pub op: &'static str,
    /// The command (the document's first field: "find", "insert", "hello",
    /// ...); null when the body is compressed or was not captured.
    pub command: Option<String>,
    pub request_id: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub op: &'static str,
    pub response_to: i32,
    /// The reply document's `ok` (1 or 0), when it has one.
    pub ok: Option<f64>,
}

// `ok` is a number, never NaN when read from a reply: equality is total.
impl Eq for Response {}

struct Header {
    length: u64,
    request_id: i32,
    response_to: i32,
    op: i32,
}

fn le32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The header at the start of `b`: Ok(None) if incomplete, Err if not one.
fn header(b: &[u8]) -> Result<Option<Header>, ()> {
    let (Some(length), Some(request_id), Some(response_to), Some(op)) =
        (le32(b, 0), le32(b, 4), le32(b, 8), le32(b, 12))
    else {
        return Ok(None);
    };
    let length = u64::try_from(length).map_err(|_| ())?;
    if !(16..=MESSAGE_MAX).contains(&length) || ![OP_REPLY, OP_QUERY, OP_COMPRESSED, OP_MSG].contains(&op) {
        return Err(());
    }
    Ok(Some(Header { length, request_id, response_to, op }))
}

fn op_name(op: i32) -> &'static str {
    match op {
        OP_MSG => "msg",
        OP_QUERY => "query",
        OP_COMPRESSED => "compressed",
        _ => "reply",
    }
}

/// The NUL-terminated string at `at`, and the offset past it.
fn cstring(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some((&rest[..end], at + end + 1))
}

/// The bytes a BSON value of type `t` at `at` takes, for the types a
/// command's top level holds; None for others or when cut.
fn value_len(b: &[u8], t: u8, at: usize) -> Option<usize> {
    let n = |at| le32(b, at).and_then(|v| usize::try_from(v).ok());
    Some(match t {
        0x01 | 0x09 | 0x11 | 0x12 => 8,   // double, datetime, timestamp, int64
        0x02 | 0x0d | 0x0e => 4 + n(at)?, // string, code, symbol
        0x03 | 0x04 => n(at)?,            // document, array
        0x05 => 5 + n(at)?,               // binary
        0x07 => 12,                       // ObjectId
        0x08 => 1,                        // bool
        0x0a | 0x06 | 0x7f | 0xff => 0,   // null, undefined, max/min key
        0x10 => 4,                        // int32
        0x13 => 16,                       // decimal128
        _ => return None,
    })
}

/// The top-level fields of the document at `at`: (name, type, value offset).
fn fields(b: &[u8], at: usize) -> impl Iterator<Item = (&[u8], u8, usize)> + '_ {
    let mut pos = at + 4;
    std::iter::from_fn(move || {
        let &t = b.get(pos)?;
        if t == 0 {
            return None;
        }
        let (name, value) = cstring(b, pos + 1)?;
        pos = value.checked_add(value_len(b, t, value)?)?;
        Some((name, t, value))
    })
}

/// Where the body's (first) document starts, for a request or a reply.
fn document_at(h: &Header) -> Option<usize> {
    match h.op {
        OP_MSG => Some(16 + 4 + 1), // flagBits, then a kind-0 section
        OP_REPLY => Some(16 + 20),  // flags, cursorID, startingFrom, numberReturned
        _ => None,
    }
}

/// Whether enough of a message of `size` bytes is here to parse it.
fn enough(b: &[u8], size: u64) -> bool {
    b.len() as u64 >= size.min(HEAD_WANTED)
}

fn framed<M>(msg: M, b: &[u8], size: u64) -> Parse<M> {
    let here = (b.len() as u64).min(size);
    Parse::Message(Framed { msg, len: here as usize, more: size - here, size })
}

pub(crate) fn parse_request(b: &[u8]) -> Parse<Request> {
    let h = match header(b) {
        Ok(Some(h)) if h.response_to == 0 && h.op != OP_REPLY && enough(b, h.length) => h,
        Ok(Some(h)) if h.response_to == 0 && h.op != OP_REPLY => return Parse::NeedMore,
        Ok(None) => return Parse::NeedMore,
        _ => return Parse::Invalid,
    };
    let doc = match h.op {
        // flags, the collection's full name, skip, return: then the query.
        OP_QUERY => cstring(b, 20).map(|(_, past)| past + 8),
        OP_MSG if b.get(20) != Some(&0) => None, // the first section is not the body
        _ => document_at(&h),
    };
    let command = doc
        .and_then(|at| fields(b, at).next())
        .map(|(name, _, _)| String::from_utf8_lossy(&name[..name.len().min(NAME_KEPT)]).into_owned());
    let size = h.length;
    framed(Request { op: op_name(h.op), command, request_id: h.request_id }, b, size)
}

pub(crate) fn parse_response(b: &[u8]) -> Parse<Response> {
    let h = match header(b) {
        Ok(Some(h)) if enough(b, h.length) => h,
        Ok(_) => return Parse::NeedMore,
        Err(()) => return Parse::Invalid,
    };
    let ok =
        document_at(&h).and_then(|at| fields(b, at).find(|(name, _, _)| *name == b"ok")).and_then(
            |(_, t, at)| match t {
                0x01 => b.get(at..at + 8).map(|v| f64::from_le_bytes(v.try_into().unwrap_or_default())),
                0x10 => le32(b, at).map(f64::from),
                0x08 => b.get(at).map(|&v| f64::from(v)),
                _ => None,
            },
        );
    let size = h.length;
    framed(Response { op: op_name(h.op), response_to: h.response_to, ok }, b, size)
}

/// Does `b` start with a request header: plausible length, a request
/// opcode, responseTo 0, and (when there) a document or section kind?
pub(crate) fn looks_like_request(b: &[u8]) -> bool {
    matches!(header(b), Ok(Some(h)) if h.response_to == 0 && h.op != OP_REPLY && h.length >= 21)
}
