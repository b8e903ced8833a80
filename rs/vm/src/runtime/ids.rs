//! Objects by id: listing the live maps and programs, and opening new fds
//! to them (what MAP_GET_NEXT_ID, MAP_GET_FD_BY_ID and their program
//! counterparts need).

use super::{Fd, Object, Runtime};
use crate::osutil::Os;
use crate::retcode::Errno;

impl<O: Os> Runtime<O> {
    /// The live map ids after `start` (`None`: from the first), lowest first.
    pub fn next_map_id(&self, start: Option<u32>) -> Option<u32> {
        let from = start.map_or(0, |s| s as usize + 1);
        (from..self.maps.len()).map(|i| i as u32).find(|id| self.map_alive(*id))
    }

    /// The live program ids after `start` (`None`: from the first), lowest first.
    pub fn next_prog_id(&self, start: Option<u32>) -> Option<u32> {
        let from = start.map_or(0, |s| s as usize + 1);
        (from..self.progs.len()).map(|i| i as u32).find(|id| self.prog_alive(*id))
    }

    /// MAP_GET_FD_BY_ID: a new fd naming map `id` (ENOENT if gone). A map
    /// put into [`Runtime::maps_mut`] directly has no references until
    /// then, and lives from then on as one created here.
    pub fn map_fd_by_id(&mut self, id: u32) -> Result<Fd, Errno> {
        if !self.map_alive(id) {
            return Err(Errno::ENOENT);
        }
        let r = self.map_refs.entry(id).or_default();
        r.all += 1;
        r.fds += 1;
        Ok(self.fds.open(Object::Map(id)))
    }

    /// PROG_GET_FD_BY_ID: a new fd naming program `id` (ENOENT if gone).
    pub fn prog_fd_by_id(&mut self, id: u32) -> Result<Fd, Errno> {
        if !self.prog_alive(id) {
            return Err(Errno::ENOENT);
        }
        self.prog_refs[id as usize].refs += 1;
        Ok(self.fds.open(Object::Prog(id)))
    }

    /// The ids of the maps program `id` uses.
    pub fn prog_map_ids(&self, id: u32) -> &[u32] {
        self.prog_refs.get(id as usize).map_or(&[], |r| &r.maps[..])
    }
}
