//! Client address ranges and RPC proxy port ranges.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The address as policy compares it: IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a
/// dual-stack socket reports for an IPv4 client) becomes plain IPv4.
pub fn canonical_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// An entry of `AnyOfClientIPAddressesOrRanges`: one address, a CIDR block or an
/// inclusive range, IPv4 or IPv6, as `New-ClientAccessRule` accepts them.
///
/// ```text
/// ip-range = address                ; 192.168.1.1, 2001:db8::1
///          / address "/" prefix-len ; 192.168.0.0/16 (host bits are ignored)
///          / address "-" address    ; 192.168.0.1-192.168.0.254, same family, low <= high
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRange {
    /// One address.
    Single(IpAddr),
    /// A CIDR block: base address and prefix length.
    Cidr(IpAddr, u8),
    /// An inclusive range of the same family.
    Range(IpAddr, IpAddr),
}

fn v6_bits(addr: IpAddr) -> (bool, u128) {
    match canonical_ip(addr) {
        IpAddr::V4(v4) => (true, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (false, u128::from(v6)),
    }
}

impl IpRange {
    /// Parses one entry (see the type docs).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        const KEY: &str = "AnyOfClientIPAddressesOrRanges";
        let bad = |why: &str| ConfigError::invalid(KEY, text, why);
        let text_t = text.trim();
        let addr = |t: &str| {
            t.trim()
                .parse::<IpAddr>()
                .map(canonical_ip)
                .map_err(|_| bad("expected an IP address, address/prefix or address-address"))
        };
        if let Some((base, len)) = text_t.split_once('/') {
            let base = addr(base)?;
            let max = if base.is_ipv4() { 32 } else { 128 };
            let len: u8 = len
                .trim()
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| {
                    bad(if max == 32 {
                        "prefix length must be 0-32"
                    } else {
                        "prefix length must be 0-128"
                    })
                })?;
            Ok(IpRange::Cidr(base, len))
        } else if let Some((low, high)) = text_t.split_once('-') {
            let (low, high) = (addr(low)?, addr(high)?);
            let ((l4, l), (h4, h)) = (v6_bits(low), v6_bits(high));
            if l4 != h4 {
                return Err(bad("both ends of a range must be IPv4 or both IPv6"));
            }
            if l > h {
                return Err(bad("the low end is above the high end"));
            }
            Ok(IpRange::Range(low, high))
        } else {
            Ok(IpRange::Single(addr(text_t)?))
        }
    }

    /// Whether `addr` lies in the range (IPv4-mapped IPv6 addresses match IPv4 entries).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let (is4, a) = v6_bits(addr);
        match *self {
            IpRange::Single(x) => v6_bits(x) == (is4, a),
            IpRange::Range(low, high) => {
                let ((l4, l), (_, h)) = (v6_bits(low), v6_bits(high));
                l4 == is4 && l <= a && a <= h
            }
            IpRange::Cidr(base, len) => {
                let (b4, b) = v6_bits(base);
                if b4 != is4 {
                    return false;
                }
                let width = if is4 { 32 } else { 128 };
                let host_bits = width - u32::from(len);
                if host_bits >= 128 {
                    return true;
                }
                (a >> host_bits) == (b >> host_bits)
            }
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpRange::Single(a) => write!(f, "{a}"),
            IpRange::Cidr(a, len) => write!(f, "{a}/{len}"),
            IpRange::Range(l, h) => write!(f, "{l}-{h}"),
        }
    }
}

impl FromStr for IpRange {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IpRange::parse(s)
    }
}

