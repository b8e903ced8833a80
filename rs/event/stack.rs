//! Stacks of a sample: kernel and user return addresses, user frames to
//! symbolize (build id and file offset, or a raw address), and why a walk
//! failed.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::bytes::Hex;

/// Defines a list of return addresses as the kernel writes it: 8 bytes
/// each, native endian, innermost first.
macro_rules! addresses {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name<B = Vec<u8>>(pub B);

        impl<B: AsRef<[u8]>> $name<B> {
            /// The addresses, innermost first.
            pub fn iter(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
                self.0.as_ref().chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
            }

            pub fn len(&self) -> usize {
                self.0.as_ref().len() / 8
            }

            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }

        impl<B: AsRef<[u8]>> Serialize for $name<B> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.iter().map(|ip| format!("{ip:#x}")))
            }
        }
    };
}

addresses! {
    /// Kernel return addresses of a sample.
    KernelStack
}

addresses! {
    /// User return addresses of a sample, from the kernel's frame-pointer
    /// walk: raw virtual addresses of the sampled process, which
    /// [`Symbolizer`](crate::profile::Symbolizer) maps to files with its
    /// mappings.
    UserStack
}

/// One user frame to symbolize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserFrame {
    /// An offset in the ELF file with this build id: symbolizes without the
    /// process.
    FileOffset { build_id: BuildId, file_offset: u64 },
    /// A raw virtual address, meaningful only with the process' mappings.
    Address(u64),
}

impl Serialize for UserFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        match self {
            UserFrame::FileOffset { build_id, file_offset } => {
                map.serialize_entry("build_id", &Hex(build_id.unpadded()))?;
                map.serialize_entry("offset", &format!("{file_offset:#x}"))?;
            }
            UserFrame::Address(ip) => map.serialize_entry("ip", &format!("{ip:#x}"))?,
        }
        map.end()
    }
}

/// A GNU build id as the kernel reports it: up to 20 bytes, zero-padded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BuildId(pub [u8; 20]);

impl BuildId {
    /// Pads a build id read from an ELF note the way the kernel does
    /// (ids longer than 20 bytes are cut, as the kernel cuts them).
    pub fn from_note(bytes: &[u8]) -> BuildId {
        let mut id = [0u8; 20];
        let n = bytes.len().min(20);
        id[..n].copy_from_slice(&bytes[..n]);
        BuildId(id)
    }

    /// The padded bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The id without the kernel's padding: the 16- and 8-byte ids some
    /// linkers make (a UUID or a hash) come back zero-padded to 20, so a
    /// zero tail of 4 or 12 bytes is taken for padding (a 20-byte SHA-1
    /// ending in 4 zero bytes is a 1 in 2^32 chance).
    pub fn unpadded(&self) -> &[u8] {
        let len = [8, 16].into_iter().find(|&n| self.0[n..].iter().all(|&b| b == 0)).unwrap_or(20);
        &self.0[..len]
    }
}

impl fmt::Debug for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuildId({self})")
    }
}

/// Lowercase hex of the bytes, unpadded (as `readelf -n` shows them).
impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Hex(self.unpadded()).fmt(f)
    }
}

/// An error the kernel reported as a negative errno (for a stack: what
/// `bpf_get_stack` returned, for example `EFAULT`, user memory not readable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Errno {
    /// The errno, positive.
    pub errno: i32,
}

impl Errno {
    /// The error of a raw value: None for 0, else the negated value.
    pub(crate) fn from_raw(raw: i32) -> Option<Errno> {
        (raw != 0).then(|| Errno { errno: raw.saturating_neg() })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        std::io::Error::from_raw_os_error(self.errno).fmt(f)
    }
}
