//! bpf_trace_printk: the printf subset the kernel accepts, written to the
//! OS console.
//!
//! Conversions: `%d %i %u %x %X %c %s %p %px %pK %%`, with the length
//! modifiers `l` and `ll` (all arguments are 64-bit registers; without a
//! modifier the value is its low 32 bits, as the kernel's `%d` prints an
//! int), the flags `0 - + space`, and a width. `%s` reads a string through
//! probe_read_kernel_str (at most [`MAX_STR`] bytes); `%p` prints the
//! value as `0x` and lowercase hex (no pointer hashing). At most three
//! arguments; anything else (a precision, `%h`, `%n`, ...) makes the helper
//! return -EINVAL, as Linux's.

use super::err;
use super::probe::{fetch_str, Source};
use crate::program::{memory, Env};
use crate::retcode::{Errno, Fault};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Longest string a `%s` prints.
pub const MAX_STR: usize = 256;

/// bpf_trace_printk(fmt, fmt_size, a1, a2, a3).
pub fn trace_printk(env: &mut Env, pc: usize, fmt: u64, fmt_size: u64, args: [u64; 3]) -> Result<u64, Fault> {
    let Ok(len) = usize::try_from(fmt_size) else { return Ok(err(Errno::EINVAL)) };
    if len == 0 {
        return Ok(err(Errno::EINVAL));
    }
    let fmt = memory::bytes(env, pc, fmt, len)?.to_vec();
    let Some(end) = fmt.iter().position(|&b| b == 0) else { return Ok(err(Errno::EINVAL)) };
    let read_str = |addr: u64| fetch_str(env, addr, MAX_STR, Source::Kernel);
    match format(&fmt[..end], &args, read_str) {
        Some(text) => {
            env.os.console(text.strip_suffix('\n').unwrap_or(&text));
            Ok(text.len() as u64)
        }
        None => Ok(err(Errno::EINVAL)),
    }
}

/// One conversion's flags and width.
#[derive(Default, Clone, Copy)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
    wide: bool,
}

/// Formats `fmt` with `args`; `None` when the format is one the kernel
/// refuses (an unknown conversion, more than three arguments).
pub fn format(fmt: &[u8], args: &[u64; 3], read_str: impl Fn(u64) -> Option<Vec<u8>>) -> Option<String> {
    let mut out = String::new();
    let mut next_arg = args.iter();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c as char);
            continue;
        }
        if fmt.get(i) == Some(&b'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let (spec, conv, used) = parse_spec(&fmt[i..])?;
        i += used;
        let value = *next_arg.next()?;
        let body = convert(conv, spec, value, &read_str)?;
        pad(&mut out, &body, spec, matches!(conv, b'd' | b'i' | b'u' | b'x' | b'X'));
    }
    Some(out)
}

/// Parses flags, width and length after a `%`: the spec, the conversion
/// character and the bytes used.
fn parse_spec(s: &[u8]) -> Option<(Spec, u8, usize)> {
    let mut spec = Spec::default();
    let mut i = 0;
    while let Some(&f) = s.get(i) {
        match f {
            b'-' => spec.left = true,
            b'0' => spec.zero = true,
            b'+' => spec.plus = true,
            b' ' => spec.space = true,
            _ => break,
        }
        i += 1;
    }
    while let Some(d) = s.get(i).filter(|c| c.is_ascii_digit()) {
        spec.width = (spec.width * 10 + (d - b'0') as usize).min(64);
        i += 1;
    }
    for _ in 0..2 {
        if s.get(i) == Some(&b'l') {
            spec.wide = true;
            i += 1;
        }
    }
    let conv = *s.get(i)?;
    // %px and %pK print as %p.
    let extra = usize::from(conv == b'p' && matches!(s.get(i + 1), Some(b'x' | b'K')));
    Some((spec, conv, i + 1 + extra))
}

