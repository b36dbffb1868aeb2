//! RFC 3339 timestamps in UTC with nanoseconds, the form winlogbeat writes
//! (`2016-08-30T12:34:56.123456789Z`), converted by hand so that reading is
//! as strict as we need: any offset and 1 to 9 fraction digits are accepted,
//! out-of-range fields are not.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;
/// `0000-01-01T00:00:00Z`: RFC 3339 has four-digit years only.
const MIN_SECS: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z`.
const MAX_SECS: i64 = 253_402_300_799;

/// Seconds and nanoseconds since the Unix epoch, `nanos < 1e9`, seconds
/// negative before 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UnixTime {
    secs: i64,
    nanos: u32,
}

fn from_system_time(t: SystemTime) -> Option<UnixTime> {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).ok()?, d.subsec_nanos()),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).ok()?;
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    };
    (MIN_SECS..=MAX_SECS)
        .contains(&secs)
        .then_some(UnixTime { secs, nanos })
}

fn to_system_time(t: UnixTime) -> Option<SystemTime> {
    let base = if t.secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(t.secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(t.secs.unsigned_abs()))
    }?;
    base.checked_add(Duration::from_nanos(u64::from(t.nanos)))
}

/// Whether `t` can be written: years 0000 to 9999.
pub(crate) fn in_range(t: SystemTime) -> bool {
    from_system_time(t).is_some()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`: years counted from March so the leap day is last).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both fit in u32: day is 1..=31 and month 1..=12 by construction.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, or `None` outside years 0000-9999.
pub(crate) fn format(t: SystemTime) -> Option<String> {
    let t = from_system_time(t)?;
    let days = t.secs.div_euclid(SECS_PER_DAY);
    let sod = t.secs.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        t.nanos
    ))
}

/// A small cursor over the ASCII of a timestamp.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Result<u32, &'static str> {
        let field = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or("timestamp is too short")?;
        let mut value = 0u32;
        for &b in field {
            if !b.is_ascii_digit() {
                return Err("timestamp has a non-digit where a digit belongs");
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.at += n;
        Ok(value)
    }

    fn expect(&mut self, accepted: &[u8]) -> Result<(), &'static str> {
        match self.bytes.get(self.at) {
            Some(b) if accepted.contains(b) => {
                self.at += 1;
                Ok(())
            }
            _ => Err("timestamp is not in RFC 3339 form (YYYY-MM-DDTHH:MM:SS[.f]Z)"),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }
}

