//! Text to value and back for the kinds of value a key can take: whole
//! numbers, durations, byte sizes and strings.
//!
//! Parsers return the "expected ..." text on failure; the caller adds the key
//! and the value to make a [`ConfigError`](super::ConfigError). Every
//! renderer writes text its parser reads back to the same value, which is
//! what makes `to_yaml` round-trip and lets `validate` reuse the parsers.

use std::time::Duration;

/// The longest duration any key accepts: 8760h (365 days). Deadlines are
/// `Instant::now() + duration`; a bound keeps that far from overflowing on
/// every platform and catches a unit typo (`5h` for `5s` is still allowed,
/// `5000000h` is not).
pub(super) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A whole number between `min` and `max` inclusive.
#[derive(Clone, Copy)]
pub(super) struct Whole {
    pub min: u64,
    pub max: u64,
    /// Whether `max` is a limit of the key (said in every message) rather
    /// than just the size of the field's type (said only when exceeded).
    pub max_is_a_rule: bool,
}

impl Whole {
    /// Any value the field's type holds, from `min` up.
    pub const fn at_least(min: u64, type_max: u64) -> Self {
        Self {
            min,
            max: type_max,
            max_is_a_rule: false,
        }
    }

    /// From `min` to `max`, both said in every message.
    pub const fn between(min: u64, max: u64) -> Self {
        Self {
            min,
            max,
            max_is_a_rule: true,
        }
    }

    pub fn expected(&self) -> String {
        if self.max_is_a_rule {
            self.range_text()
        } else {
            format!("a whole number >= {}", self.min)
        }
    }

    fn range_text(&self) -> String {
        format!("a whole number from {} to {}", self.min, self.max)
    }

    pub fn parse(&self, text: &str) -> Result<u64, String> {
        match parse_digits(text) {
            Digits::Value(n) if n < self.min => Err(self.expected()),
            Digits::Value(n) if n > self.max => Err(self.range_text()),
            Digits::Value(n) => Ok(n),
            Digits::TooLarge => Err(self.range_text()),
            Digits::NotANumber => Err(self.expected()),
        }
    }

    pub fn parse_usize(&self, text: &str) -> Result<usize, String> {
        let n = self.parse(text)?;
        usize::try_from(n).map_err(|_| self.range_text())
    }

    pub fn parse_u32(&self, text: &str) -> Result<u32, String> {
        let n = self.parse(text)?;
        u32::try_from(n).map_err(|_| self.range_text())
    }
}

enum Digits {
    Value(u64),
    TooLarge,
    NotANumber,
}

/// Only ASCII digits, at least one: no sign (so no negative numbers), no
/// spaces, no separators, no trailing junk.
fn parse_digits(text: &str) -> Digits {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Digits::NotANumber;
    }
    let mut n: u64 = 0;
    for b in text.bytes() {
        let digit = u64::from(b - b'0');
        match n.checked_mul(10).and_then(|n| n.checked_add(digit)) {
            Some(next) => n = next,
            None => return Digits::TooLarge,
        }
    }
    Digits::Value(n)
}

/// Splits `12ms` into (12 as a big integer, "ms"). The number part must be
/// non-empty; u128 holds any u64 times any unit below without overflow.
fn split_number(text: &str) -> Option<(u128, &str)> {
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(end);
    match parse_digits(digits) {
        Digits::Value(n) => Some((u128::from(n), unit)),
        // More than u64 digits: certainly too large, but a number.
        Digits::TooLarge => Some((u128::from(u64::MAX) + 1, unit)),
        Digits::NotANumber => None,
    }
}

const NANOS_PER: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// A duration: a whole number and a unit (`ns`, `us`, `ms`, `s`, `m`, `h`),
/// or a bare whole number of milliseconds. At most [`MAX_DURATION`].
#[derive(Clone, Copy)]
pub(super) struct DurationRule {
    pub nonzero: bool,
}

impl DurationRule {
    pub fn expected(&self) -> String {
        let what = if self.nonzero {
            "a duration > 0"
        } else {
            "a duration"
        };
        format!(
            "{what} such as 250ms, 2s, 1m or 1h (units ns, us, ms, s, m, h; \
             a bare number is milliseconds)"
        )
    }

    pub fn parse(&self, text: &str) -> Result<Duration, String> {
        let (n, unit) = split_number(text).ok_or_else(|| self.expected())?;
        let per = if unit.is_empty() {
            1_000_000
        } else {
            NANOS_PER
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, per)| *per)
                .ok_or_else(|| self.expected())?
        };
        let nanos = n.saturating_mul(per);
        if nanos > MAX_DURATION.as_nanos() {
            return Err(format!(
                "a duration of at most {}",
                render_duration(MAX_DURATION)
            ));
        }
        if self.nonzero && nanos == 0 {
            return Err(self.expected());
        }
        // Below MAX_DURATION, so it fits in u64 nanoseconds.
        u64::try_from(nanos)
            .map(Duration::from_nanos)
            .map_err(|_| self.expected())
    }
}

