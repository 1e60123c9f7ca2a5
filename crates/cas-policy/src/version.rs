//! Outlook client versions and `MAPIBlockOutlookVersions` ranges.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Longest accepted `MAPIBlockOutlookVersions` text; Exchange stores it in a short
/// directory attribute, and real values are a few ranges long.
pub const MAX_VERSION_RANGES_LEN: usize = 1024;
/// Most ranges in one `MAPIBlockOutlookVersions` value.
pub const MAX_VERSION_RANGES: usize = 64;

const KEY: &str = "MAPIBlockOutlookVersions";

/// An Outlook (MAPI client) version as Exchange compares it: `major.minor.build`.
///
/// Outlook reports four parts (`15.0.4569.1506`); Exchange's client blocking
/// (`MAPIBlockOutlookVersions`, `Set-RpcClientAccess -BlockedClientVersions`) is
/// written and evaluated with three, so the fourth part (the build revision) is parsed
/// and kept for display but ignored when comparing: `15.0.4569.1506` and `15.0.4569.1`
/// are the same version to a block range. Each part is 0–65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutlookClientVersion {
    /// Major version (15 for Outlook 2013, 16 for Outlook 2016 and later).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Build number.
    pub build: u16,
    /// Build revision; not compared.
    pub revision: Option<u16>,
}

impl OutlookClientVersion {
    /// A three-part version.
    pub const fn new(major: u16, minor: u16, build: u16) -> Self {
        OutlookClientVersion {
            major,
            minor,
            build,
            revision: None,
        }
    }

    /// The compared part: `(major, minor, build)`.
    pub fn key(&self) -> (u16, u16, u16) {
        (self.major, self.minor, self.build)
    }

    /// Parses `major.minor.build` or `major.minor.build.revision`.
    ///
    /// ```text
    /// version = part "." part "." part ["." part]
    /// part    = 1*5DIGIT   ; 0-65535
    /// ```
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        parse_version(text.trim(), true)
    }
}

impl PartialOrd for OutlookClientVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.key().cmp(&other.key()))
    }
}

fn parse_version(text: &str, allow_revision: bool) -> Result<OutlookClientVersion, ConfigError> {
    let bad = || {
        ConfigError::invalid(
            KEY,
            text,
            if allow_revision {
                "expected a version major.minor.build[.revision], each part 0-65535"
            } else {
                "expected a version major.minor.build, each part 0-65535"
            },
        )
    };
    let mut parts = [0u16; 4];
    let mut count = 0;
    for piece in text.split('.') {
        if count == parts.len()
            || piece.is_empty()
            || piece.len() > 5
            || !piece.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        parts[count] = piece.parse().map_err(|_| bad())?;
        count += 1;
    }
    match count {
        3 => Ok(OutlookClientVersion::new(parts[0], parts[1], parts[2])),
        4 if allow_revision => Ok(OutlookClientVersion {
            revision: Some(parts[3]),
            ..OutlookClientVersion::new(parts[0], parts[1], parts[2])
        }),
        _ => Err(bad()),
    }
}

impl fmt::Display for OutlookClientVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)?;
        if let Some(r) = self.revision {
            write!(f, ".{r}")?;
        }
        Ok(())
    }
}

impl FromStr for OutlookClientVersion {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutlookClientVersion::parse(s)
    }
}

/// One inclusive range of a `MAPIBlockOutlookVersions` value.
///
/// ```text
/// range = version            ; exactly that version
///       / version "-"        ; that version and every later one
///       / "-" version        ; every version up to and including that one
///       / version "-" version ; both ends included, low <= high
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest blocked version; `None` means no lower bound.
    pub low: Option<(u16, u16, u16)>,
    /// Highest blocked version; `None` means no upper bound.
    pub high: Option<(u16, u16, u16)>,
    /// True for the single-version form (`15.0.4569`), which has `low == high`.
    pub single: bool,
}

impl VersionRange {
    /// Whether `version` lies in the range (both ends inclusive).
    pub fn contains(&self, version: &OutlookClientVersion) -> bool {
        let v = version.key();
        self.low.is_none_or(|low| v >= low) && self.high.is_none_or(|high| v <= high)
    }

    /// Parses one range (see the type docs).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        let version = |t: &str| parse_version(t.trim(), false).map(|v| v.key());
        let range = match text.split_once('-') {
            None => {
                let v = version(text)?;
                VersionRange {
                    low: Some(v),
                    high: Some(v),
                    single: true,
                }
            }
            Some((low, high)) => {
                let low = if low.trim().is_empty() {
                    None
                } else {
                    Some(version(low)?)
                };
                let high = if high.trim().is_empty() {
                    None
                } else {
                    Some(version(high)?)
                };
                if low.is_none() && high.is_none() {
                    return Err(ConfigError::invalid(
                        KEY,
                        text,
                        "a range needs at least one end",
                    ));
                }
                VersionRange {
                    low,
                    high,
                    single: false,
                }
            }
        };
        if let (Some(low), Some(high)) = (range.low, range.high)
            && low > high
        {
            return Err(ConfigError::invalid(
                KEY,
                text,
                "the low end is above the high end",
            ));
        }
        Ok(range)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |f: &mut fmt::Formatter<'_>, (a, b, c): (u16, u16, u16)| write!(f, "{a}.{b}.{c}");
        match (self.single, self.low, self.high) {
            (true, Some(low), _) => v(f, low),
            (_, low, high) => {
                if let Some(low) = low {
                    v(f, low)?;
                }
                f.write_str("-")?;
                if let Some(high) = high {
                    v(f, high)?;
                }
                Ok(())
            }
        }
    }
}

