//! The file descriptor table: small integers naming maps, programs and
//! links, handed out lowest free first as Linux does.

use crate::retcode::Errno;
use alloc::vec::Vec;

/// A file descriptor as `bpf(2)` hands it out.
pub type Fd = u32;

/// What a file descriptor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A map, by map id.
    Map(u32),
    /// A program, by program id.
    Prog(u32),
    /// A link (an attachment), by link id.
    Link(u32),
}

/// The table: slot `i` is fd `first + i`.
#[derive(Debug, Clone)]
pub struct FdTable {
    first: Fd,
    slots: Vec<Option<Object>>,
}

impl FdTable {
    /// A table whose fds start at `first` (3 leaves room for stdio, as in
    /// a process).
    pub fn new(first: Fd) -> Self {
        FdTable { first, slots: Vec::new() }
    }

    /// The lowest free fd, now naming `obj`.
    pub fn open(&mut self, obj: Object) -> Fd {
        let i = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.slots[i] = Some(obj);
        self.first + i as Fd
    }

    /// What `fd` names; EBADF when nothing.
    pub fn get(&self, fd: Fd) -> Result<Object, Errno> {
        fd.checked_sub(self.first).and_then(|i| self.slots.get(i as usize).copied().flatten()).ok_or(Errno::EBADF)
    }

    /// Frees `fd`; what it named, or EBADF.
    pub fn close(&mut self, fd: Fd) -> Result<Object, Errno> {
        let i = fd.checked_sub(self.first).ok_or(Errno::EBADF)? as usize;
        let obj = self.slots.get_mut(i).and_then(Option::take).ok_or(Errno::EBADF)?;
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        Ok(obj)
    }

    /// Open fds, lowest first, with what they name.
    pub fn iter(&self) -> impl Iterator<Item = (Fd, Object)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, o)| o.map(|o| (self.first + i as Fd, o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_fd_first() {
        let mut t = FdTable::new(3);
        assert_eq!(t.open(Object::Map(0)), 3);
        assert_eq!(t.open(Object::Prog(0)), 4);
        assert_eq!(t.open(Object::Link(0)), 5);
        assert_eq!(t.close(4), Ok(Object::Prog(0)));
        assert_eq!(t.get(4), Err(Errno::EBADF));
        assert_eq!(t.close(4), Err(Errno::EBADF));
        assert_eq!(t.get(2), Err(Errno::EBADF));
        assert_eq!(t.open(Object::Map(1)), 4);
        assert_eq!(t.iter().count(), 3);
    }
}
