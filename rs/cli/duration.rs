//! Durations on the command line: a number and a unit, `500ms`, `30s`,
//! `2m`, `1h` (fractions allowed: `1.5s`), or a bare number of seconds
//! (`30`, `0.25`). Zero is allowed (the commands then stop at once).

use std::time::Duration;

/// The units, with their length in nanoseconds.
const UNITS: [(&str, u64); 4] =
    [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)];

/// Parses a duration; the error says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let digits = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit_ns = match unit {
        "" => 1_000_000_000,
        unit => UNITS.iter().find(|(name, _)| *name == unit).map(|&(_, ns)| ns).ok_or_else(|| invalid(text))?,
    };
    let nanos = match number.split_once('.') {
        None => number.parse::<u64>().ok().and_then(|n| n.checked_mul(unit_ns)),
        Some((whole, fraction)) => fractional(whole, fraction, unit_ns),
    };
    nanos.map(Duration::from_nanos).ok_or_else(|| invalid(text))
}

/// `whole.fraction` units in nanoseconds (digits past the nanosecond are
/// dropped); None for no digits, a second dot, or an overflow.
fn fractional(whole: &str, fraction: &str, unit_ns: u64) -> Option<u64> {
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole_ns = if whole.is_empty() { 0 } else { whole.parse::<u64>().ok()?.checked_mul(unit_ns)? };
    let mut fraction_ns = 0u64;
    let mut scale = unit_ns;
    for digit in fraction.bytes() {
        scale /= 10;
        fraction_ns += u64::from(digit - b'0') * scale;
    }
    whole_ns.checked_add(fraction_ns)
}

fn invalid(text: &str) -> String {
    format!("not a duration: {text:?} (give a number and a unit: 500ms, 30s, 2m, 1h; or a number of seconds)")
}

#[cfg(test)]
mod tests {
    use super::parse;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn units_and_bare_seconds() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn fractions() {
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2."), Ok(Duration::from_secs(2)));
        assert_eq!(parse("0.5m"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse("0.0000000019"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn mistakes_are_errors_that_say_what_to_give() {
        for bad in ["", "s", "ms", ".", "-1", "1x", "1 s", "1sm", "1.2.3", "1e3", "1S", "one", "10d", "+5"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("500ms, 30s, 2m, 1h"), "{bad}: {err}");
        }
        assert!(parse("18446744073709551615h").is_err(), "an overflow is an error");
        assert!(parse("99999999999999999999999").is_err());
    }

    proptest! {
        #[test]
        fn any_number_and_unit_round_trips(n in 0u64..1_000_000, unit in 0usize..4) {
            let (name, ns) = super::UNITS[unit];
            prop_assert_eq!(parse(&format!("{n}{name}")), Ok(Duration::from_nanos(n * ns)));
        }

        #[test]
        fn garbage_is_an_error_never_a_panic(text in "\\PC{0,12}") {
            if let Ok(d) = parse(&text) {
                // What parses is a number and a known unit.
                prop_assert!(text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).chars().all(|c| c.is_ascii_digit() || c == '.'), "{text} -> {d:?}");
            }
        }

        #[test]
        fn big_numbers_overflow_into_errors(n in any::<u64>(), unit in 0usize..4) {
            let (name, ns) = super::UNITS[unit];
            let text = format!("{n}{name}");
            prop_assert_eq!(parse(&text).ok(), n.checked_mul(ns).map(Duration::from_nanos));
        }
    }
}
