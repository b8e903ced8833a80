//! CPU profiles from stack samples: symbolization and outputs.
//!
//! ```no_run
//! use proctap::profile::{Profile, Symbolizer};
//! # fn samples() -> Vec<proctap::StackSample> { Vec::new() }
//! let mut symbolizer = Symbolizer::new();
//! let mut profile = Profile::new(99);
//! // While the profiled process runs (e.g. on its Trigger event), index its files
//! // so its frames symbolize even after it exited:
//! symbolizer.learn_process(1234)?;
//! for sample in samples() {
//!     profile.add(&sample, &mut symbolizer);
//! }
//! profile.write_folded(&mut std::fs::File::create("out.folded")?)?;
//! profile.write_flamegraph(&mut std::fs::File::create("out.svg")?)?;
//! profile.write_pprof(&mut std::fs::File::create("out.pb.gz")?)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! * [`BuildIdIndex`](crate::profile::BuildIdIndex) maps GNU build ids to ELF files on disk; it is fed
//!   from `/proc/PID/maps` while processes run.
//! * [`Symbolizer`](crate::profile::Symbolizer) (blazesym underneath) turns kernel addresses and
//!   `(build id, file offset)` user frames into [`Location`](crate::profile::Location)s: function,
//!   file and line, inlined functions, module. Stripped binaries resolve
//!   through debug files found by build id (`/usr/lib/debug/.build-id/...`),
//!   else through the debuginfod servers in `DEBUGINFOD_URLS` ([`Debuginfod`](crate::profile::Debuginfod),
//!   with an on-disk cache).
//! * [`Profile`](crate::profile::Profile) counts samples per stack and writes folded stacks, a
//!   flamegraph SVG (inferno) and a gzipped pprof `profile.proto`.

mod aggregate;
pub mod capture;
pub mod debuginfod;
mod elf;
mod errors;
mod index;
mod intern;
mod maps;
mod pprof;
pub mod proto;
pub mod psi;
mod symbolize;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_debuginfod;
#[cfg(test)]
mod tests_maps;
#[cfg(test)]
mod tests_output;
mod unwind;

pub use aggregate::Profile;
pub use debuginfod::{Debuginfod, DebuginfodError};
pub use errors::{SampleErrors, StackError, UnwindStop};
pub use index::BuildIdIndex;
pub use symbolize::{Frame, Location, Symbolizer};
