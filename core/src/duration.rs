//! Durations as users write them in tags and environment variables: `90m`, `12h`, `14d`, `2w`,
//! or a bare number of days.

use chrono::TimeDelta;
use std::fmt;

/// The longest duration accepted: nobody keeps a backup for a century, and it keeps date
/// arithmetic far from overflow.
const MAX_MINUTES: i64 = 100 * 366 * 24 * 60;

/// A positive whole number of minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    minutes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a duration: expected a whole number with a unit m, h, d or w (90m, 12h, 14d, 2w), or a bare number of days"
)]
pub struct DurationError(pub String);

impl Duration {
    pub fn minutes(n: i64) -> Self {
        Self { minutes: n }
    }
    pub fn hours(n: i64) -> Self {
        Self { minutes: n * 60 }
    }
    pub fn days(n: i64) -> Self {
        Self {
            minutes: n * 24 * 60,
        }
    }
    pub fn as_minutes(self) -> i64 {
        self.minutes
    }
    pub fn to_delta(self) -> TimeDelta {
        TimeDelta::minutes(self.minutes)
    }

    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let err = || DurationError(text.to_string());
        let trimmed = text.trim();
        let (digits, per_unit) = match trimmed.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => {
                let per_unit = match c.to_ascii_lowercase() {
                    'm' => 1,
                    'h' => 60,
                    'd' => 24 * 60,
                    'w' => 7 * 24 * 60,
                    _ => return Err(err()),
                };
                (&trimmed[..i], per_unit)
            }
            Some(_) => (trimmed, 24 * 60),
            None => return Err(err()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let n: i64 = digits.parse().map_err(|_| err())?;
        let minutes = n.checked_mul(per_unit).ok_or_else(err)?;
        if minutes <= 0 || minutes > MAX_MINUTES {
            return Err(err());
        }
        Ok(Self { minutes })
    }
}

impl fmt::Display for Duration {
    /// The largest of d, h, m that divides the duration evenly: the form written back into tags.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.minutes;
        if m % (24 * 60) == 0 {
            write!(f, "{}d", m / (24 * 60))
        } else if m % 60 == 0 {
            write!(f, "{}h", m / 60)
        } else {
            write!(f, "{m}m")
        }
    }
}

/// `3d4h`, `5h12m`, `7m`: an age at a glance (in the CLI's tables and monitor's reasons).
pub fn age(minutes: i64) -> String {
    let (d, h, m) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(age(7), "7m");
        assert_eq!(age(312), "5h12m");
        assert_eq!(age(4560), "3d4h");
    }

    #[test]
    fn parses_every_unit_and_bare_days() {
        assert_eq!(Duration::parse("90m"), Ok(Duration::minutes(90)));
        assert_eq!(Duration::parse("12h"), Ok(Duration::hours(12)));
        assert_eq!(Duration::parse("14d"), Ok(Duration::days(14)));
        assert_eq!(Duration::parse("2w"), Ok(Duration::days(14)));
        assert_eq!(Duration::parse("7"), Ok(Duration::days(7)));
        assert_eq!(Duration::parse(" 3D "), Ok(Duration::days(3)));
    }

    #[test]
    fn rejects_what_is_not_a_positive_duration() {
        for bad in [
            "",
            "d",
            "0",
            "0h",
            "-1d",
            "1.5d",
            "1y",
            "abc",
            "12 h",
            "+3d",
            "99999999999999999999d",
            "40000w",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn displays_in_the_largest_even_unit() {
        assert_eq!(Duration::days(14).to_string(), "14d");
        assert_eq!(Duration::hours(36).to_string(), "36h");
        assert_eq!(Duration::minutes(90).to_string(), "90m");
        assert_eq!(Duration::parse("2w").unwrap().to_string(), "14d");
    }
}
