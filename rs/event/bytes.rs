//! Byte strings as events carry them: command names, argv, and their JSON
//! form (a string when the bytes are valid UTF-8, else `{"hex": "..."}`).

use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A task's command name (up to 15 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Comm([u8; 16]);

impl Comm {
    pub fn new(bytes: &[u8]) -> Comm {
        let mut comm = [0u8; 16];
        let n = bytes.len().min(15);
        comm[..n].copy_from_slice(&bytes[..n]);
        Comm(comm)
    }

    /// The name without its NUL padding.
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }

    pub(crate) fn from_raw(raw: [u8; 16]) -> Comm {
        Comm(raw)
    }

    pub(crate) fn raw(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl Serialize for Comm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ByteStr(self.as_bytes()).serialize(s)
    }
}

/// The NUL-separated argv of an exec, as captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Argv<B = Vec<u8>>(pub B);

impl<B: AsRef<[u8]>> Argv<B> {
    /// The raw argv area: arguments each followed by a NUL (the last one may
    /// lack its NUL when truncated).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// The arguments, without their NULs.
    pub fn iter(&self) -> Args<'_> {
        Args { rest: self.0.as_ref() }
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_empty()
    }
}

/// Iterator over the arguments of an [`Argv`].
#[derive(Clone, Debug)]
pub struct Args<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(0, self.rest).unwrap_or(self.rest.len());
        let arg = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
        Some(arg)
    }
}

impl<B: AsRef<[u8]>> Serialize for Argv<B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for arg in self.iter() {
            seq.serialize_element(&ByteStr(arg))?;
        }
        seq.end()
    }
}

/// Serializes bytes as a string when valid UTF-8, else as {"hex": "..."}.
pub(crate) struct ByteStr<'a>(pub &'a [u8]);

impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("hex", &Hex(self.0))?;
                map.end()
            }
        }
    }
}

/// Lowercase hex digits of bytes.
pub(crate) struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
