//! Invariant checks shared by the proptest suites and the cargo-fuzz target
//! `cas_policy_config`. Each function panics only if an invariant breaks. Not part of
//! the stable API.

use crate::{PolicyConfig, VersionRanges};

/// Arbitrary text as a policy file: never panics; whatever loads writes back to TOML
/// that loads equal, and compiles into a [`Policy`](crate::Policy).
pub fn check_config_text(text: &str) {
    if let Ok(config) = PolicyConfig::from_toml_str(text) {
        let written = config.to_toml_string();
        let again = PolicyConfig::from_toml_str(&written)
            .unwrap_or_else(|e| panic!("written config does not load: {e}\n{written}"));
        assert_eq!(again, config, "round trip changed the config:\n{written}");
        crate::Policy::new(config).expect("a loaded config compiles");
    }
}

/// Arbitrary text as a `MAPIBlockOutlookVersions` value: never panics; whatever parses
/// formats to text that parses equal and formats the same.
pub fn check_version_ranges(text: &str) {
    if let Ok(ranges) = VersionRanges::parse(text) {
        let written = ranges.to_string();
        let again = VersionRanges::parse(&written)
            .unwrap_or_else(|e| panic!("{written:?} does not parse back: {e}"));
        assert_eq!(again, ranges);
        assert_eq!(again.to_string(), written);
    }
}

/// Splits fuzz input: the first byte picks the check, the rest is the text.
pub fn check_bytes(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 4 {
        0 => check_version_ranges(&text),
        1 => {
            for piece in text.split('\n') {
                check_version_ranges(piece);
                let _ = crate::IpRange::parse(piece);
                let _ = crate::OuPath::parse(piece);
                let _ = crate::TimeSpan::parse(piece);
                let _ = crate::RpcPortRange::parse(piece);
                let _ = crate::OutlookClientVersion::parse(piece);
            }
        }
        _ => check_config_text(&text),
    }
}