/// The largest unit that states `d` exactly: `1m`, `1500ms`, `0ms`.
pub(super) fn render_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0ms".to_owned();
    }
    for (unit, per) in NANOS_PER {
        if nanos.is_multiple_of(per) {
            return format!("{}{unit}", nanos / per);
        }
    }
    unreachable!("every duration is a whole number of nanoseconds")
}

const BYTES_PER: [(&str, u128); 10] = [
    ("B", 1),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// A byte size: a whole number and a unit (`B`; binary `KiB`, `MiB`, `GiB`,
/// `TiB`; decimal `kB`/`KB`, `MB`, `GB`, `TB`), or a bare number of bytes.
#[derive(Clone, Copy)]
pub(super) struct SizeRule {
    pub nonzero: bool,
}

impl SizeRule {
    pub fn expected(&self) -> String {
        let what = if self.nonzero { "a size > 0" } else { "a size" };
        format!(
            "{what} such as 512, 64KiB, 10MiB or 1GiB (units B, KiB, MiB, GiB, TiB, \
             kB, MB, GB, TB; a bare number is bytes)"
        )
    }

    pub fn parse(&self, text: &str) -> Result<u64, String> {
        let (n, unit) = split_number(text).ok_or_else(|| self.expected())?;
        let per = if unit.is_empty() {
            1
        } else {
            BYTES_PER
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, per)| *per)
                .ok_or_else(|| self.expected())?
        };
        let bytes = u64::try_from(n.saturating_mul(per))
            .map_err(|_| format!("a size of at most {} bytes", u64::MAX))?;
        if self.nonzero && bytes == 0 {
            return Err(self.expected());
        }
        Ok(bytes)
    }
}

/// The shortest exact form of `bytes`; on a tie a unit beats a bare
/// number and a binary unit a decimal one: `1KiB`, `1536KiB`, `10GB`, `1kB`,
/// `1023`.
pub(super) fn render_size(bytes: u64) -> String {
    let bare = bytes.to_string();
    if bytes == 0 {
        return bare;
    }
    let mut best: Option<String> = None;
    for (unit, per) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("kB", 1_000),
    ] {
        if bytes.is_multiple_of(per) {
            let text = format!("{}{unit}", bytes / per);
            if best.as_ref().is_none_or(|b| text.len() < b.len()) {
                best = Some(text);
            }
        }
    }
    match best {
        Some(unit) if unit.len() <= bare.len() => unit,
        _ => bare,
    }
}

/// What a string value may contain.
#[derive(Clone, Copy)]
pub(super) enum TextRule {
    /// Non-empty, no control characters (names show up in logs and messages).
    Name,
    /// Non-empty, no NUL (it must pass through C strings and path APIs).
    Opaque,
}