/// A `MAPIBlockOutlookVersions` value: `;`-separated [`VersionRange`]s, such as
/// `-13.32767.65535;15.0.0-` (block Outlook 2010 and earlier, and 2013 and later).
///
/// An Outlook client is blocked when its version lies in any range. The empty value
/// blocks nothing (Exchange's default). Spaces around ranges are ignored; at most
/// [`MAX_VERSION_RANGES`] ranges and [`MAX_VERSION_RANGES_LEN`] bytes are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VersionRanges(Vec<VersionRange>);

impl VersionRanges {
    /// Parses a `MAPIBlockOutlookVersions` value.
    ///
    /// ```text
    /// ranges = [range *(";" range)]
    /// ```
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if text.len() > MAX_VERSION_RANGES_LEN {
            return Err(ConfigError::out_of_range(
                KEY,
                format!("{} bytes", text.len()),
                format!("at most {MAX_VERSION_RANGES_LEN} bytes"),
            ));
        }
        if text.trim().is_empty() {
            return Ok(VersionRanges::default());
        }
        let mut ranges = Vec::new();
        for piece in text.split(';') {
            if ranges.len() == MAX_VERSION_RANGES {
                return Err(ConfigError::out_of_range(
                    KEY,
                    "too many ranges",
                    format!("at most {MAX_VERSION_RANGES} ranges"),
                ));
            }
            ranges.push(VersionRange::parse(piece)?);
        }
        Ok(VersionRanges(ranges))
    }

    /// The ranges, in the order given.
    pub fn ranges(&self) -> &[VersionRange] {
        &self.0
    }

    /// True when nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `version` is blocked (lies in any range).
    pub fn blocks(&self, version: &OutlookClientVersion) -> bool {
        self.0.iter().any(|r| r.contains(version))
    }
}

impl fmt::Display for VersionRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for VersionRanges {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VersionRanges::parse(s)
    }
}

impl Serialize for VersionRanges {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionRanges {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        VersionRanges::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> OutlookClientVersion {
        s.parse().unwrap()
    }

    #[test]
    fn issue_example() {
        let r = VersionRanges::parse("-13.32767.65535;15.0.0-").unwrap();
        assert_eq!(r.ranges().len(), 2);
        assert!(r.blocks(&v("12.0.6672.5000"))); // Outlook 2007
        assert!(r.blocks(&v("13.32767.65535")));
        assert!(!r.blocks(&v("14.0.4760.1000"))); // Outlook 2010 is between the ranges
        assert!(r.blocks(&v("15.0.4481.1003"))); // Outlook 2013
        assert!(r.blocks(&v("16.0.4266.1003")));
        assert_eq!(r.to_string(), "-13.32767.65535;15.0.0-");
    }

    #[test]
    fn single_and_bounded() {
        let r = VersionRanges::parse(" 15.0.4569 ; 11.0.0-12.65535.65535 ").unwrap();
        assert!(
            r.blocks(&v("15.0.4569.1506")),
            "the revision is not compared"
        );
        assert!(!r.blocks(&v("15.0.4570.0")));
        assert!(r.blocks(&v("11.0.5608")));
        assert!(r.blocks(&v("12.65535.65535.1")));
        assert!(!r.blocks(&v("13.0.0")));
        assert_eq!(r.to_string(), "15.0.4569;11.0.0-12.65535.65535");
    }

    #[test]
    fn empty_blocks_nothing() {
        let r = VersionRanges::parse("").unwrap();
        assert!(r.is_empty());
        assert!(!r.blocks(&v("0.0.0")));
        assert_eq!(r.to_string(), "");
    }

    #[test]
    fn refusals_name_the_key() {
        for bad in [
            "-",
            "15.0",
            "15.0.0.0",
            "15.0.0-14.0.0",
            "a.b.c",
            "65536.0.0",
            "1.2.3;",
            ";",
            "1.2.3--4.5.6",
            "1..2",
        ] {
            let e = VersionRanges::parse(bad).unwrap_err();
            assert_eq!(e.key(), Some(KEY), "{bad}");
        }
        let long = "1.2.3;".repeat(200);
        assert!(VersionRanges::parse(&long).is_err());
        let many = vec!["1.2.3"; MAX_VERSION_RANGES + 1].join(";");
        assert!(VersionRanges::parse(&many).is_err());
    }

    #[test]
    fn client_versions() {
        assert_eq!(v("16.0.4266.1003").revision, Some(1003));
        assert!(OutlookClientVersion::parse("16.0").is_err());
        assert!(OutlookClientVersion::parse("16.0.1.2.3").is_err());
        assert!(v("15.0.1") < v("15.0.2"));
        assert_eq!(v("15.0.1.9").to_string(), "15.0.1.9");
    }
}
