//! What the command-line examples share: arguments as bytes (command names
//! need not be UTF-8). Stopping on a signal, and the rest of what they do,
//! lives in rs/cli/, shared with the `proctap` command.
#![allow(dead_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// The command line after the program name, as bytes-capable strings.
pub struct Args {
    rest: std::vec::IntoIter<OsString>,
    usage: &'static str,
}

impl Args {
    pub fn new(usage: &'static str) -> Args {
        let rest: Vec<OsString> = std::env::args_os().skip(1).collect();
        Args { rest: rest.into_iter(), usage }
    }

    /// The next option, as text (options are ASCII); an option that is not
    /// text is reported as unknown.
    pub fn next_option(&mut self) -> Option<Result<String, String>> {
        let arg = self.rest.next()?;
        Some(arg.into_string().map_err(|raw| format!("unknown option {raw:?}\n{}", self.usage)))
    }

    /// The value of option `name`, as bytes.
    pub fn value(&mut self, name: &str) -> Result<Vec<u8>, String> {
        self.rest.next().map(|v| v.as_bytes().to_vec()).ok_or_else(|| format!("{name} needs a value\n{}", self.usage))
    }

    pub fn number(&mut self, name: &str) -> Result<u32, String> {
        let v = self.value(name)?;
        std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{name}: not a number: {}", String::from_utf8_lossy(&v)))
    }

    /// Seconds, fractions allowed; 0 means stop at once.
    pub fn seconds(&mut self, name: &str) -> Result<Duration, String> {
        let v = self.value(name)?;
        std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| format!("{name}: not a number of seconds: {}", String::from_utf8_lossy(&v)))
    }
}
