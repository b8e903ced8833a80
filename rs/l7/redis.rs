//! Redis' RESP2 and RESP3: commands (arrays of bulk strings, or inline
//! lines) and replies, parsed by hand: the grammar is a dozen lines, and
//! the parser must take bytes a capture cap may have cut.

use super::{Framed, Parse};

/// Nesting and element limits: deeper or longer values are not parsed.
const DEPTH_MAX: usize = 8;
const ELEMENTS_MAX: i64 = 1 << 20;
/// Command arguments kept per request (the rest are counted, not kept).
const ARGS_KEPT: usize = 16;
/// Bytes kept of each argument or value.
const TEXT_KEPT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    pub command: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    /// "string", "error", "integer", "bulk", "array", "null", "map", "set",
    /// "bool", "double", "bignum", "verbatim", "push", "attribute".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short form: the text of strings, errors and numbers, the element
    /// count of aggregates, null for null.
    pub value: Value,
}

/// A reply's short form; in JSON a string, a number, a boolean or null.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer reply, or the element count of an aggregate.
    Integer(i64),
    /// Strings, errors, doubles and big numbers, as their text.
    Text(String),
}

impl Value {
    /// The text of a string, error or number reply.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_string())
    }
}

/// Does this look like the start of a RESP command, `*N\r\n$M\r\n` (an
/// array of bulk strings), as far as the bytes go?
pub(crate) fn looks_like_request(b: &[u8]) -> bool {
    // The pattern, with D for one or more digits.
    const PATTERN: &[u8] = b"*D\r\n$D\r";
    let (mut at, mut digits) = (0, 0);
    for &c in b.iter().take(24) {
        let Some(&want) = PATTERN.get(at) else { return true };
        if want == b'D' && c.is_ascii_digit() && digits < 10 {
            digits += 1;
        } else if want == b'D' && digits > 0 && PATTERN.get(at + 1) == Some(&c) {
            at += 2;
            digits = 0;
        } else if want != b'D' && c == want {
            at += 1;
        } else {
            return false;
        }
    }
    !b.is_empty()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(TEXT_KEPT)]).into_owned()
}

/// The line at the start of `b` (without CRLF) and the bytes it takes.
fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let i = memchr::memmem::find(b, b"\r\n")?;
    Some((&b[..i], i + 2))
}

fn number(b: &[u8]) -> Result<i64, ()> {
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or(())
}

/// One value: its short form and the bytes it takes; Ok(None): more needed.
fn value(b: &[u8], depth: usize) -> Result<Option<(Response, usize)>, ()> {
    if depth > DEPTH_MAX {
        return Err(());
    }
    let Some((head, used)) = line(b) else { return Ok(None) };
    let (&t, rest) = head.split_first().ok_or(())?;
    let simple = |kind: &'static str, v: Value| Ok(Some((Response { kind, value: v }, used)));
    match t {
        b'+' => simple("string", text(rest).into()),
        b'-' => simple("error", text(rest).into()),
        b':' => simple("integer", Value::Integer(number(rest)?)),
        b'_' => simple("null", Value::Null),
        b'#' => simple("bool", Value::Bool(rest == b"t")),
        b',' => simple("double", text(rest).into()),
        b'(' => simple("bignum", text(rest).into()),
        b'$' | b'!' | b'=' => {
            let n = number(rest)?;
            let kind = match t {
                b'$' => "bulk",
                b'!' => "error",
                _ => "verbatim",
            };
            if n < 0 {
                return simple("null", Value::Null);
            }
            let end = used.checked_add(usize::try_from(n).map_err(|_| ())?).ok_or(())?;
            if b.len() < end + 2 {
                return Ok(None);
            }
            if &b[end..end + 2] != b"\r\n" {
                return Err(());
            }
            Ok(Some((Response { kind, value: text(&b[used..end]).into() }, end + 2)))
        }
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            let n = number(rest)?;
            if n < 0 {
                return simple("null", Value::Null);
            }
            if n > ELEMENTS_MAX {
                return Err(());
            }
            let kind = match t {
                b'*' => "array",
                b'%' => "map",
                b'~' => "set",
                b'>' => "push",
                _ => "attribute",
            };
            let items = if t == b'%' || t == b'|' { n * 2 } else { n };
            let mut at = used;
            for _ in 0..items {
                match value(&b[at..], depth + 1)? {
                    Some((_, n)) => at += n,
                    None => return Ok(None),
                }
            }
            Ok(Some((Response { kind, value: Value::Integer(n) }, at)))
        }
        _ => Err(()),
    }
}

pub(crate) fn parse_request(b: &[u8]) -> Parse<Request> {
    if b.first() != Some(&b'*') {
        // An inline command: one line of words.
        let Some((head, used)) = line(b) else { return Parse::NeedMore };
        if head.is_empty() || !head.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            return Parse::Invalid;
        }
        let command = head.split(|c| *c == b' ').filter(|w| !w.is_empty()).take(ARGS_KEPT).map(text).collect();
        return Parse::Message(Framed { msg: Request { command }, len: used, more: 0, size: used as u64 });
    }
    let Some((head, mut at)) = line(b) else { return Parse::NeedMore };
    let Ok(n) = number(&head[1..]) else { return Parse::Invalid };
    if !(1..=ELEMENTS_MAX).contains(&n) {
        return Parse::Invalid;
    }
    let mut command = Vec::new();
    for _ in 0..n {
        if b.get(at) != Some(&b'$') && at < b.len() {
            return Parse::Invalid;
        }
        match value(&b[at..], 1) {
            Ok(Some((arg, used))) => {
                if command.len() < ARGS_KEPT {
                    command.push(arg.value.as_str().unwrap_or_default().to_string());
                }
                at += used;
            }
            Ok(None) => return Parse::NeedMore,
            Err(()) => return Parse::Invalid,
        }
    }
    Parse::Message(Framed { msg: Request { command }, len: at, more: 0, size: at as u64 })
}

pub(crate) fn parse_response(b: &[u8]) -> Parse<Response> {
    match value(b, 0) {
        Ok(Some((msg, used))) => Parse::Message(Framed { msg, len: used, more: 0, size: used as u64 }),
        Ok(None) => Parse::NeedMore,
        Err(()) => Parse::Invalid,
    }
}
