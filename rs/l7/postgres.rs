//! PostgreSQL's wire protocol (v3): typed messages (a type byte, then a
//! 4-byte length that counts itself), the startup messages untyped. A
//! request is a simple Query, an extended-protocol run up to its Sync
//! (Parse, Bind, Describe, Execute, Sync: the query is Parse's), or the
//! startup; its response is every backend message up to ReadyForQuery.
//! Parsed by hand: the framing is two fields, and the few message bodies
//! read (the query, the error's message, the command tag) are strings.

use super::{Framed, Parse, Partial};

/// The largest message taken (the server's own limit is 1 GiB; queries
/// longer than this are framed as unparsable).
const MESSAGE_MAX: usize = 64 << 20;
/// Bytes kept of a query or an error message.
const TEXT_KEPT: usize = 1024;
const PROTOCOL_3: i32 = 196_608;
const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    /// The SQL, or "startup", "ssl" (an SSL or GSS encryption request).
    pub query: String,
    #[serde(skip)]
    pub(crate) expects: Reply,
}

/// What answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Messages up to ReadyForQuery.
    Messages,
    /// One byte, S or N (encryption requests).
    Byte,
    /// Nothing (Terminate).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    /// "ok" or "error".
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows returned (DataRow messages), when any were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

fn be32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A typed message: its type, its body, the bytes it takes.
type Message<'a> = (u8, &'a [u8], usize);

/// The typed message at `at`. Ok(None): incomplete; Err: not a message.
fn message(b: &[u8], at: usize) -> Result<Option<Message<'_>>, ()> {
    let Some(&t) = b.get(at) else { return Ok(None) };
    let Some(len) = be32(b, at + 1) else { return Ok(None) };
    let len = usize::try_from(len).map_err(|_| ())?;
    if !(4..=MESSAGE_MAX).contains(&len) || !t.is_ascii_alphanumeric() {
        return Err(());
    }
    match b.get(at + 5..at + 1 + len) {
        Some(body) => Ok(Some((t, body, 1 + len))),
        None => Ok(None),
    }
}

fn cstring(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end.min(TEXT_KEPT)]).into_owned()
}

/// The untyped startup message at the start of `b`, if it is one.
fn startup(b: &[u8]) -> Result<Option<(Request, usize)>, ()> {
    let (Some(len), Some(code)) = (be32(b, 0), be32(b, 4)) else { return Ok(None) };
    let (query, expects) = match code {
        PROTOCOL_3 => ("startup", Reply::Messages),
        SSL_REQUEST | GSSENC_REQUEST if len == 8 => ("ssl", Reply::Byte),
        _ => return Err(()),
    };
    let len = usize::try_from(len).map_err(|_| ())?;
    if !(8..=10_000).contains(&len) {
        return Err(());
    }
    Ok((b.len() >= len).then(|| (Request { query: query.into(), expects }, len)))
}

pub(crate) fn parse_request(b: &[u8]) -> Parse<Request> {
    if b.first() == Some(&0) {
        return match startup(b) {
            Ok(Some((r, len))) => Parse::Message(Framed { msg: r, len, more: 0, size: len as u64 }),
            Ok(None) => Parse::NeedMore,
            Err(()) => Parse::Invalid,
        };
    }
    // Messages up to one that ends a request: Query, Sync, Terminate.
    let (mut at, mut query) = (0, None);
    loop {
        let (t, body, used) = match message(b, at) {
            Ok(Some(m)) => m,
            Ok(None) => return Parse::NeedMore,
            Err(()) => return Parse::Invalid,
        };
        at += used;
        let expects = match t {
            b'Q' => Some(Reply::Messages),
            b'S' => Some(Reply::Messages),
            b'X' => Some(Reply::None),
            // Parse: a statement name, then the query.
            b'P' => {
                let name_end = body.iter().position(|&c| c == 0).unwrap_or(body.len());
                query.get_or_insert_with(|| cstring(body.get(name_end + 1..).unwrap_or_default()));
                None
            }
            b'B' | b'D' | b'E' | b'C' | b'H' | b'F' | b'd' | b'c' | b'f' | b'p' => None,
            _ => return Parse::Invalid,
        };
        if let Some(expects) = expects {
            let query = match t {
                b'Q' => cstring(body),
                b'X' => "terminate".into(),
                _ => query.unwrap_or_else(|| "(prepared)".into()),
            };
            return Parse::Message(Framed { msg: Request { query, expects }, len: at, more: 0, size: at as u64 });
        }
    }
}

/// The response to a request expecting `expects`.
/// The response at the start of `b` (after the steps in `partial`):
/// whole messages are taken in steps as they come, and a DataRow longer
/// than the bytes here is passed over, so a result set of any size pairs.
pub(crate) fn parse_response(b: &[u8], expects: Reply, partial: &mut Partial) -> Parse<Response> {
    if expects == Reply::Byte {
        return match b.first() {
            Some(b'S' | b'N' | b'G') => Parse::Message(Framed {
                msg: Response { status: "ok", error: None, rows: None },
                len: 1,
                more: 0,
                size: 1,
            }),
            Some(_) => Parse::Invalid,
            None => Parse::NeedMore,
        };
    }
    let mut at = 0;
    loop {
        let (t, body, used) = match message(b, at) {
            Ok(Some(m)) => m,
            Ok(None) => return step(b, at, partial),
            Err(()) => return Parse::Invalid,
        };
        at += used;
        match t {
            b'D' => *partial.rows.get_or_insert(0) += 1,
            // ErrorResponse: fields (a code byte, a string); M is the message.
            b'E' => {
                let mut fields = body.split(|&c| c == 0).filter(|f| !f.is_empty());
                partial.error = fields.find(|f| f[0] == b'M').map(|f| cstring(&f[1..])).or(Some(String::new()));
            }
            b'Z' => {
                let error = partial.error.take();
                let status = if error.is_some() { "error" } else { "ok" };
                return Parse::Message(Framed {
                    msg: Response { status, error, rows: partial.rows.take() },
                    len: at,
                    more: 0,
                    size: partial.passed + at as u64,
                });
            }
            _ => {}
        }
    }
}

/// The whole messages before `at` are taken; the one at `at` is not all
/// here. A DataRow whose head is here is passed over whole (its columns are
/// not read); any other is waited for.
fn step(b: &[u8], at: usize, partial: &mut Partial) -> Parse<Response> {
    if let (Some(b'D'), Some(len)) = (b.get(at), be32(b, at + 1)) {
        let whole = 1 + len as u64;
        if (5..=MESSAGE_MAX as u64).contains(&whole) {
            *partial.rows.get_or_insert(0) += 1;
            let here = (b.len() - at) as u64;
            return Parse::Progress { len: b.len(), more: whole - here };
        }
        return Parse::Invalid;
    }
    if at > 0 {
        Parse::Progress { len: at, more: 0 }
    } else {
        Parse::NeedMore
    }
}

/// Does `b` start like a client's first bytes: a startup or encryption
/// request, or a simple Query?
pub(crate) fn looks_like_request(b: &[u8]) -> bool {
    match b.first() {
        Some(0) => matches!(startup(b), Ok(Some(_))),
        Some(b'Q') => matches!(message(b, 0), Ok(Some((_, body, _))) if body.last() == Some(&0)),
        _ => false,
    }
}