impl TextRule {
    pub fn expected(&self) -> &'static str {
        match self {
            Self::Name => "a non-empty string without control characters",
            Self::Opaque => "a non-empty string without NUL characters",
        }
    }

    pub fn parse(&self, text: &str) -> Result<String, String> {
        let ok = !text.is_empty()
            && match self {
                Self::Name => !text.chars().any(char::is_control),
                Self::Opaque => !text.contains('\0'),
            };
        if ok {
            Ok(text.to_owned())
        } else {
            Err(self.expected().to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY_DURATION: DurationRule = DurationRule { nonzero: false };
    const ANY_SIZE: SizeRule = SizeRule { nonzero: false };

    #[test]
    fn whole_numbers() {
        let rule = Whole::at_least(1, u64::MAX);
        assert_eq!(rule.parse("1"), Ok(1));
        assert_eq!(rule.parse("007"), Ok(7));
        assert_eq!(rule.parse("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "", "0", "-1", "+1", " 1", "1 ", "1.0", "1e3", "1_000", "x", "٣",
        ] {
            assert_eq!(
                rule.parse(bad),
                Err("a whole number >= 1".to_owned()),
                "{bad:?}"
            );
        }
        assert_eq!(
            rule.parse("18446744073709551616"),
            Err("a whole number from 1 to 18446744073709551615".to_owned())
        );
        let ranged = Whole::between(1, 8);
        assert_eq!(ranged.parse("8"), Ok(8));
        assert_eq!(
            ranged.parse("9"),
            Err("a whole number from 1 to 8".to_owned())
        );
        assert_eq!(
            ranged.parse("0"),
            Err("a whole number from 1 to 8".to_owned())
        );
        assert_eq!(
            Whole::at_least(0, u64::from(u32::MAX)).parse_u32("4294967296"),
            Err("a whole number from 0 to 4294967295".to_owned())
        );
    }

    #[test]
    fn every_duration_syntax() {
        let cases = [
            ("0", Duration::ZERO),
            ("250", Duration::from_millis(250)),
            ("7ns", Duration::from_nanos(7)),
            ("1500us", Duration::from_micros(1500)),
            ("250ms", Duration::from_millis(250)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("8760h", MAX_DURATION),
            ("525600m", MAX_DURATION),
        ];
        for (text, want) in cases {
            assert_eq!(ANY_DURATION.parse(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn bad_durations() {
        let expected = ANY_DURATION.expected();
        for bad in [
            "", "ms", "-1s", "1.5s", "1 s", " 1s", "1s ", "1S", "1sec", "1d", "1h30m", "s1", "1µs",
        ] {
            assert_eq!(ANY_DURATION.parse(bad), Err(expected.clone()), "{bad:?}");
        }
        let too_long = Err("a duration of at most 8760h".to_owned());
        assert_eq!(ANY_DURATION.parse("8761h"), too_long);
        assert_eq!(ANY_DURATION.parse("31536000001ms"), too_long);
        assert_eq!(ANY_DURATION.parse("99999999999999999999999h"), too_long);
        let nonzero = DurationRule { nonzero: true };
        assert_eq!(nonzero.parse("0s"), Err(nonzero.expected()));
        assert_eq!(nonzero.parse("1ns"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn durations_render_to_what_they_parse_from() {
        let cases = [
            (Duration::ZERO, "0ms"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_micros(1500), "1500us"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(7200), "2h"),
            (MAX_DURATION, "8760h"),
        ];
        for (d, text) in cases {
            assert_eq!(render_duration(d), text);
            assert_eq!(ANY_DURATION.parse(text), Ok(d));
        }
    }

    #[test]
    fn every_size_syntax() {
        let cases = [
            ("0", 0),
            ("512", 512),
            ("512B", 512),
            ("64KiB", 64 << 10),
            ("10MiB", 10 << 20),
            ("1GiB", 1 << 30),
            ("2TiB", 2 << 40),
            ("3kB", 3_000),
            ("3KB", 3_000),
            ("4MB", 4_000_000),
            ("5GB", 5_000_000_000),
            ("6TB", 6_000_000_000_000),
            ("18446744073709551615B", u64::MAX),
        ];
        for (text, want) in cases {
            assert_eq!(ANY_SIZE.parse(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn bad_sizes() {
        let expected = ANY_SIZE.expected();
        for bad in [
            "", "KiB", "-1", "1.5MiB", "1 MiB", "1mib", "1kb", "1Kb", "1K", "1PiB", "1MiBs", "x1",
        ] {
            assert_eq!(ANY_SIZE.parse(bad), Err(expected.clone()), "{bad:?}");
        }
        let too_big = Err("a size of at most 18446744073709551615 bytes".to_owned());
        assert_eq!(ANY_SIZE.parse("16777216TiB"), too_big);
        assert_eq!(ANY_SIZE.parse("18446744073709551616"), too_big);
        let nonzero = SizeRule { nonzero: true };
        assert_eq!(nonzero.parse("0GiB"), Err(nonzero.expected()));
    }

    #[test]
    fn sizes_render_to_what_they_parse_from() {
        let cases = [
            (0, "0"),
            (1000, "1kB"),
            (1023, "1023"),
            (1000 * 1024, "1024kB"),
            (10_000_000_000, "10GB"),
            (5_000_000, "5MB"),
            (2048 * 1000, "2048kB"),
            (1024, "1KiB"),
            (1536 << 10, "1536KiB"),
            (1 << 20, "1MiB"),
            (3 << 30, "3GiB"),
            (5 << 40, "5TiB"),
            (u64::MAX, "18446744073709551615"),
        ];
        for (n, text) in cases {
            assert_eq!(render_size(n), text);
            assert_eq!(ANY_SIZE.parse(text), Ok(n));
        }
    }

    #[test]
    fn text() {
        assert_eq!(TextRule::Name.parse("a b"), Ok("a b".to_owned()));
        assert!(TextRule::Name.parse("").is_err());
        assert!(TextRule::Name.parse("a\nb").is_err());
        assert_eq!(TextRule::Opaque.parse("a\nb"), Ok("a\nb".to_owned()));
        assert!(TextRule::Opaque.parse("a\0b").is_err());
        assert!(TextRule::Opaque.parse("").is_err());
    }
}
