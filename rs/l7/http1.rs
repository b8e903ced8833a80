//! HTTP/1.x messages: heads by httparse, bodies framed by Content-Length,
//! chunked transfer coding, or the connection's end.

use super::{Framed, Parse};

/// Headers read per message at most (more: the message is not parsed).
const HEADERS_MAX: usize = 64;

/// A request as the record shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    pub method: String,
    /// The request target as sent, query included.
    pub path: String,
    pub host: Option<String>,
}

/// A response as the record shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    pub status: u16,
}

/// Does this look like the start of an HTTP/1 request?
pub(crate) fn looks_like_request(b: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] =
        [b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE "];
    METHODS.iter().any(|m| b.starts_with(m) || (b.len() < m.len() && m.starts_with(b) && !b.is_empty()))
}

/// How a body ends.
enum Body {
    Length(u64),
    Chunked,
    /// Until the connection closes.
    UntilClose,
}

fn body_of(headers: &[httparse::Header], default: Body) -> Result<Body, ()> {
    let mut body = default;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if v.split(',').any(|c| c.trim() == "chunked") {
                return Ok(Body::Chunked);
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok()).ok_or(())?;
            body = Body::Length(n);
        }
    }
    Ok(body)
}

/// The end of a chunked body starting at `b[0]`: Some(bytes) when all of it
/// is here, None when more is needed, Err when it is not chunked coding.
fn chunked_len(b: &[u8]) -> Result<Option<usize>, ()> {
    let mut at = 0usize;
    loop {
        match httparse::parse_chunk_size(&b[at..]) {
            Ok(httparse::Status::Complete((used, size))) => {
                at += used;
                if size == 0 {
                    // Trailers (ignored) end with an empty line.
                    let rest = &b[at..];
                    if rest.starts_with(b"\r\n") {
                        return Ok(Some(at + 2));
                    }
                    return Ok(memchr::memmem::find(rest, b"\r\n\r\n").map(|i| at + i + 4));
                }
                let size = usize::try_from(size).map_err(|_| ())?;
                let end = at.checked_add(size).and_then(|e| e.checked_add(2)).ok_or(())?;
                if end > b.len() {
                    return Ok(None);
                }
                if &b[end - 2..end] != b"\r\n" {
                    return Err(());
                }
                at = end;
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(()),
        }
    }
}

/// The message's framing, once its head (head_len bytes) is parsed.
fn framed<M>(msg: M, b: &[u8], head_len: usize, body: Body) -> Parse<M> {
    let here = b.len() as u64;
    match body {
        Body::Length(n) => {
            let total = head_len as u64 + n;
            let len = total.min(here) as usize;
            Parse::Message(Framed { msg, len, more: total - len as u64, size: total })
        }
        Body::Chunked => match chunked_len(&b[head_len..]) {
            Ok(Some(n)) => Parse::Message(Framed { msg, len: head_len + n, more: 0, size: (head_len + n) as u64 }),
            Ok(None) => Parse::NeedMore,
            Err(()) => Parse::Invalid,
        },
        Body::UntilClose => Parse::Message(Framed { msg, len: b.len(), more: u64::MAX, size: here }),
    }
}

pub(crate) fn parse_request(b: &[u8]) -> Parse<Request> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(b) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parse::NeedMore,
        Err(_) => return Parse::Invalid,
    };
    let host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned());
    let msg = Request {
        method: req.method.unwrap_or_default().to_string(),
        path: req.path.unwrap_or_default().to_string(),
        host,
    };
    match body_of(req.headers, Body::Length(0)) {
        Ok(body) => framed(msg, b, head_len, body),
        Err(()) => Parse::Invalid,
    }
}

/// A response to a request of `method` (HEAD responses have no body).
pub(crate) fn parse_response(b: &[u8], method: Option<&str>) -> Parse<Response> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(b) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parse::NeedMore,
        Err(_) => return Parse::Invalid,
    };
    let status = res.code.unwrap_or(0);
    let msg = Response { status };
    if method == Some("HEAD") || (100..200).contains(&status) || status == 204 || status == 304 {
        return framed(msg, b, head_len, Body::Length(0));
    }
    match body_of(res.headers, Body::UntilClose) {
        Ok(body) => framed(msg, b, head_len, body),
        Err(()) => Parse::Invalid,
    }
}