/// Parses an RFC 3339 timestamp with any UTC offset and 0 to 9 fraction
/// digits. The error says what is wrong, for a corrupt-file message.
pub(crate) fn parse(s: &str) -> Result<SystemTime, &'static str> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        at: 0,
    };
    let year = i64::from(c.digits(4)?);
    c.expect(b"-")?;
    let month = c.digits(2)?;
    c.expect(b"-")?;
    let day = c.digits(2)?;
    c.expect(b"Tt")?;
    let hour = i64::from(c.digits(2)?);
    c.expect(b":")?;
    let minute = i64::from(c.digits(2)?);
    c.expect(b":")?;
    let second = i64::from(c.digits(2)?);
    let mut nanos = 0u32;
    if c.peek() == Some(b'.') {
        c.at += 1;
        let mut count = 0;
        while let Some(b @ b'0'..=b'9') = c.peek() {
            if count == 9 {
                return Err("timestamp has more than 9 fraction digits");
            }
            nanos = nanos * 10 + u32::from(b - b'0');
            count += 1;
            c.at += 1;
        }
        if count == 0 {
            return Err("timestamp has a '.' without fraction digits");
        }
        nanos *= 10u32.pow(9 - count);
    }
    let offset = match c.peek() {
        Some(b'Z' | b'z') => {
            c.at += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.at += 1;
            let oh = i64::from(c.digits(2)?);
            c.expect(b":")?;
            let om = i64::from(c.digits(2)?);
            if oh > 23 || om > 59 {
                return Err("timestamp has an offset out of range");
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return Err("timestamp lacks a 'Z' or an offset"),
    };
    if c.at != c.bytes.len() {
        return Err("timestamp has trailing characters");
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("timestamp has a date that does not exist");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("timestamp has a time of day out of range");
    }
    let secs =
        days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second
            - offset;
    if !(MIN_SECS..=MAX_SECS).contains(&secs) {
        return Err("timestamp falls outside the years 0000 to 9999");
    }
    to_system_time(UnixTime { secs, nanos }).ok_or("timestamp does not fit this system's clock")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, nanos: u32) -> SystemTime {
        to_system_time(UnixTime { secs, nanos }).unwrap()
    }

    #[test]
    fn formats_like_winlogbeat() {
        // 2016-08-30T12:34:56Z is 1472560496 s after the epoch.
        assert_eq!(
            format(at(1_472_560_496, 123_456_789)).unwrap(),
            "2016-08-30T12:34:56.123456789Z"
        );
        assert_eq!(
            format(UNIX_EPOCH).unwrap(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            format(at(-1, 999_999_999)).unwrap(),
            "1969-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            format(at(MIN_SECS, 0)).unwrap(),
            "0000-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            format(at(MAX_SECS, 999_999_999)).unwrap(),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            format(at(951_782_400, 0)).unwrap(),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn out_of_range_is_refused() {
        assert_eq!(format(at(MAX_SECS + 1, 0)), None);
        assert_eq!(format(at(MIN_SECS - 1, 999_999_999)), None);
        assert!(!in_range(at(MAX_SECS + 1, 0)));
        assert!(in_range(at(MIN_SECS, 0)));
    }

    #[test]
    fn system_time_before_epoch_round_trips() {
        for (secs, nanos) in [(-1, 1), (-1, 0), (-86_400, 500), (MIN_SECS, 7)] {
            let t = at(secs, nanos);
            assert_eq!(from_system_time(t), Some(UnixTime { secs, nanos }));
        }
    }

    #[test]
    fn civil_conversion_matches_a_day_by_day_walk() {
        // Walk every day from 0000-01-01 to 9999-12-31 and check both directions.
        let (mut y, mut m, mut d) = (0i64, 1u32, 1u32);
        let mut days = days_from_civil(0, 1, 1);
        assert_eq!(days * SECS_PER_DAY, MIN_SECS);
        loop {
            assert_eq!(days_from_civil(y, m, d), days);
            assert_eq!(civil_from_days(days), (y, m, d));
            if (y, m, d) == (9999, 12, 31) {
                break;
            }
            days += 1;
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert_eq!(days * SECS_PER_DAY + SECS_PER_DAY - 1, MAX_SECS);
    }

    #[test]
    fn parse_round_trips_format() {
        for (secs, nanos) in [
            (0, 0),
            (1_472_560_496, 123_456_789),
            (-1, 999_999_999),
            (MIN_SECS, 0),
            (MAX_SECS, 999_999_999),
            (951_782_400, 1),
        ] {
            let t = at(secs, nanos);
            assert_eq!(parse(&format(t).unwrap()), Ok(t));
        }
    }

    #[test]
    fn parse_accepts_go_forms() {
        let want = at(1_472_560_496, 120_000_000);
        assert_eq!(parse("2016-08-30T12:34:56.12Z"), Ok(want));
        assert_eq!(parse("2016-08-30t12:34:56.12z"), Ok(want));
        assert_eq!(parse("2016-08-30T14:34:56.12+02:00"), Ok(want));
        assert_eq!(parse("2016-08-30T10:04:56.12-02:30"), Ok(want));
        assert_eq!(parse("2016-08-30T12:34:56Z"), Ok(at(1_472_560_496, 0)));
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "2016",
            "2016-08-30",
            "2016-08-30T12:34:56",
            "2016-08-30 12:34:56Z",
            "2016-13-01T00:00:00Z",
            "2016-02-30T00:00:00Z",
            "2015-02-29T00:00:00Z",
            "2016-00-10T00:00:00Z",
            "2016-01-00T00:00:00Z",
            "2016-01-01T24:00:00Z",
            "2016-01-01T00:60:00Z",
            "2016-01-01T00:00:60Z",
            "2016-01-01T00:00:00.Z",
            "2016-01-01T00:00:00.1234567890Z",
            "2016-01-01T00:00:00Zjunk",
            "2016-01-01T00:00:00+24:00",
            "0000-01-01T00:00:00+00:01",
            "+016-01-01T00:00:00Z",
            "2016-01-01T00:00:00\u{e9}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            parse("2016-02-30T00:00:00Z"),
            Err("timestamp has a date that does not exist")
        );
    }
}
