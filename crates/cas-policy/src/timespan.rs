//! Exchange's `TimeSpan` values (`d.hh:mm:ss`), as the connection timeouts use them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Longest accepted text form; anything longer is refused before parsing.
const MAX_TEXT_LEN: usize = 32;
/// Largest accepted day count; far above any timeout, small enough to never overflow.
const MAX_DAYS: u64 = 10_675_199;
/// .NET's tick: the resolution of a `TimeSpan`.
const NANOS_PER_TICK: u32 = 100;

/// A non-negative duration in Exchange's `TimeSpan` text form.
///
/// Grammar (a subset of .NET's `TimeSpan` "c" format, without the sign):
///
/// ```text
/// timespan = [days "."] hours ":" minutes ":" seconds ["." fraction]
/// hours    = 1*2DIGIT   ; 0-23
/// minutes  = 2DIGIT     ; 00-59
/// seconds  = 2DIGIT     ; 00-59
/// fraction = 1*7DIGIT   ; ticks of 100 ns
/// ```
///
/// In TOML a timeout may also be an integer number of seconds (`AuthenticatedConnectionTimeout = 1800`);
/// it is written back in the `TimeSpan` form. Precision is one tick (100 ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeSpan(Duration);

impl TimeSpan {
    /// A span of `secs` whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        TimeSpan(Duration::from_secs(secs))
    }

    /// The span as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// A span from a [`Duration`], truncated to whole 100 ns ticks.
    pub fn from_duration(d: Duration) -> Self {
        let nanos = d.subsec_nanos() - d.subsec_nanos() % NANOS_PER_TICK;
        TimeSpan(Duration::new(d.as_secs(), nanos))
    }

    /// Parses the `TimeSpan` text form (see the type docs).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| {
            ConfigError::invalid(
                "TimeSpan",
                text,
                format!("{why}; expected [d.]hh:mm:ss[.fffffff]"),
            )
        };
        if text.len() > MAX_TEXT_LEN {
            return Err(bad("too long"));
        }
        let mut parts = text.split(':');
        let (Some(first), Some(minutes), Some(seconds), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("needs three colon-separated fields"));
        };
        let (days, hours) = match first.split_once('.') {
            Some((d, h)) => (digits(d, 1, 8).ok_or_else(|| bad("bad days"))?, h),
            None => (0, first),
        };
        let hours = digits(hours, 1, 2).ok_or_else(|| bad("bad hours"))?;
        let minutes = digits(minutes, 2, 2).ok_or_else(|| bad("bad minutes"))?;
        let (seconds, ticks) = match seconds.split_once('.') {
            Some((s, f)) => {
                let frac = digits(f, 1, 7).ok_or_else(|| bad("bad fraction"))?;
                // "1.5" means half a second: scale the fraction to 7 digits.
                let scale = 10u64.pow(7 - f.len() as u32);
                (s, frac * scale)
            }
            None => (seconds, 0),
        };
        let seconds = digits(seconds, 2, 2).ok_or_else(|| bad("bad seconds"))?;
        if hours > 23 || minutes > 59 || seconds > 59 {
            return Err(bad("hours must be 0-23, minutes and seconds 0-59"));
        }
        if days > MAX_DAYS {
            return Err(bad("too many days"));
        }
        let secs = days * 86_400 + hours * 3_600 + minutes * 60 + seconds;
        // ticks < 10^7, so the product stays below 10^9.
        Ok(TimeSpan(Duration::new(
            secs,
            (ticks as u32) * NANOS_PER_TICK,
        )))
    }
}

/// `count` decimal digits (between `min` and `max` of them), as a number.
fn digits(text: &str, min: usize, max: usize) -> Option<u64> {
    if text.len() < min || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_secs();
        let (days, rest) = (total / 86_400, total % 86_400);
        if days > 0 {
            write!(f, "{days}.")?;
        }
        write!(
            f,
            "{:02}:{:02}:{:02}",
            rest / 3_600,
            rest % 3_600 / 60,
            rest % 60
        )?;
        let ticks = self.0.subsec_nanos() / NANOS_PER_TICK;
        if ticks > 0 {
            write!(f, ".{ticks:07}")?;
        }
        Ok(())
    }
}

impl FromStr for TimeSpan {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeSpan::parse(s)
    }
}

impl Serialize for TimeSpan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeSpan {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TimeSpan;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TimeSpan \"[d.]hh:mm:ss\" or a whole number of seconds")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimeSpan, E> {
                TimeSpan::parse(v).map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TimeSpan, E> {
                u64::try_from(v)
                    .map(TimeSpan::from_secs)
                    .map_err(|_| E::custom("a timeout cannot be negative"))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TimeSpan, E> {
                Ok(TimeSpan::from_secs(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            TimeSpan::parse("00:01:00").unwrap(),
            TimeSpan::from_secs(60)
        );
        assert_eq!(
            TimeSpan::parse("00:30:00").unwrap(),
            TimeSpan::from_secs(1800)
        );
        assert_eq!(
            TimeSpan::parse("1.00:00:00").unwrap(),
            TimeSpan::from_secs(86_400)
        );
        assert_eq!(TimeSpan::parse("0:00:10").unwrap(), TimeSpan::from_secs(10));
        assert_eq!(
            TimeSpan::parse("00:00:01.5").unwrap().as_duration(),
            Duration::from_millis(1500)
        );
        assert_eq!(TimeSpan::from_secs(86_400 + 61).to_string(), "1.00:01:01");
        assert_eq!(TimeSpan::from_secs(10).to_string(), "00:00:10");
        assert_eq!(
            TimeSpan::from_duration(Duration::from_millis(1500)).to_string(),
            "00:00:01.5000000"
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "10",
            "00:60:00",
            "24:00:00",
            "00:00:60",
            "-00:01:00",
            "00:1:00",
            "a.00:00:00",
            "00:00:00.12345678",
            "00:00:00:00",
            "99999999999.00:00:00",
        ] {
            assert!(TimeSpan::parse(bad).is_err(), "{bad}");
        }
    }
}
