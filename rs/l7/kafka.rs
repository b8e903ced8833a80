//! Kafka's wire protocol: every message is a 4-byte size then its body; a
//! request's header names its API, version, correlation id and client, a
//! response's only the correlation id, by which the two pair. Parsed by
//! hand: the headers are a few fixed fields, and the bodies (hundreds of
//! API versions) are not needed for the record. A message larger than
//! what is captured is still framed by its size.

use super::{Framed, Parse};

/// The largest message taken for Kafka (the broker's default
/// socket.request.max.bytes is 100 MiB).
const MESSAGE_MAX: u64 = 100 << 20;
/// The highest API key known (ApiKeys in Kafka 3.x/4.x stay below it).
const API_KEY_MAX: i16 = 100;
const CLIENT_ID_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    pub correlation_id: i32,
}

fn be16(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The whole message's size (with its size field), if plausible.
fn message_size(b: &[u8]) -> Result<Option<u64>, ()> {
    let Some(size) = be32(b, 0) else { return Ok(None) };
    match u64::try_from(size) {
        Ok(s) if (4..=MESSAGE_MAX).contains(&s) => Ok(Some(s + 4)),
        _ => Err(()),
    }
}

/// A message of `size` bytes whose head is in `b`: what of it is here,
/// and what is still to come.
fn framed<M>(msg: M, b: &[u8], size: u64) -> Parse<M> {
    let here = (b.len() as u64).min(size);
    Parse::Message(Framed { msg, len: here as usize, more: size - here, size })
}

/// The request header at the start of `b`, or why not.
fn request_head(b: &[u8]) -> Result<Option<Request>, ()> {
    let (Some(api_key), Some(api_version), Some(correlation_id), Some(id_len)) =
        (be16(b, 4), be16(b, 6), be32(b, 8), be16(b, 12))
    else {
        return Ok(None);
    };
    if !(0..=API_KEY_MAX).contains(&api_key) || !(0..=100).contains(&api_version) || correlation_id < 0 {
        return Err(());
    }
    let client_id = match usize::try_from(id_len) {
        Err(_) if id_len == -1 => None,
        Ok(n) if n <= CLIENT_ID_MAX => {
            let Some(text) = b.get(14..14 + n) else { return Ok(None) };
            if !text.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
                return Err(());
            }
            Some(String::from_utf8_lossy(text).into_owned())
        }
        _ => return Err(()),
    };
    Ok(Some(Request { api_key, api_version, correlation_id, client_id }))
}

pub(crate) fn parse_request(b: &[u8]) -> Parse<Request> {
    match (message_size(b), request_head(b)) {
        (Err(()), _) | (_, Err(())) => Parse::Invalid,
        (Ok(Some(size)), Ok(Some(r))) => framed(r, b, size),
        _ => Parse::NeedMore,
    }
}

pub(crate) fn parse_response(b: &[u8]) -> Parse<Response> {
    match (message_size(b), be32(b, 4)) {
        (Err(()), _) => Parse::Invalid,
        (Ok(Some(size)), Some(correlation_id)) if size >= 8 => framed(Response { correlation_id }, b, size),
        (Ok(Some(_)), Some(_)) => Parse::Invalid,
        _ => Parse::NeedMore,
    }
}

/// Does `b` start with a plausible request header (size, known API key,
/// version, non-negative correlation id, a printable client id)?
pub(crate) fn looks_like_request(b: &[u8]) -> bool {
    matches!((message_size(b), request_head(b)), (Ok(Some(size)), Ok(Some(_))) if size >= 14)
}