impl Serialize for IpRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        IpRange::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The key per-IP limits and throttles count under: the IPv4 address, or the /64
/// prefix of an IPv6 address.
///
/// Why /64: an IPv6 client normally owns a whole /64 and can pick any address in it,
/// so counting per address would let one client multiply its per-IP allowance by
/// 2^64. This is stricter than Exchange, which counts each address.
pub fn client_key(addr: IpAddr) -> IpAddr {
    match canonical_ip(addr) {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

/// Longest server name in a `ValidPorts` entry (a DNS name).
pub const MAX_SERVER_NAME_LEN: usize = 253;

/// An entry of the RPC proxy's `ValidPorts` list: which back-end server and ports an
/// Outlook Anywhere client may ask the proxy to reach (MS-RPCH §3.2.3.5.1 leaves the
/// check to the proxy; Exchange keeps it in the `RpcProxy\ValidPorts` registry value).
///
/// ```text
/// valid-port = server ":" port ["-" port]
/// server     = "*" / hostname       ; "*" matches any server name
/// port       = 1*5DIGIT             ; 1-65535
/// ```
///
/// Server names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RpcPortRange {
    /// The server name, or `*`.
    pub server: String,
    /// Lowest allowed port.
    pub low: u16,
    /// Highest allowed port (equal to `low` for a single port).
    pub high: u16,
}

impl RpcPortRange {
    /// Parses one entry (see the type docs).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        const KEY: &str = "ValidPorts";
        let bad = |why: &str| ConfigError::invalid(KEY, text, why);
        let (server, ports) = text
            .rsplit_once(':')
            .ok_or_else(|| bad("expected server:port or server:low-high"))?;
        if server != "*" && !is_host_name(server) {
            return Err(bad("the server must be * or a host name"));
        }
        let port = |t: &str| {
            t.parse::<u16>()
                .ok()
                .filter(|p| *p > 0 && t.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad("ports are 1-65535"))
        };
        let (low, high) = match ports.split_once('-') {
            Some((l, h)) => (port(l)?, port(h)?),
            None => {
                let p = port(ports)?;
                (p, p)
            }
        };
        if low > high {
            return Err(bad("the low port is above the high port"));
        }
        Ok(RpcPortRange {
            server: server.to_owned(),
            low,
            high,
        })
    }

    /// Whether a request for `server:port` is allowed by this entry.
    pub fn allows(&self, server: &str, port: u16) -> bool {
        (self.server == "*" || self.server.eq_ignore_ascii_case(server))
            && (self.low..=self.high).contains(&port)
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and hyphens.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SERVER_NAME_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub(crate) fn validate_host_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if is_host_name(name) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            name,
            "expected a DNS host name (letters, digits, '-' and '.')",
        ))
    }
}

impl fmt::Display for RpcPortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}:{}", self.server, self.low)
        } else {
            write!(f, "{}:{}-{}", self.server, self.low, self.high)
        }
    }
}

impl FromStr for RpcPortRange {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RpcPortRange::parse(s)
    }
}

impl Serialize for RpcPortRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RpcPortRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        RpcPortRange::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The unspecified IPv4 address, for default bindings.
pub(crate) const ANY_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
/// The unspecified IPv6 address, for default bindings.
pub(crate) const ANY_V6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_match() {
        let cidr = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(cidr.contains(ip("10.255.1.2")));
        assert!(cidr.contains(ip("::ffff:10.1.2.3")));
        assert!(!cidr.contains(ip("11.0.0.1")));
        assert!(!cidr.contains(ip("::a00:1")));
        let all = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!(!all.contains(ip("2001:db8::1")));
        let all6 = IpRange::parse("::/0").unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
        let host = IpRange::parse("192.168.1.7/32").unwrap();
        assert!(host.contains(ip("192.168.1.7")) && !host.contains(ip("192.168.1.8")));
        let r = IpRange::parse("192.168.0.10-192.168.0.20").unwrap();
        assert!(r.contains(ip("192.168.0.10")) && r.contains(ip("192.168.0.20")));
        assert!(!r.contains(ip("192.168.0.21")));
        let v6 = IpRange::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let single = IpRange::parse(" 2001:db8::1 ").unwrap();
        assert!(single.contains(ip("2001:db8::1")));
        assert_eq!(single.to_string(), "2001:db8::1");
    }

    #[test]
    fn range_refusals() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.2-10.0.0.1",
            "10.0.0.1-::1",
            "host",
            "10.0.0.0/x",
            "1.2.3.4.5",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_keys() {
        assert_eq!(client_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn rpc_ports() {
        let r = RpcPortRange::parse("mbx01.example.com:6001-6004").unwrap();
        assert!(r.allows("MBX01.example.com", 6002));
        assert!(!r.allows("mbx01.example.com", 6005));
        assert!(!r.allows("mbx02", 6002));
        let any = RpcPortRange::parse("*:593").unwrap();
        assert!(any.allows("whatever", 593) && !any.allows("whatever", 594));
        assert_eq!(any.to_string(), "*:593");
        for bad in [
            "mbx01",
            "mbx01:0",
            "mbx01:6004-6001",
            ":6001",
            "bad host:6001",
            "mbx01:70000",
            "mbx01:+1",
        ] {
            assert!(RpcPortRange::parse(bad).is_err(), "{bad}");
        }
    }
}