/// The text of one conversion, before padding.
fn convert(conv: u8, spec: Spec, value: u64, read_str: &impl Fn(u64) -> Option<Vec<u8>>) -> Option<String> {
    let mut s = String::new();
    let narrow = !spec.wide;
    let _ = match conv {
        b'd' | b'i' => {
            let v = if narrow { value as i32 as i64 } else { value as i64 };
            let sign = if v < 0 {
                ""
            } else if spec.plus {
                "+"
            } else if spec.space {
                " "
            } else {
                ""
            };
            write!(s, "{sign}{v}")
        }
        b'u' if narrow => write!(s, "{}", value as u32),
        b'u' => write!(s, "{value}"),
        b'x' if narrow => write!(s, "{:x}", value as u32),
        b'x' => write!(s, "{value:x}"),
        b'X' if narrow => write!(s, "{:X}", value as u32),
        b'X' => write!(s, "{value:X}"),
        b'c' if narrow => write!(s, "{}", value as u8 as char),
        b'p' => write!(s, "{value:#x}"),
        b's' if narrow => {
            let bytes = read_str(value).unwrap_or_else(|| b"(fault)".to_vec());
            s.extend(bytes.iter().map(|&b| b as char));
            Ok(())
        }
        _ => return None,
    };
    Some(s)
}

/// Appends `body` padded to the spec's width (zeros after the sign for
/// numbers with the `0` flag, spaces otherwise).
fn pad(out: &mut String, body: &str, spec: Spec, numeric: bool) {
    let fill = spec.width.saturating_sub(body.chars().count());
    if spec.left {
        out.push_str(body);
        out.extend(core::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        let signed = body.starts_with(['-', '+', ' ']);
        let (sign, digits) = if signed { body.split_at(1) } else { ("", body) };
        out.push_str(sign);
        out.extend(core::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(core::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(f: &str, args: [u64; 3]) -> Option<String> {
        format(f.as_bytes(), &args, |addr| (addr == 0x10).then(|| b"str".to_vec()))
    }

    #[test]
    fn integers_in_every_width_and_base() {
        assert_eq!(fmt("%d %i %u", [u64::MAX, 0xffff_fffe, u64::MAX]).unwrap(), "-1 -2 4294967295");
        assert_eq!(fmt("%ld %lu %llx", [u64::MAX, u64::MAX, 0xabc]).unwrap(), "-1 18446744073709551615 abc");
        assert_eq!(fmt("%x %X %lX", [0x1_dead_beef, 0xbeef, 0xab_cdef_0123]).unwrap(), "deadbeef BEEF ABCDEF0123");
    }

    #[test]
    fn flags_and_widths() {
        assert_eq!(fmt("[%5d][%-5d][%05d]", [42, 42, (-42i64) as u64]).unwrap(), "[   42][42   ][-0042]");
        assert_eq!(fmt("[%+d][% d][%+d]", [5, 5, (-5i64) as u64]).unwrap(), "[+5][ 5][-5]");
        assert_eq!(fmt("[%08x][%3s][%-4c]", [0xbeef, 0x10, b'z' as u64]).unwrap(), "[0000beef][str][z   ]");
        assert_eq!(fmt("[%2d]", [12345, 0, 0]).unwrap(), "[12345]", "a width never truncates");
    }

    #[test]
    fn pointers_strings_and_percent() {
        assert_eq!(fmt("%p %px %pK", [0x1000, 0xff, 0]).unwrap(), "0x1000 0xff 0x0");
        assert_eq!(fmt("%s|%s", [0x10, 0x20, 0]).unwrap(), "str|(fault)");
        assert_eq!(fmt("100%% %c", [b'!' as u64, 0, 0]).unwrap(), "100% !");
    }

    #[test]
    fn refused_formats() {
        for bad in ["%q", "%.3d", "%hd", "%n", "%", "%d%d%d%d", "%ls"] {
            assert_eq!(fmt(bad, [0; 3]), None, "{bad}");
        }
    }
}
