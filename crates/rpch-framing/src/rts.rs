//! RTS PDUs of RPC over HTTP v2: the 15 commands (MS-RPCH §2.2.3.5), the RTS header
//! (§2.2.3.6.1) and every named RTS PDU (§2.2.4), with constructors and a recognizer.
//!
//! Several named PDUs share flags and command types (for example CONN/C1 and CONN/C2, or the
//! five single-Cookie PDUs IN_R1/A5, IN_R1/A6, IN_R2/A2, IN_R2/A5 and OUT_R2/A4). MS-RPCH
//! §2.2.4.1 says a receiver tells them apart by the channel and state it is in, so
//! [`RtsPdu::kind`] returns the first candidate in §2.2.4 order, [`RtsPdu::candidate_kinds`]
//! lists all of them, and [`RtsPdu::is`] answers "is this a valid `kind`?" for a state machine
//! that knows what it expects.
//!
//! Decoding validates every value range §2.2.3.5 states. Encoding writes what the value holds;
//! [`RtsPdu::validate`] checks ranges before sending, and every constructor documents which
//! arguments must be in range.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::pdu::{
    DataRepresentation, HEADER_LEN, Limits, PacketType, PduError, PduHeader, PfcFlags,
};

/// Length of the RTS header: the common header plus `Flags` and `NumberOfCommands`
/// (MS-RPCH §2.2.3.6.1).
pub const RTS_HEADER_LEN: usize = HEADER_LEN + 4;

/// The RTS header `Flags` field (MS-RPCH §2.2.3.6.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RtsFlags(pub u16);

impl RtsFlags {
    /// `RTS_FLAG_NONE`.
    pub const NONE: RtsFlags = RtsFlags(0x0000);
    /// `RTS_FLAG_PING`: the sender is alive; also flushes the pipeline.
    pub const PING: RtsFlags = RtsFlags(0x0001);
    /// `RTS_FLAG_OTHER_CMD`: a command no other flag describes.
    pub const OTHER_CMD: RtsFlags = RtsFlags(0x0002);
    /// `RTS_FLAG_RECYCLE_CHANNEL`: part of channel recycling.
    pub const RECYCLE_CHANNEL: RtsFlags = RtsFlags(0x0004);
    /// `RTS_FLAG_IN_CHANNEL`: about IN channel communication.
    pub const IN_CHANNEL: RtsFlags = RtsFlags(0x0008);
    /// `RTS_FLAG_OUT_CHANNEL`: about OUT channel communication.
    pub const OUT_CHANNEL: RtsFlags = RtsFlags(0x0010);
    /// `RTS_FLAG_EOF`: last PDU on a channel.
    pub const EOF: RtsFlags = RtsFlags(0x0020);
    /// `RTS_FLAG_ECHO`: an echo request or response.
    pub const ECHO: RtsFlags = RtsFlags(0x0040);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: RtsFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with `other`'s bits added.
    pub const fn with(self, other: RtsFlags) -> RtsFlags {
        RtsFlags(self.0 | other.0)
    }
}

impl fmt::Debug for RtsFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 7] = [
            "PING",
            "OTHER_CMD",
            "RECYCLE_CHANNEL",
            "IN_CHANNEL",
            "OUT_CHANNEL",
            "EOF",
            "ECHO",
        ];
        write!(f, "RtsFlags({:#06x}", self.0)?;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

/// An RTS cookie (MS-RPCH §2.2.3.1): 16 opaque bytes naming a virtual connection, a channel or
/// an association group. Written on the wire as is, without byte swapping.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Cookie(pub [u8; 16]);

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// Forward destinations (MS-RPCH §2.2.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ForwardDestination {
    /// `FDClient` (0).
    Client = 0,
    /// `FDInProxy` (1).
    InProxy = 1,
    /// `FDServer` (2).
    Server = 2,
    /// `FDOutProxy` (3).
    OutProxy = 3,
}

impl ForwardDestination {
    /// The destination for a wire value 0..=3.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Client,
            1 => Self::InProxy,
            2 => Self::Server,
            3 => Self::OutProxy,
            _ => return None,
        })
    }
}

/// Flow control acknowledgment (MS-RPCH §2.2.3.4), 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowControlAck {
    /// Bytes received on the channel when the ack was issued.
    pub bytes_received: u32,
    /// Free bytes in the originator's ReceiveWindow.
    pub available_window: u32,
    /// The channel whose traffic is acknowledged.
    pub channel_cookie: Cookie,
}

/// RTS command types (MS-RPCH §2.2.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RtsCommandType {
    /// 0x0, §2.2.3.5.1.
    ReceiveWindowSize = 0,
    /// 0x1, §2.2.3.5.2.
    FlowControlAck = 1,
    /// 0x2, §2.2.3.5.3.
    ConnectionTimeout = 2,
    /// 0x3, §2.2.3.5.4.
    Cookie = 3,
    /// 0x4, §2.2.3.5.5.
    ChannelLifetime = 4,
    /// 0x5, §2.2.3.5.6.
    ClientKeepalive = 5,
    /// 0x6, §2.2.3.5.7.
    Version = 6,
    /// 0x7, §2.2.3.5.8.
    Empty = 7,
    /// 0x8, §2.2.3.5.9.
    Padding = 8,
    /// 0x9, §2.2.3.5.10.
    NegativeAnce = 9,
    /// 0xA, §2.2.3.5.11.
    Ance = 10,
    /// 0xB, §2.2.3.5.12.
    ClientAddress = 11,
    /// 0xC, §2.2.3.5.13.
    AssociationGroupId = 12,
    /// 0xD, §2.2.3.5.14.
    Destination = 13,
    /// 0xE, §2.2.3.5.15.
    PingTrafficSentNotify = 14,
}

impl RtsCommandType {
    /// The command type for a wire value 0..=14.
    pub fn from_u32(v: u32) -> Option<Self> {
        use RtsCommandType::*;
        Some(match v {
            0 => ReceiveWindowSize,
            1 => FlowControlAck,
            2 => ConnectionTimeout,
            3 => Cookie,
            4 => ChannelLifetime,
            5 => ClientKeepalive,
            6 => Version,
            7 => Empty,
            8 => Padding,
            9 => NegativeAnce,
            10 => Ance,
            11 => ClientAddress,
            12 => AssociationGroupId,
            13 => Destination,
            14 => PingTrafficSentNotify,
            _ => return None,
        })
    }
}

/// Inclusive ReceiveWindowSize range: 8 KiB to 256 KiB (MS-RPCH §2.2.3.5.1).
pub const RECEIVE_WINDOW_SIZE_RANGE: std::ops::RangeInclusive<u32> = 8192..=262_144;
/// Inclusive ConnectionTimeout range in milliseconds: 2 minutes to 4 hours (§2.2.3.5.3).
pub const CONNECTION_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 120_000..=14_400_000;
/// Inclusive ChannelLifetime range in bytes: 128 KiB to 2 GiB (§2.2.3.5.5).
pub const CHANNEL_LIFETIME_RANGE: std::ops::RangeInclusive<u32> = 131_072..=2_147_483_648;
/// Smallest non-zero ClientKeepalive in milliseconds (§2.2.3.5.6); 0 means the default.
pub const CLIENT_KEEPALIVE_MIN: u32 = 60_000;
/// What a ClientKeepalive of 0 means, in milliseconds (§2.2.3.5.6).
pub const CLIENT_KEEPALIVE_DEFAULT: u32 = 300_000;
/// Largest Padding `ConformanceCount` (§2.2.3.5.9).
pub const PADDING_MAX: u32 = 0xFFFF;
/// The RPC over HTTP v2 version senders put in Version commands (§2.2.3.5.7).
pub const RTS_VERSION: u32 = 1;

/// One RTS command (MS-RPCH §2.2.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtsCommand {
    /// ReceiveWindowSize (§2.2.3.5.1): window in bytes, [`RECEIVE_WINDOW_SIZE_RANGE`].
    ReceiveWindowSize(u32),
    /// FlowControlAck (§2.2.3.5.2).
    FlowControlAck(FlowControlAck),
    /// ConnectionTimeout (§2.2.3.5.3): milliseconds, [`CONNECTION_TIMEOUT_RANGE`].
    ConnectionTimeout(u32),
    /// Cookie (§2.2.3.5.4).
    Cookie(Cookie),
    /// ChannelLifetime (§2.2.3.5.5): bytes, [`CHANNEL_LIFETIME_RANGE`].
    ChannelLifetime(u32),
    /// ClientKeepalive (§2.2.3.5.6): milliseconds, 0 or at least [`CLIENT_KEEPALIVE_MIN`].
    ClientKeepalive(u32),
    /// Version (§2.2.3.5.7): any value; senders use [`RTS_VERSION`], receivers ignore it.
    Version(u32),
    /// Empty (§2.2.3.5.8).
    Empty,
    /// Padding (§2.2.3.5.9): the `ConformanceCount`, at most [`PADDING_MAX`]. The padding
    /// bytes are written as zeros and ignored when read, as the section requires.
    Padding(u32),
    /// NegativeANCE (§2.2.3.5.10).
    NegativeAnce,
    /// ANCE (§2.2.3.5.11).
    Ance,
    /// ClientAddress (§2.2.3.5.12, §2.2.3.2): IPv4 or IPv6, followed by 12 padding bytes.
    ClientAddress(IpAddr),
    /// AssociationGroupId (§2.2.3.5.13).
    AssociationGroupId(Cookie),
    /// Destination (§2.2.3.5.14).
    Destination(ForwardDestination),
    /// PingTrafficSentNotify (§2.2.3.5.15): bytes of ping traffic sent.
    PingTrafficSentNotify(u32),
}

impl RtsCommand {
    /// The command type.
    pub fn command_type(&self) -> RtsCommandType {
        match self {
            Self::ReceiveWindowSize(_) => RtsCommandType::ReceiveWindowSize,
            Self::FlowControlAck(_) => RtsCommandType::FlowControlAck,
            Self::ConnectionTimeout(_) => RtsCommandType::ConnectionTimeout,
            Self::Cookie(_) => RtsCommandType::Cookie,
            Self::ChannelLifetime(_) => RtsCommandType::ChannelLifetime,
            Self::ClientKeepalive(_) => RtsCommandType::ClientKeepalive,
            Self::Version(_) => RtsCommandType::Version,
            Self::Empty => RtsCommandType::Empty,
            Self::Padding(_) => RtsCommandType::Padding,
            Self::NegativeAnce => RtsCommandType::NegativeAnce,
            Self::Ance => RtsCommandType::Ance,
            Self::ClientAddress(_) => RtsCommandType::ClientAddress,
            Self::AssociationGroupId(_) => RtsCommandType::AssociationGroupId,
            Self::Destination(_) => RtsCommandType::Destination,
            Self::PingTrafficSentNotify(_) => RtsCommandType::PingTrafficSentNotify,
        }
    }

    /// Encoded size in bytes, the 4-byte command type included.
    pub fn encoded_len(&self) -> usize {
        4 + match self {
            Self::Empty | Self::NegativeAnce | Self::Ance => 0,
            Self::FlowControlAck(_) => 24,
            Self::Cookie(_) | Self::AssociationGroupId(_) => 16,
            // Saturating: an out-of-range count is refused by `validate` before encoding.
            Self::Padding(n) => 4 + (*n).min(PADDING_MAX) as usize,
            Self::ClientAddress(IpAddr::V4(_)) => 4 + 4 + 12,
            Self::ClientAddress(IpAddr::V6(_)) => 4 + 16 + 12,
            _ => 4,
        }
    }

    /// Checks the value ranges of MS-RPCH §2.2.3.5.
    pub fn validate(&self) -> Result<(), PduError> {
        let out = |command, value| Err(PduError::RtsValueOutOfRange { command, value });
        match *self {
            Self::ReceiveWindowSize(v) if !RECEIVE_WINDOW_SIZE_RANGE.contains(&v) => {
                out("ReceiveWindowSize", v)
            }
            Self::ConnectionTimeout(v) if !CONNECTION_TIMEOUT_RANGE.contains(&v) => {
                out("ConnectionTimeout", v)
            }
            Self::ChannelLifetime(v) if !CHANNEL_LIFETIME_RANGE.contains(&v) => {
                out("ChannelLifetime", v)
            }
            Self::ClientKeepalive(v) if v != 0 && v < CLIENT_KEEPALIVE_MIN => {
                out("ClientKeepalive", v)
            }
            Self::Padding(v) if v > PADDING_MAX => out("Padding", v),
            _ => Ok(()),
        }
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_u32_le(self.command_type() as u32);
        match self {
            Self::ReceiveWindowSize(v)
            | Self::ConnectionTimeout(v)
            | Self::ChannelLifetime(v)
            | Self::ClientKeepalive(v)
            | Self::Version(v)
            | Self::PingTrafficSentNotify(v) => out.put_u32_le(*v),
            Self::FlowControlAck(ack) => {
                out.put_u32_le(ack.bytes_received);
                out.put_u32_le(ack.available_window);
                out.put_slice(&ack.channel_cookie.0);
            }
            Self::Cookie(c) | Self::AssociationGroupId(c) => out.put_slice(&c.0),
            Self::Empty | Self::NegativeAnce | Self::Ance => {}
            Self::Padding(n) => {
                let n = (*n).min(PADDING_MAX);
                out.put_u32_le(n);
                out.put_bytes(0, n as usize);
            }
            Self::ClientAddress(IpAddr::V4(a)) => {
                out.put_u32_le(0);
                out.put_slice(&a.octets());
                out.put_bytes(0, 12);
            }
            Self::ClientAddress(IpAddr::V6(a)) => {
                out.put_u32_le(1);
                out.put_slice(&a.octets());
                out.put_bytes(0, 12);
            }
            Self::Destination(d) => out.put_u32_le(*d as u32),
        }
    }

    /// Decodes one command at the start of `input`; returns it and the bytes it used.
    /// Values are range-checked ([`RtsCommand::validate`]).
    ///
    /// ClientAddress (§2.2.3.2): the address bytes are taken in network order, as Windows and
    /// Wireshark treat them. Windows proxies have been seen sending an IPv4 ClientAddress whose
    /// address field is 0.0.0.0 with the real address in the first four padding bytes; when the
    /// address field is unspecified and those padding bytes are not, the padding address is
    /// returned (a deliberate deviation from "receivers MUST ignore" the padding, so that the
    /// client's address is not lost).
    pub fn decode(input: &[u8]) -> Result<(RtsCommand, usize), PduError> {
        let mut r = LeCursor { b: input, pos: 0 };
        let raw = r.u32("RTS command type")?;
        let ty = RtsCommandType::from_u32(raw).ok_or(PduError::UnknownRtsCommand(raw))?;
        let cmd = match ty {
            RtsCommandType::ReceiveWindowSize => {
                Self::ReceiveWindowSize(r.u32("ReceiveWindowSize")?)
            }
            RtsCommandType::FlowControlAck => Self::FlowControlAck(FlowControlAck {
                bytes_received: r.u32("FlowControlAck")?,
                available_window: r.u32("FlowControlAck")?,
                channel_cookie: Cookie(r.array16("FlowControlAck")?),
            }),
            RtsCommandType::ConnectionTimeout => {
                Self::ConnectionTimeout(r.u32("ConnectionTimeout")?)
            }
            RtsCommandType::Cookie => Self::Cookie(Cookie(r.array16("Cookie")?)),
            RtsCommandType::ChannelLifetime => Self::ChannelLifetime(r.u32("ChannelLifetime")?),
            RtsCommandType::ClientKeepalive => Self::ClientKeepalive(r.u32("ClientKeepalive")?),
            RtsCommandType::Version => Self::Version(r.u32("Version")?),
            RtsCommandType::Empty => Self::Empty,
            RtsCommandType::Padding => {
                let n = r.u32("Padding")?;
                if n > PADDING_MAX {
                    return Err(PduError::RtsValueOutOfRange {
                        command: "Padding",
                        value: n,
                    });
                }
                r.take(n as usize, "Padding")?;
                Self::Padding(n)
            }
            RtsCommandType::NegativeAnce => Self::NegativeAnce,
            RtsCommandType::Ance => Self::Ance,
            RtsCommandType::ClientAddress => {
                let kind = r.u32("ClientAddress")?;
                match kind {
                    0 => {
                        let a: [u8; 4] = r.take(4, "ClientAddress")?.try_into().expect("4 bytes");
                        let pad = r.take(12, "ClientAddress padding")?;
                        let quirk: [u8; 4] = pad[..4].try_into().expect("4 bytes");
                        let addr = if a == [0; 4] && quirk != [0; 4] {
                            quirk
                        } else {
                            a
                        };
                        Self::ClientAddress(IpAddr::V4(Ipv4Addr::from(addr)))
                    }
                    1 => {
                        let a: [u8; 16] = r.array16("ClientAddress")?;
                        r.take(12, "ClientAddress padding")?;
                        Self::ClientAddress(IpAddr::V6(Ipv6Addr::from(a)))
                    }
                    other => {
                        return Err(PduError::RtsValueOutOfRange {
                            command: "ClientAddress AddressType",
                            value: other,
                        });
                    }
                }
            }
            RtsCommandType::AssociationGroupId => {
                Self::AssociationGroupId(Cookie(r.array16("AssociationGroupId")?))
            }
            RtsCommandType::Destination => {
                let v = r.u32("Destination")?;
                Self::Destination(ForwardDestination::from_u32(v).ok_or(
                    PduError::RtsValueOutOfRange {
                        command: "Destination",
                        value: v,
                    },
                )?)
            }
            RtsCommandType::PingTrafficSentNotify => {
                Self::PingTrafficSentNotify(r.u32("PingTrafficSentNotify")?)
            }
        };
        cmd.validate()?;
        Ok((cmd, r.pos))
    }
}

/// RTS PDUs are always little-endian (MS-RPCH §2.2.3.6.1), so they use this small cursor
/// rather than the data-representation-aware reader of [`crate::pdu`].
struct LeCursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> LeCursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PduError> {
        if self.b.len() - self.pos < n {
            return Err(PduError::Truncated { what });
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, PduError> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn array16(&mut self, what: &'static str) -> Result<[u8; 16], PduError> {
        Ok(self.take(16, what)?.try_into().expect("16 bytes"))
    }
}

/// An RTS PDU: the RTS header fields and the command sequence (MS-RPCH §2.2.3.6). The common
/// header is implied: version 5.0, PTYPE 20, `PFC_FIRST_FRAG | PFC_LAST_FRAG`, little-endian,
/// auth_length 0, call_id 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct RtsPdu {
    /// The RTS header `Flags`.
    pub flags: RtsFlags,
    /// The commands, in order; `NumberOfCommands` is their count.
    pub commands: Vec<RtsCommand>,
}

/// Every named RTS PDU of MS-RPCH §2.2.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtsPduKind {
    /// CONN/A1 (MS-RPCH §2.2.4.2).
    ConnA1,
    /// CONN/A2 (MS-RPCH §2.2.4.3).
    ConnA2,
    /// CONN/A3 (MS-RPCH §2.2.4.4).
    ConnA3,
    /// CONN/B1 (MS-RPCH §2.2.4.5).
    ConnB1,
    /// CONN/B2 (MS-RPCH §2.2.4.6).
    ConnB2,
    /// CONN/B3 (MS-RPCH §2.2.4.7).
    ConnB3,
    /// CONN/C1 (MS-RPCH §2.2.4.8).
    ConnC1,
    /// CONN/C2 (MS-RPCH §2.2.4.9).
    ConnC2,
    /// IN_R1/A1 (MS-RPCH §2.2.4.10).
    InR1A1,
    /// IN_R1/A2 (MS-RPCH §2.2.4.11).
    InR1A2,
    /// IN_R1/A3 (MS-RPCH §2.2.4.12).
    InR1A3,
    /// IN_R1/A4 (MS-RPCH §2.2.4.13).
    InR1A4,
    /// IN_R1/A5 (MS-RPCH §2.2.4.14).
    InR1A5,
    /// IN_R1/A6 (MS-RPCH §2.2.4.15).
    InR1A6,
    /// IN_R1/B1 (MS-RPCH §2.2.4.16).
    InR1B1,
    /// IN_R1/B2 (MS-RPCH §2.2.4.17).
    InR1B2,
    /// IN_R2/A1 (MS-RPCH §2.2.4.18).
    InR2A1,
    /// IN_R2/A2 (MS-RPCH §2.2.4.19).
    InR2A2,
    /// IN_R2/A3 (MS-RPCH §2.2.4.20).
    InR2A3,
    /// IN_R2/A4 (MS-RPCH §2.2.4.21).
    InR2A4,
    /// IN_R2/A5 (MS-RPCH §2.2.4.22).
    InR2A5,
    /// OUT_R1/A1 (MS-RPCH §2.2.4.23).
    OutR1A1,
    /// OUT_R1/A2 (MS-RPCH §2.2.4.24).
    OutR1A2,
    /// OUT_R1/A3 (MS-RPCH §2.2.4.25).
    OutR1A3,
    /// OUT_R1/A4 (MS-RPCH §2.2.4.26).
    OutR1A4,
    /// OUT_R1/A5 (MS-RPCH §2.2.4.27).
    OutR1A5,
    /// OUT_R1/A6 (MS-RPCH §2.2.4.28).
    OutR1A6,
    /// OUT_R1/A7 (MS-RPCH §2.2.4.29).
    OutR1A7,
    /// OUT_R1/A8 (MS-RPCH §2.2.4.30).
    OutR1A8,
    /// OUT_R1/A9 (MS-RPCH §2.2.4.31).
    OutR1A9,
    /// OUT_R1/A10 (MS-RPCH §2.2.4.32).
    OutR1A10,
    /// OUT_R1/A11 (MS-RPCH §2.2.4.33).
    OutR1A11,
    /// OUT_R2/A1 (MS-RPCH §2.2.4.34).
    OutR2A1,
    /// OUT_R2/A2 (MS-RPCH §2.2.4.35).
    OutR2A2,
    /// OUT_R2/A3 (MS-RPCH §2.2.4.36).
    OutR2A3,
    /// OUT_R2/A4 (MS-RPCH §2.2.4.37).
    OutR2A4,
    /// OUT_R2/A5 (MS-RPCH §2.2.4.38).
    OutR2A5,
    /// OUT_R2/A6 (MS-RPCH §2.2.4.39).
    OutR2A6,
    /// OUT_R2/A7 (MS-RPCH §2.2.4.40).
    OutR2A7,
    /// OUT_R2/A8 (MS-RPCH §2.2.4.41).
    OutR2A8,
    /// OUT_R2/B1 (MS-RPCH §2.2.4.42).
    OutR2B1,
    /// OUT_R2/B2 (MS-RPCH §2.2.4.43).
    OutR2B2,
    /// OUT_R2/B3 (MS-RPCH §2.2.4.44).
    OutR2B3,
    /// OUT_R2/C1 (MS-RPCH §2.2.4.45).
    OutR2C1,
    /// Keep-Alive (MS-RPCH §2.2.4.46).
    KeepAlive,
    /// Ping Traffic Sent Notify (MS-RPCH §2.2.4.47).
    PingTrafficSentNotify,
    /// Echo (MS-RPCH §2.2.4.48).
    Echo,
    /// Ping (MS-RPCH §2.2.4.49).
    Ping,
    /// FlowControlAck (MS-RPCH §2.2.4.50).
    FlowControlAck,
    /// FlowControlAckWithDestination (MS-RPCH §2.2.4.51).
    FlowControlAckWithDestination,
}

use RtsCommandType as T;

const VCCCR: &[T] = &[T::Version, T::Cookie, T::Cookie, T::Cookie];

impl RtsPduKind {
    /// All named PDUs, in MS-RPCH §2.2.4 order.
    pub const ALL: [RtsPduKind; 50] = {
        use RtsPduKind::*;
        [
            ConnA1,
            ConnA2,
            ConnA3,
            ConnB1,
            ConnB2,
            ConnB3,
            ConnC1,
            ConnC2,
            InR1A1,
            InR1A2,
            InR1A3,
            InR1A4,
            InR1A5,
            InR1A6,
            InR1B1,
            InR1B2,
            InR2A1,
            InR2A2,
            InR2A3,
            InR2A4,
            InR2A5,
            OutR1A1,
            OutR1A2,
            OutR1A3,
            OutR1A4,
            OutR1A5,
            OutR1A6,
            OutR1A7,
            OutR1A8,
            OutR1A9,
            OutR1A10,
            OutR1A11,
            OutR2A1,
            OutR2A2,
            OutR2A3,
            OutR2A4,
            OutR2A5,
            OutR2A6,
            OutR2A7,
            OutR2A8,
            OutR2B1,
            OutR2B2,
            OutR2B3,
            OutR2C1,
            KeepAlive,
            PingTrafficSentNotify,
            Echo,
            Ping,
            FlowControlAck,
            FlowControlAckWithDestination,
        ]
    };

    /// The name MS-RPCH uses, e.g. `"CONN/A1"`.
    pub fn name(self) -> &'static str {
        self.info().0
    }

    /// The MS-RPCH section that defines this PDU, e.g. `"2.2.4.2"`.
    pub fn section(self) -> &'static str {
        self.info().1
    }

    /// The required `Flags` value (§2.2.4).
    pub fn flags(self) -> RtsFlags {
        self.info().2
    }

    /// The required command types in order (§2.2.4). OUT_R2/C1 lists Empty; it also accepts a
    /// single Padding command in its place (§2.2.4.45).
    pub fn command_types(self) -> &'static [RtsCommandType] {
        self.info().3
    }

    /// For PDUs whose Destination command has a fixed value (§2.2.4), that value.
    pub fn required_destination(self) -> Option<ForwardDestination> {
        use RtsPduKind::*;
        match self {
            InR1A3 | InR1A4 | InR2A3 | InR2A4 | OutR1A1 | OutR1A2 | OutR1A5 | OutR1A6 | OutR2A1
            | OutR2A2 | OutR2A5 | OutR2A6 => Some(ForwardDestination::Client),
            OutR1A7 | OutR1A8 | OutR2A7 | OutR2A8 => Some(ForwardDestination::Server),
            _ => None,
        }
    }

    #[rustfmt::skip]
    fn info(self) -> (&'static str, &'static str, RtsFlags, &'static [RtsCommandType]) {
        use RtsPduKind::*;
        const N: RtsFlags = RtsFlags::NONE;
        const R: RtsFlags = RtsFlags::RECYCLE_CHANNEL;
        const O: RtsFlags = RtsFlags::OUT_CHANNEL;
        match self {
            ConnA1 => ("CONN/A1", "2.2.4.2", N, &[T::Version, T::Cookie, T::Cookie, T::ReceiveWindowSize]),
            ConnA2 => ("CONN/A2", "2.2.4.3", O, &[T::Version, T::Cookie, T::Cookie, T::ChannelLifetime, T::ReceiveWindowSize]),
            ConnA3 => ("CONN/A3", "2.2.4.4", N, &[T::ConnectionTimeout]),
            ConnB1 => ("CONN/B1", "2.2.4.5", N, &[T::Version, T::Cookie, T::Cookie, T::ChannelLifetime, T::ClientKeepalive, T::AssociationGroupId]),
            ConnB2 => ("CONN/B2", "2.2.4.6", RtsFlags::IN_CHANNEL, &[T::Version, T::Cookie, T::Cookie, T::ReceiveWindowSize, T::ConnectionTimeout, T::AssociationGroupId, T::ClientAddress]),
            ConnB3 => ("CONN/B3", "2.2.4.7", N, &[T::ReceiveWindowSize, T::Version]),
            ConnC1 => ("CONN/C1", "2.2.4.8", N, &[T::Version, T::ReceiveWindowSize, T::ConnectionTimeout]),
            ConnC2 => ("CONN/C2", "2.2.4.9", N, &[T::Version, T::ReceiveWindowSize, T::ConnectionTimeout]),
            InR1A1 => ("IN_R1/A1", "2.2.4.10", R, VCCCR),
            InR1A2 => ("IN_R1/A2", "2.2.4.11", RtsFlags(0x0008 | 0x0004), &[T::Version, T::Cookie, T::Cookie, T::Cookie, T::ReceiveWindowSize, T::ConnectionTimeout]),
            InR1A3 => ("IN_R1/A3", "2.2.4.12", N, &[T::Destination, T::Version, T::ReceiveWindowSize, T::ConnectionTimeout]),
            InR1A4 => ("IN_R1/A4", "2.2.4.13", N, &[T::Destination, T::Version, T::ReceiveWindowSize, T::ConnectionTimeout]),
            InR1A5 => ("IN_R1/A5", "2.2.4.14", N, &[T::Cookie]),
            InR1A6 => ("IN_R1/A6", "2.2.4.15", N, &[T::Cookie]),
            InR1B1 => ("IN_R1/B1", "2.2.4.16", N, &[T::Empty]),
            InR1B2 => ("IN_R1/B2", "2.2.4.17", N, &[T::ReceiveWindowSize]),
            InR2A1 => ("IN_R2/A1", "2.2.4.18", R, VCCCR),
            InR2A2 => ("IN_R2/A2", "2.2.4.19", N, &[T::Cookie]),
            InR2A3 => ("IN_R2/A3", "2.2.4.20", N, &[T::Destination]),
            InR2A4 => ("IN_R2/A4", "2.2.4.21", N, &[T::Destination]),
            InR2A5 => ("IN_R2/A5", "2.2.4.22", N, &[T::Cookie]),
            OutR1A1 => ("OUT_R1/A1", "2.2.4.23", R, &[T::Destination]),
            OutR1A2 => ("OUT_R1/A2", "2.2.4.24", R, &[T::Destination]),
            OutR1A3 => ("OUT_R1/A3", "2.2.4.25", R, &[T::Version, T::Cookie, T::Cookie, T::Cookie, T::ReceiveWindowSize]),
            OutR1A4 => ("OUT_R1/A4", "2.2.4.26", RtsFlags(0x0004 | 0x0010), &[T::Version, T::Cookie, T::Cookie, T::Cookie, T::ChannelLifetime, T::ReceiveWindowSize, T::ConnectionTimeout]),
            OutR1A5 => ("OUT_R1/A5", "2.2.4.27", O, &[T::Destination, T::Version, T::ConnectionTimeout]),
            OutR1A6 => ("OUT_R1/A6", "2.2.4.28", O, &[T::Destination, T::Version, T::ConnectionTimeout]),
            OutR1A7 => ("OUT_R1/A7", "2.2.4.29", O, &[T::Destination, T::Cookie]),
            OutR1A8 => ("OUT_R1/A8", "2.2.4.30", O, &[T::Destination, T::Cookie]),
            OutR1A9 => ("OUT_R1/A9", "2.2.4.31", N, &[T::Ance]),
            OutR1A10 => ("OUT_R1/A10", "2.2.4.32", N, &[T::Ance]),
            OutR1A11 => ("OUT_R1/A11", "2.2.4.33", N, &[T::Ance]),
            OutR2A1 => ("OUT_R2/A1", "2.2.4.34", R, &[T::Destination]),
            OutR2A2 => ("OUT_R2/A2", "2.2.4.35", R, &[T::Destination]),
            OutR2A3 => ("OUT_R2/A3", "2.2.4.36", R, &[T::Version, T::Cookie, T::Cookie, T::Cookie, T::ReceiveWindowSize]),
            OutR2A4 => ("OUT_R2/A4", "2.2.4.37", N, &[T::Cookie]),
            OutR2A5 => ("OUT_R2/A5", "2.2.4.38", N, &[T::Destination, T::Ance]),
            OutR2A6 => ("OUT_R2/A6", "2.2.4.39", N, &[T::Destination, T::Ance]),
            OutR2A7 => ("OUT_R2/A7", "2.2.4.40", O, &[T::Destination, T::Cookie, T::Version]),
            OutR2A8 => ("OUT_R2/A8", "2.2.4.41", O, &[T::Destination, T::Cookie]),
            OutR2B1 => ("OUT_R2/B1", "2.2.4.42", N, &[T::Ance]),
            OutR2B2 => ("OUT_R2/B2", "2.2.4.43", N, &[T::NegativeAnce]),
            OutR2B3 => ("OUT_R2/B3", "2.2.4.44", RtsFlags::EOF, &[T::Ance]),
            OutR2C1 => ("OUT_R2/C1", "2.2.4.45", RtsFlags::PING, &[T::Empty]),
            KeepAlive => ("Keep-Alive", "2.2.4.46", RtsFlags::OTHER_CMD, &[T::ClientKeepalive]),
            PingTrafficSentNotify => ("Ping Traffic Sent Notify", "2.2.4.47", RtsFlags::OTHER_CMD, &[T::PingTrafficSentNotify]),
            Echo => ("Echo", "2.2.4.48", RtsFlags::ECHO, &[]),
            Ping => ("Ping", "2.2.4.49", RtsFlags::PING, &[]),
            FlowControlAck => ("FlowControlAck", "2.2.4.50", RtsFlags::OTHER_CMD, &[T::FlowControlAck]),
            FlowControlAckWithDestination => ("FlowControlAckWithDestination", "2.2.4.51", RtsFlags::OTHER_CMD, &[T::Destination, T::FlowControlAck]),
        }
    }
}

impl fmt::Display for RtsPduKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn v(version: u32) -> RtsCommand {
    RtsCommand::Version(version)
}
fn c(cookie: Cookie) -> RtsCommand {
    RtsCommand::Cookie(cookie)
}
fn rws(size: u32) -> RtsCommand {
    RtsCommand::ReceiveWindowSize(size)
}
fn ct(ms: u32) -> RtsCommand {
    RtsCommand::ConnectionTimeout(ms)
}
fn dest(d: ForwardDestination) -> RtsCommand {
    RtsCommand::Destination(d)
}
const TO_CLIENT: RtsCommand = RtsCommand::Destination(ForwardDestination::Client);
const TO_SERVER: RtsCommand = RtsCommand::Destination(ForwardDestination::Server);

impl RtsPdu {
    /// An RTS PDU with `flags` and `commands`.
    pub fn new(flags: RtsFlags, commands: Vec<RtsCommand>) -> Self {
        Self { flags, commands }
    }

    /// Encoded size: the 20-byte RTS header plus every command.
    pub fn encoded_len(&self) -> usize {
        RTS_HEADER_LEN
            + self
                .commands
                .iter()
                .map(RtsCommand::encoded_len)
                .sum::<usize>()
    }

    /// Checks every command's value range and that the PDU fits `frag_length` and
    /// `NumberOfCommands` (16 bits each).
    pub fn validate(&self) -> Result<(), PduError> {
        for cmd in &self.commands {
            cmd.validate()?;
        }
        if self.encoded_len() > usize::from(u16::MAX) || self.commands.len() > usize::from(u16::MAX)
        {
            return Err(PduError::TooLargeToEncode { what: "RTS PDU" });
        }
        Ok(())
    }

    /// Appends the whole PDU, common header included (PTYPE 20, `PFC_FIRST_FRAG |
    /// PFC_LAST_FRAG`, little-endian, call_id 0), as MS-RPCH §2.2.3.6.1 requires.
    ///
    /// Values are written as held; use [`RtsPdu::validate`] or [`RtsPdu::try_encode`] for PDUs
    /// not built by the constructors below.
    ///
    /// # Panics
    ///
    /// If the PDU does not fit 65535 bytes (only possible with about 2 000 hand-added
    /// commands or many large Padding commands); [`RtsPdu::try_encode`] returns an error
    /// instead.
    pub fn encode(&self, out: &mut BytesMut) {
        let len = self.encoded_len();
        assert!(
            len <= usize::from(u16::MAX) && self.commands.len() <= usize::from(u16::MAX),
            "RTS PDU of {len} bytes does not fit frag_length"
        );
        let header = PduHeader {
            frag_length: len as u16,
            ..PduHeader::new(PacketType::Rts, 0)
        };
        out.reserve(len);
        header.encode(out);
        out.put_u16_le(self.flags.0);
        out.put_u16_le(self.commands.len() as u16);
        for cmd in &self.commands {
            cmd.write(out);
        }
    }

    /// [`RtsPdu::encode`] after [`RtsPdu::validate`]: never panics, never writes a value a
    /// conforming peer would refuse.
    pub fn try_encode(&self, out: &mut BytesMut) -> Result<(), PduError> {
        self.validate()?;
        self.encode(out);
        Ok(())
    }

    /// The encoded PDU as `Bytes`.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out.freeze()
    }

    /// Decodes a whole RTS PDU (exactly one PDU, common header included) and checks the header
    /// rules of MS-RPCH §2.2.3.6.1 and every command's value range.
    pub fn decode(bytes: &[u8]) -> Result<RtsPdu, PduError> {
        let header = PduHeader::parse(bytes, &Limits::default())?;
        if header.packet_type != PacketType::Rts {
            return Err(PduError::UnexpectedPacketType {
                expected: PacketType::Rts,
                found: header.packet_type,
            });
        }
        let len = usize::from(header.frag_length);
        if bytes.len() < len {
            return Err(PduError::Truncated { what: "RTS PDU" });
        }
        if bytes.len() > len {
            return Err(PduError::TrailingBytes {
                what: "RTS PDU (beyond frag_length)",
                count: bytes.len() - len,
            });
        }
        Self::decode_body(&header, bytes)
    }

    /// Decodes the RTS part of a PDU whose common header is already parsed; `bytes` is the
    /// whole PDU (`frag_length` bytes).
    pub(crate) fn decode_body(header: &PduHeader, bytes: &[u8]) -> Result<RtsPdu, PduError> {
        if header.data_rep.0[0] != DataRepresentation::LITTLE_ENDIAN.0[0]
            || header.data_rep.0[1] != 0
        {
            return Err(PduError::InvalidRtsHeader(
                "packed_drep must be little-endian, ASCII, IEEE",
            ));
        }
        if header.pfc_flags != PfcFlags::FIRST_AND_LAST {
            return Err(PduError::InvalidRtsHeader(
                "pfc_flags must be exactly PFC_FIRST_FRAG | PFC_LAST_FRAG",
            ));
        }
        if header.auth_length != 0 {
            return Err(PduError::InvalidRtsHeader("auth_length must be 0"));
        }
        if header.call_id != 0 {
            return Err(PduError::InvalidRtsHeader("call_id must be 0"));
        }
        let bytes = &bytes[..usize::from(header.frag_length)];
        if bytes.len() < RTS_HEADER_LEN {
            return Err(PduError::Truncated { what: "RTS header" });
        }
        let flags = RtsFlags(u16::from_le_bytes([bytes[16], bytes[17]]));
        let count = u16::from_le_bytes([bytes[18], bytes[19]]);
        let mut rest = &bytes[RTS_HEADER_LEN..];
        // Each command takes at least 4 bytes, so the count cannot make us allocate more than
        // the PDU length justifies.
        let mut commands = Vec::with_capacity(usize::from(count).min(rest.len() / 4));
        for _ in 0..count {
            let (cmd, used) = RtsCommand::decode(rest)?;
            commands.push(cmd);
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            return Err(PduError::TrailingBytes {
                what: "RTS commands",
                count: rest.len(),
            });
        }
        Ok(RtsPdu { flags, commands })
    }

    /// Whether this PDU has the flags and command types of `kind` (MS-RPCH §2.2.4.1), and
    /// the fixed Destination value where §2.2.4 prescribes one.
    pub fn is(&self, kind: RtsPduKind) -> bool {
        if self.flags != kind.flags() {
            return false;
        }
        let types = kind.command_types();
        if kind == RtsPduKind::OutR2C1 {
            return matches!(
                self.commands.as_slice(),
                [RtsCommand::Empty | RtsCommand::Padding(_)]
            );
        }
        if self.commands.len() != types.len()
            || !self
                .commands
                .iter()
                .zip(types)
                .all(|(c, t)| c.command_type() == *t)
        {
            return false;
        }
        match kind.required_destination() {
            Some(d) => self.destination() == Some(d),
            None => true,
        }
    }

    /// The first named PDU (in §2.2.4 order) this PDU matches, or `None` for an RTS PDU that
    /// is none of them. See the module docs for PDUs that share a shape.
    pub fn kind(&self) -> Option<RtsPduKind> {
        RtsPduKind::ALL.into_iter().find(|k| self.is(*k))
    }

    /// Every named PDU this PDU matches, in §2.2.4 order.
    pub fn candidate_kinds(&self) -> Vec<RtsPduKind> {
        RtsPduKind::ALL
            .into_iter()
            .filter(|k| self.is(*k))
            .collect()
    }

    fn find<T>(&self, f: impl Fn(&RtsCommand) -> Option<T>) -> Option<T> {
        self.commands.iter().find_map(f)
    }

    /// The first Version command's value.
    pub fn version(&self) -> Option<u32> {
        self.find(|c| match c {
            RtsCommand::Version(v) => Some(*v),
            _ => None,
        })
    }

    /// The Cookie commands' values, in order (for CONN/A1: virtual connection, OUT channel).
    pub fn cookies(&self) -> Vec<Cookie> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                RtsCommand::Cookie(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// The first ReceiveWindowSize value.
    pub fn receive_window_size(&self) -> Option<u32> {
        self.find(|c| match c {
            RtsCommand::ReceiveWindowSize(v) => Some(*v),
            _ => None,
        })
    }

    /// The first ConnectionTimeout value, in milliseconds.
    pub fn connection_timeout(&self) -> Option<u32> {
        self.find(|c| match c {
            RtsCommand::ConnectionTimeout(v) => Some(*v),
            _ => None,
        })
    }

    /// The first ChannelLifetime value, in bytes.
    pub fn channel_lifetime(&self) -> Option<u32> {
        self.find(|c| match c {
            RtsCommand::ChannelLifetime(v) => Some(*v),
            _ => None,
        })
    }

    /// The first ClientKeepalive value as sent (0 means [`CLIENT_KEEPALIVE_DEFAULT`]).
    pub fn client_keepalive(&self) -> Option<u32> {
        self.find(|c| match c {
            RtsCommand::ClientKeepalive(v) => Some(*v),
            _ => None,
        })
    }

    /// The first Destination value.
    pub fn destination(&self) -> Option<ForwardDestination> {
        self.find(|c| match c {
            RtsCommand::Destination(d) => Some(*d),
            _ => None,
        })
    }

    /// The first FlowControlAck command's acknowledgment.
    pub fn ack(&self) -> Option<FlowControlAck> {
        self.find(|c| match c {
            RtsCommand::FlowControlAck(a) => Some(*a),
            _ => None,
        })
    }

    /// The AssociationGroupId.
    pub fn association_group_id(&self) -> Option<Cookie> {
        self.find(|c| match c {
            RtsCommand::AssociationGroupId(a) => Some(*a),
            _ => None,
        })
    }

    /// The ClientAddress.
    pub fn client_address(&self) -> Option<IpAddr> {
        self.find(|c| match c {
            RtsCommand::ClientAddress(a) => Some(*a),
            _ => None,
        })
    }

    /// The PingTrafficSentNotify value.
    pub fn ping_traffic_sent(&self) -> Option<u32> {
        self.find(|c| match c {
            RtsCommand::PingTrafficSentNotify(v) => Some(*v),
            _ => None,
        })
    }

    // ---- constructors, one per MS-RPCH §2.2.4 PDU, arguments in field order ----

    /// CONN/A1 (§2.2.4.2), client → outbound proxy. `receive_window_size` in
    /// [`RECEIVE_WINDOW_SIZE_RANGE`]. 76 bytes.
    pub fn conn_a1(
        version: u32,
        virtual_connection_cookie: Cookie,
        out_channel_cookie: Cookie,
        receive_window_size: u32,
    ) -> Self {
        Self::new(
            RtsFlags::NONE,
            vec![
                v(version),
                c(virtual_connection_cookie),
                c(out_channel_cookie),
                rws(receive_window_size),
            ],
        )
    }

    /// CONN/A2 (§2.2.4.3), outbound proxy → server. 84 bytes.
    pub fn conn_a2(
        version: u32,
        virtual_connection_cookie: Cookie,
        out_channel_cookie: Cookie,
        channel_lifetime: u32,
        receive_window_size: u32,
    ) -> Self {
        Self::new(
            RtsFlags::OUT_CHANNEL,
            vec![
                v(version),
                c(virtual_connection_cookie),
                c(out_channel_cookie),
                RtsCommand::ChannelLifetime(channel_lifetime),
                rws(receive_window_size),
            ],
        )
    }

    /// CONN/A3 (§2.2.4.4), outbound proxy → client. 28 bytes.
    pub fn conn_a3(connection_timeout: u32) -> Self {
        Self::new(RtsFlags::NONE, vec![ct(connection_timeout)])
    }

    /// CONN/B1 (§2.2.4.5), client → inbound proxy. 104 bytes.
    pub fn conn_b1(
        version: u32,
        virtual_connection_cookie: Cookie,
        in_channel_cookie: Cookie,
        channel_lifetime: u32,
        client_keepalive: u32,
        association_group_id: Cookie,
    ) -> Self {
        Self::new(
            RtsFlags::NONE,
            vec![
                v(version),
                c(virtual_connection_cookie),
                c(in_channel_cookie),
                RtsCommand::ChannelLifetime(channel_lifetime),
                RtsCommand::ClientKeepalive(client_keepalive),
                RtsCommand::AssociationGroupId(association_group_id),
            ],
        )
    }

    /// CONN/B2 (§2.2.4.6), inbound proxy → server. 128 bytes (IPv4) or 140 (IPv6).
    #[allow(clippy::too_many_arguments)] // one argument per MS-RPCH field
    pub fn conn_b2(
        version: u32,
        virtual_connection_cookie: Cookie,
        in_channel_cookie: Cookie,
        receive_window_size: u32,
        connection_timeout: u32,
        association_group_id: Cookie,
        client_address: IpAddr,
    ) -> Self {
        Self::new(
            RtsFlags::IN_CHANNEL,
            vec![
                v(version),
                c(virtual_connection_cookie),
                c(in_channel_cookie),
                rws(receive_window_size),
                ct(connection_timeout),
                RtsCommand::AssociationGroupId(association_group_id),
                RtsCommand::ClientAddress(client_address),
            ],
        )
    }

    /// CONN/B3 (§2.2.4.7), server → inbound proxy. 36 bytes.
    pub fn conn_b3(receive_window_size: u32, version: u32) -> Self {
        Self::new(RtsFlags::NONE, vec![rws(receive_window_size), v(version)])
    }

    /// CONN/C1 (§2.2.4.8), server → outbound proxy. 44 bytes.
    pub fn conn_c1(version: u32, receive_window_size: u32, connection_timeout: u32) -> Self {
        Self::new(
            RtsFlags::NONE,
            vec![v(version), rws(receive_window_size), ct(connection_timeout)],
        )
    }

    /// CONN/C2 (§2.2.4.9), outbound proxy → client; same shape as CONN/C1. 44 bytes.
    pub fn conn_c2(version: u32, receive_window_size: u32, connection_timeout: u32) -> Self {
        Self::conn_c1(version, receive_window_size, connection_timeout)
    }

    /// IN_R1/A1 (§2.2.4.10), client → successor inbound proxy. 88 bytes.
    pub fn in_r1_a1(
        version: u32,
        virtual_connection_cookie: Cookie,
        predecessor_channel_cookie: Cookie,
        successor_channel_cookie: Cookie,
    ) -> Self {
        Self::new(
            RtsFlags::RECYCLE_CHANNEL,
            vec![
                v(version),
                c(virtual_connection_cookie),
                c(predecessor_channel_cookie),
                c(successor_channel_cookie),
            ],
        )
    }

    /// IN_R1/A2 (§2.2.4.11), successor inbound proxy → server. 104 bytes.
    pub fn in_r1_a2(
        version: u32,
        virtual_connection_cookie: Cookie,
        predecessor_channel_cookie: Cookie,
        successor_channel_cookie: Cookie,
        inbound_proxy_receive_window_size: u32,
        inbound_proxy_connection_timeout: u32,
    ) -> Self {
        Self::new(
            RtsFlags::IN_CHANNEL.with(RtsFlags::RECYCLE_CHANNEL),
            vec![
                v(version),
                c(virtual_connection_cookie),
                c(predecessor_channel_cookie),
                c(successor_channel_cookie),
                rws(inbound_proxy_receive_window_size),
                ct(inbound_proxy_connection_timeout),
            ],
        )
    }

    /// IN_R1/A3 (§2.2.4.12), server → outbound proxy; Destination FDClient. 52 bytes.
    pub fn in_r1_a3(
        version: u32,
        inbound_proxy_receive_window_size: u32,
        inbound_proxy_connection_timeout: u32,
    ) -> Self {
        Self::new(
            RtsFlags::NONE,
            vec![
                TO_CLIENT,
                v(version),
                rws(inbound_proxy_receive_window_size),
                ct(inbound_proxy_connection_timeout),
            ],
        )
    }

    /// IN_R1/A4 (§2.2.4.13), outbound proxy → client; same shape as IN_R1/A3. 52 bytes.
    pub fn in_r1_a4(
        version: u32,
        inbound_proxy_receive_window_size: u32,
        inbound_proxy_connection_timeout: u32,
    ) -> Self {
        Self::in_r1_a3(
            version,
            inbound_proxy_receive_window_size,
            inbound_proxy_connection_timeout,
        )
    }

    /// IN_R1/A5 (§2.2.4.14), client → predecessor inbound proxy. 40 bytes.
    pub fn in_r1_a5(successor_in_channel_cookie: Cookie) -> Self {
        Self::new(RtsFlags::NONE, vec![c(successor_in_channel_cookie)])
    }

    /// IN_R1/A6 (§2.2.4.15), predecessor inbound proxy → server. 40 bytes.
    pub fn in_r1_a6(successor_in_channel_cookie: Cookie) -> Self {
        Self::in_r1_a5(successor_in_channel_cookie)
    }

    /// IN_R1/B1 (§2.2.4.16), predecessor inbound proxy → server: one Empty command. 24 bytes.
    pub fn in_r1_b1() -> Self {
        Self::new(RtsFlags::NONE, vec![RtsCommand::Empty])
    }

    /// IN_R1/B2 (§2.2.4.17), server → successor inbound proxy. 28 bytes.
    pub fn in_r1_b2(server_receive_window_size: u32) -> Self {
        Self::new(RtsFlags::NONE, vec![rws(server_receive_window_size)])
    }

    /// IN_R2/A1 (§2.2.4.18), client → inbound proxy; same shape as IN_R1/A1. 88 bytes.
    pub fn in_r2_a1(
        version: u32,
        virtual_connection_cookie: Cookie,
        predecessor_channel_cookie: Cookie,
        successor_channel_cookie: Cookie,
    ) -> Self {
        Self::in_r1_a1(
            version,
            virtual_connection_cookie,
            predecessor_channel_cookie,
            successor_channel_cookie,
        )
    }

    /// IN_R2/A2 (§2.2.4.19), inbound proxy → server. 40 bytes.
    pub fn in_r2_a2(successor_channel_cookie: Cookie) -> Self {
        Self::in_r1_a5(successor_channel_cookie)
    }

    /// IN_R2/A3 (§2.2.4.20), server → outbound proxy; Destination FDClient. 28 bytes.
    pub fn in_r2_a3() -> Self {
        Self::new(RtsFlags::NONE, vec![TO_CLIENT])
    }

    /// IN_R2/A4 (§2.2.4.21), outbound proxy → client; Destination FDClient. 28 bytes.
    pub fn in_r2_a4() -> Self {
        Self::in_r2_a3()
    }

    /// IN_R2/A5 (§2.2.4.22), client → inbound proxy on the predecessor channel. 40 bytes.
    pub fn in_r2_a5(successor_channel_cookie: Cookie) -> Self {
        Self::in_r1_a5(successor_channel_cookie)
    }

    /// OUT_R1/A1 (§2.2.4.23), server → outbound proxy; Destination FDClient. 28 bytes.
    pub fn out_r1_a1() -> Self {
        Self::new(RtsFlags::RECYCLE_CHANNEL, vec![TO_CLIENT])
    }

    /// OUT_R1/A2 (§2.2.4.24), outbound proxy → client. 28 bytes.
    pub fn out_r1_a2() -> Self {
        Self::out_r1_a1()
    }

    /// OUT_R1/A3 (§2.2.4.25), client → successor outbound proxy. 96 bytes.
    pub fn out_r1_a3(
        version: u32,
        virtual_connection_cookie: Cookie,
        predecessor_channel_cookie: Cookie,
        successor_channel_cookie: Cookie,
        outbound_proxy_receive_window_size: u32,
    ) -> Self {
        Self::new(
            RtsFlags::RECYCLE_CHANNEL,
            vec![
                v(version),
                c(virtual_connection_cookie),
                c(predecessor_channel_cookie),
                c(successor_channel_cookie),
                rws(outbound_proxy_receive_window_size),
            ],
        )
    }

    /// OUT_R1/A4 (§2.2.4.26), successor outbound proxy → server. 112 bytes.
    #[allow(clippy::too_many_arguments)] // one argument per MS-RPCH field
    pub fn out_r1_a4(
        version: u32,
        virtual_connection_cookie: Cookie,
        predecessor_channel_cookie: Cookie,
        successor_channel_cookie: Cookie,
        channel_lifetime: u32,
        outbound_proxy_receive_window_size: u32,
        outbound_proxy_connection_timeout: u32,
    ) -> Self {
        Self::new(
            RtsFlags::RECYCLE_CHANNEL.with(RtsFlags::OUT_CHANNEL),
            vec![
                v(version),
                c(virtual_connection_cookie),
                c(predecessor_channel_cookie),
                c(successor_channel_cookie),
                RtsCommand::ChannelLifetime(channel_lifetime),
                rws(outbound_proxy_receive_window_size),
                ct(outbound_proxy_connection_timeout),
            ],
        )
    }

    /// OUT_R1/A5 (§2.2.4.27), server → predecessor outbound proxy; Destination FDClient.
    /// 44 bytes.
    pub fn out_r1_a5(version: u32, outbound_proxy_connection_timeout: u32) -> Self {
        Self::new(
            RtsFlags::OUT_CHANNEL,
            vec![TO_CLIENT, v(version), ct(outbound_proxy_connection_timeout)],
        )
    }

    /// OUT_R1/A6 (§2.2.4.28), predecessor outbound proxy → client. 44 bytes.
    pub fn out_r1_a6(version: u32, outbound_proxy_connection_timeout: u32) -> Self {
        Self::out_r1_a5(version, outbound_proxy_connection_timeout)
    }

    /// OUT_R1/A7 (§2.2.4.29), client → inbound proxy; Destination FDServer. 48 bytes.
    pub fn out_r1_a7(successor_channel_cookie: Cookie) -> Self {
        Self::new(
            RtsFlags::OUT_CHANNEL,
            vec![TO_SERVER, c(successor_channel_cookie)],
        )
    }

    /// OUT_R1/A8 (§2.2.4.30), inbound proxy → server. 48 bytes.
    pub fn out_r1_a8(successor_channel_cookie: Cookie) -> Self {
        Self::out_r1_a7(successor_channel_cookie)
    }

    /// OUT_R1/A9 (§2.2.4.31), server → predecessor outbound proxy: ANCE. 24 bytes.
    pub fn out_r1_a9() -> Self {
        Self::new(RtsFlags::NONE, vec![RtsCommand::Ance])
    }

    /// OUT_R1/A10 (§2.2.4.32), predecessor outbound proxy → client: ANCE. 24 bytes.
    pub fn out_r1_a10() -> Self {
        Self::out_r1_a9()
    }

    /// OUT_R1/A11 (§2.2.4.33), client → successor outbound proxy: ANCE. 24 bytes.
    pub fn out_r1_a11() -> Self {
        Self::out_r1_a9()
    }

    /// OUT_R2/A1 (§2.2.4.34), server → outbound proxy; Destination FDClient. 28 bytes.
    pub fn out_r2_a1() -> Self {
        Self::out_r1_a1()
    }

    /// OUT_R2/A2 (§2.2.4.35), outbound proxy → client. 28 bytes.
    pub fn out_r2_a2() -> Self {
        Self::out_r1_a1()
    }

    /// OUT_R2/A3 (§2.2.4.36), client → successor outbound proxy. 96 bytes.
    pub fn out_r2_a3(
        version: u32,
        virtual_connection_cookie: Cookie,
        predecessor_channel_cookie: Cookie,
        successor_channel_cookie: Cookie,
        client_receive_window_size: u32,
    ) -> Self {
        Self::out_r1_a3(
            version,
            virtual_connection_cookie,
            predecessor_channel_cookie,
            successor_channel_cookie,
            client_receive_window_size,
        )
    }

    /// OUT_R2/A4 (§2.2.4.37), outbound proxy → server. 40 bytes.
    pub fn out_r2_a4(successor_channel_cookie: Cookie) -> Self {
        Self::in_r1_a5(successor_channel_cookie)
    }

    /// OUT_R2/A5 (§2.2.4.38), server → outbound proxy; Destination FDClient, ANCE. 32 bytes.
    pub fn out_r2_a5() -> Self {
        Self::new(RtsFlags::NONE, vec![TO_CLIENT, RtsCommand::Ance])
    }

    /// OUT_R2/A6 (§2.2.4.39), outbound proxy → client. 32 bytes.
    pub fn out_r2_a6() -> Self {
        Self::out_r2_a5()
    }

    /// OUT_R2/A7 (§2.2.4.40), client → inbound proxy; Destination FDServer. 56 bytes.
    pub fn out_r2_a7(successor_channel_cookie: Cookie, version: u32) -> Self {
        Self::new(
            RtsFlags::OUT_CHANNEL,
            vec![TO_SERVER, c(successor_channel_cookie), v(version)],
        )
    }

    /// OUT_R2/A8 (§2.2.4.41), inbound proxy → server; Destination FDServer. 48 bytes.
    pub fn out_r2_a8(successor_channel_cookie: Cookie) -> Self {
        Self::out_r1_a7(successor_channel_cookie)
    }

    /// OUT_R2/B1 (§2.2.4.42), server → outbound proxy: ANCE. 24 bytes.
    pub fn out_r2_b1() -> Self {
        Self::out_r1_a9()
    }

    /// OUT_R2/B2 (§2.2.4.43), server → outbound proxy: NegativeANCE. 24 bytes.
    pub fn out_r2_b2() -> Self {
        Self::new(RtsFlags::NONE, vec![RtsCommand::NegativeAnce])
    }

    /// OUT_R2/B3 (§2.2.4.44), outbound proxy → client: ANCE with RTS_FLAG_EOF. 24 bytes.
    pub fn out_r2_b3() -> Self {
        Self::new(RtsFlags::EOF, vec![RtsCommand::Ance])
    }

    /// OUT_R2/C1 (§2.2.4.45), client → outbound proxy: RTS_FLAG_PING with one Empty command,
    /// which makes it exactly the size of OUT_R1/A11 (24 bytes) as the section requires.
    pub fn out_r2_c1() -> Self {
        Self::new(RtsFlags::PING, vec![RtsCommand::Empty])
    }

    /// Keep-Alive (§2.2.4.46), client → inbound proxy. `client_keepalive` is 0 or at least
    /// [`CLIENT_KEEPALIVE_MIN`]. 28 bytes.
    pub fn keep_alive(client_keepalive: u32) -> Self {
        Self::new(
            RtsFlags::OTHER_CMD,
            vec![RtsCommand::ClientKeepalive(client_keepalive)],
        )
    }

    /// Ping Traffic Sent Notify (§2.2.4.47), outbound proxy → server. 28 bytes.
    pub fn ping_traffic_sent_notify(ping_traffic_sent: u32) -> Self {
        Self::new(
            RtsFlags::OTHER_CMD,
            vec![RtsCommand::PingTrafficSentNotify(ping_traffic_sent)],
        )
    }

    /// Echo (§2.2.4.48): the body of an echo response. 20 bytes.
    pub fn echo() -> Self {
        Self::new(RtsFlags::ECHO, Vec::new())
    }

    /// Ping (§2.2.4.49). 20 bytes.
    pub fn ping() -> Self {
        Self::new(RtsFlags::PING, Vec::new())
    }

    /// FlowControlAck (§2.2.4.50). 48 bytes.
    pub fn flow_control_ack(ack: FlowControlAck) -> Self {
        Self::new(RtsFlags::OTHER_CMD, vec![RtsCommand::FlowControlAck(ack)])
    }

    /// FlowControlAckWithDestination (§2.2.4.51). 56 bytes.
    pub fn flow_control_ack_with_destination(
        destination: ForwardDestination,
        ack: FlowControlAck,
    ) -> Self {
        Self::new(
            RtsFlags::OTHER_CMD,
            vec![dest(destination), RtsCommand::FlowControlAck(ack)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Captured PDUs from impacket's tests/SMB_RPC/test_rpch.py (bytes only).
    const CONN_A1: &str = "05001403 10000000 4c000000 00000000 00000400 06000000 01000000
        03000000 b0f6af3d 77629807 9b21546e ecf42253 03000000 3a247a37 6dc1ed2c 685d3435
        13464325 00000000 00000400";
    const CONN_A2: &str = "05001403 10000000 54000000 00000000 10000500 06000000 01000000
        03000000 61ec8bb3 4028a846 bafd90cf 6d31dc29 03000000 bc381035 a7f03d43 9c3f4485
        6ef1c3b0 04000000 00000040 00000000 00000100";
    const CONN_A3: &str = "05001403 10000000 1c000000 00000000 00000100 02000000 c0d40100";
    const PING: &str = "05001403 10000000 14000000 00000000 01000000";
    const CONN_C2: &str = "05001403 10000000 2c000000 00000000 00000300 06000000 01000000
        00000000 00000100 02000000 c0d40100";
    const FCA_WITH_DEST: &str = "05001403 10000000 38000000 00000000 02000200 0d000000
        00000000 01000000 92800000 00000100 e3796e7c bc68a94d ab8d8240 a0057232";
    const CONN_B2: &str = "05001403 10000000 80000000 00000000 08000700 06000000 01000000
        03000000 61ec8bb3 4028a846 bafd90cf 6d31dc29 03000000 20ce9422 30831b45 94ea0d7e
        05d2a85a 00000000 00000100 02000000 c0d40100 0c000000 df28b420 77a47042 b1d14a03
        495f6b7b 0b000000 00000000 00000000 c0a802fe 00000000 00000000";

    fn cookie(s: &str) -> Cookie {
        Cookie(hex(s).try_into().unwrap())
    }

    #[test]
    fn impacket_conn_a1_decodes_and_reencodes_identically() {
        let bytes = hex(CONN_A1);
        let pdu = RtsPdu::decode(&bytes).unwrap();
        assert_eq!(pdu.kind(), Some(RtsPduKind::ConnA1));
        let expected = RtsPdu::conn_a1(
            1,
            cookie("b0f6af3d776298079b21546eecf42253"),
            cookie("3a247a376dc1ed2c685d343513464325"),
            262_144,
        );
        assert_eq!(pdu, expected);
        assert_eq!(expected.to_bytes().as_ref(), bytes.as_slice());
    }

    #[test]
    fn impacket_conn_a2_a3_c2_ping_fca() {
        let a2 = RtsPdu::decode(&hex(CONN_A2)).unwrap();
        assert_eq!(a2.kind(), Some(RtsPduKind::ConnA2));
        assert_eq!(a2.channel_lifetime(), Some(1_073_741_824));
        assert_eq!(a2.receive_window_size(), Some(65_536));
        assert_eq!(a2.to_bytes().as_ref(), hex(CONN_A2).as_slice());

        let a3 = RtsPdu::decode(&hex(CONN_A3)).unwrap();
        assert_eq!(a3, RtsPdu::conn_a3(120_000));
        assert_eq!(a3.kind(), Some(RtsPduKind::ConnA3));

        let ping = RtsPdu::decode(&hex(PING)).unwrap();
        assert_eq!(ping, RtsPdu::ping());
        assert_eq!(ping.kind(), Some(RtsPduKind::Ping));
        assert_eq!(ping.to_bytes().as_ref(), hex(PING).as_slice());

        let c2 = RtsPdu::decode(&hex(CONN_C2)).unwrap();
        assert_eq!(c2, RtsPdu::conn_c2(1, 65_536, 120_000));
        assert!(c2.is(RtsPduKind::ConnC2));
        assert_eq!(
            c2.candidate_kinds(),
            vec![RtsPduKind::ConnC1, RtsPduKind::ConnC2]
        );

        let fca = RtsPdu::decode(&hex(FCA_WITH_DEST)).unwrap();
        let ack = FlowControlAck {
            bytes_received: 32_914,
            available_window: 65_536,
            channel_cookie: cookie("e3796e7cbc68a94dab8d8240a0057232"),
        };
        assert_eq!(
            fca,
            RtsPdu::flow_control_ack_with_destination(ForwardDestination::Client, ack)
        );
        assert_eq!(fca.kind(), Some(RtsPduKind::FlowControlAckWithDestination));
        assert_eq!(fca.to_bytes().as_ref(), hex(FCA_WITH_DEST).as_slice());
    }

    #[test]
    fn impacket_conn_b2_windows_address_in_padding() {
        let b2 = RtsPdu::decode(&hex(CONN_B2)).unwrap();
        assert_eq!(b2.kind(), Some(RtsPduKind::ConnB2));
        assert_eq!(
            b2.client_address(),
            Some(IpAddr::V4(Ipv4Addr::new(192, 168, 2, 254)))
        );
        assert_eq!(b2.receive_window_size(), Some(65_536));
        assert_eq!(b2.connection_timeout(), Some(120_000));
        assert_eq!(
            b2.association_group_id(),
            Some(cookie("df28b42077a47042b1d14a03495f6b7b"))
        );
        // Our encoding puts the address where MS-RPCH §2.2.3.2.1 says; same length.
        let ours = b2.to_bytes();
        assert_eq!(ours.len(), 128);
        assert_eq!(&ours[112..116], &[192, 168, 2, 254]);
        assert_eq!(RtsPdu::decode(&ours).unwrap(), b2);
    }

    fn sample(kind: RtsPduKind) -> RtsPdu {
        use RtsPduKind::*;
        let (k1, k2, k3) = (Cookie([1; 16]), Cookie([2; 16]), Cookie([3; 16]));
        let ack = crate::rts::FlowControlAck {
            bytes_received: 1,
            available_window: 2,
            channel_cookie: k1,
        };
        match kind {
            ConnA1 => RtsPdu::conn_a1(1, k1, k2, 65_536),
            ConnA2 => RtsPdu::conn_a2(1, k1, k2, 1 << 30, 65_536),
            ConnA3 => RtsPdu::conn_a3(120_000),
            ConnB1 => RtsPdu::conn_b1(1, k1, k2, 1 << 30, 300_000, k3),
            ConnB2 => RtsPdu::conn_b2(1, k1, k2, 65_536, 120_000, k3, [10, 0, 0, 1].into()),
            ConnB3 => RtsPdu::conn_b3(65_536, 1),
            ConnC1 => RtsPdu::conn_c1(1, 65_536, 120_000),
            ConnC2 => RtsPdu::conn_c2(1, 65_536, 120_000),
            InR1A1 => RtsPdu::in_r1_a1(1, k1, k2, k3),
            InR1A2 => RtsPdu::in_r1_a2(1, k1, k2, k3, 65_536, 120_000),
            InR1A3 => RtsPdu::in_r1_a3(1, 65_536, 120_000),
            InR1A4 => RtsPdu::in_r1_a4(1, 65_536, 120_000),
            InR1A5 => RtsPdu::in_r1_a5(k3),
            InR1A6 => RtsPdu::in_r1_a6(k3),
            InR1B1 => RtsPdu::in_r1_b1(),
            InR1B2 => RtsPdu::in_r1_b2(65_536),
            InR2A1 => RtsPdu::in_r2_a1(1, k1, k2, k3),
            InR2A2 => RtsPdu::in_r2_a2(k3),
            InR2A3 => RtsPdu::in_r2_a3(),
            InR2A4 => RtsPdu::in_r2_a4(),
            InR2A5 => RtsPdu::in_r2_a5(k3),
            OutR1A1 => RtsPdu::out_r1_a1(),
            OutR1A2 => RtsPdu::out_r1_a2(),
            OutR1A3 => RtsPdu::out_r1_a3(1, k1, k2, k3, 65_536),
            OutR1A4 => RtsPdu::out_r1_a4(1, k1, k2, k3, 1 << 30, 65_536, 120_000),
            OutR1A5 => RtsPdu::out_r1_a5(1, 120_000),
            OutR1A6 => RtsPdu::out_r1_a6(1, 120_000),
            OutR1A7 => RtsPdu::out_r1_a7(k3),
            OutR1A8 => RtsPdu::out_r1_a8(k3),
            OutR1A9 => RtsPdu::out_r1_a9(),
            OutR1A10 => RtsPdu::out_r1_a10(),
            OutR1A11 => RtsPdu::out_r1_a11(),
            OutR2A1 => RtsPdu::out_r2_a1(),
            OutR2A2 => RtsPdu::out_r2_a2(),
            OutR2A3 => RtsPdu::out_r2_a3(1, k1, k2, k3, 65_536),
            OutR2A4 => RtsPdu::out_r2_a4(k3),
            OutR2A5 => RtsPdu::out_r2_a5(),
            OutR2A6 => RtsPdu::out_r2_a6(),
            OutR2A7 => RtsPdu::out_r2_a7(k3, 1),
            OutR2A8 => RtsPdu::out_r2_a8(k3),
            OutR2B1 => RtsPdu::out_r2_b1(),
            OutR2B2 => RtsPdu::out_r2_b2(),
            OutR2B3 => RtsPdu::out_r2_b3(),
            OutR2C1 => RtsPdu::out_r2_c1(),
            KeepAlive => RtsPdu::keep_alive(300_000),
            PingTrafficSentNotify => RtsPdu::ping_traffic_sent_notify(4096),
            Echo => RtsPdu::echo(),
            Ping => RtsPdu::ping(),
            FlowControlAck => RtsPdu::flow_control_ack(ack),
            FlowControlAckWithDestination => {
                RtsPdu::flow_control_ack_with_destination(ForwardDestination::OutProxy, ack)
            }
        }
    }

    /// Byte sizes from the field layouts of MS-RPCH §2.2.4 (20-byte header; 8 bytes per
    /// 4-byte-valued command, 20 per Cookie, 28 per FlowControlAck, 4 per empty command,
    /// 24 for an IPv4 ClientAddress).
    #[test]
    fn every_named_pdu_has_its_spec_size_kind_and_round_trips() {
        use RtsPduKind::*;
        let sizes: &[(RtsPduKind, usize)] = &[
            (ConnA1, 76),
            (ConnA2, 84),
            (ConnA3, 28),
            (ConnB1, 104),
            (ConnB2, 128),
            (ConnB3, 36),
            (ConnC1, 44),
            (ConnC2, 44),
            (InR1A1, 88),
            (InR1A2, 104),
            (InR1A3, 52),
            (InR1A4, 52),
            (InR1A5, 40),
            (InR1A6, 40),
            (InR1B1, 24),
            (InR1B2, 28),
            (InR2A1, 88),
            (InR2A2, 40),
            (InR2A3, 28),
            (InR2A4, 28),
            (InR2A5, 40),
            (OutR1A1, 28),
            (OutR1A2, 28),
            (OutR1A3, 96),
            (OutR1A4, 112),
            (OutR1A5, 44),
            (OutR1A6, 44),
            (OutR1A7, 48),
            (OutR1A8, 48),
            (OutR1A9, 24),
            (OutR1A10, 24),
            (OutR1A11, 24),
            (OutR2A1, 28),
            (OutR2A2, 28),
            (OutR2A3, 96),
            (OutR2A4, 40),
            (OutR2A5, 32),
            (OutR2A6, 32),
            (OutR2A7, 56),
            (OutR2A8, 48),
            (OutR2B1, 24),
            (OutR2B2, 24),
            (OutR2B3, 24),
            (OutR2C1, 24),
            (KeepAlive, 28),
            (PingTrafficSentNotify, 28),
            (Echo, 20),
            (Ping, 20),
            (FlowControlAck, 48),
            (FlowControlAckWithDestination, 56),
        ];
        assert_eq!(sizes.len(), RtsPduKind::ALL.len());
        for &(kind, size) in sizes {
            let pdu = sample(kind);
            assert!(
                pdu.is(kind),
                "{kind} constructor does not match its own shape"
            );
            assert!(pdu.candidate_kinds().contains(&kind));
            pdu.validate().unwrap();
            let bytes = pdu.to_bytes();
            assert_eq!(bytes.len(), size, "{kind} size");
            assert_eq!(pdu.encoded_len(), size);
            assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]) as usize, size);
            let back = RtsPdu::decode(&bytes).unwrap();
            assert_eq!(back, pdu, "{kind}");
            assert!(back.is(kind));
        }
        // OUT_R2/C1 must be exactly the size of OUT_R1/A11 (§2.2.4.45).
        assert_eq!(
            RtsPdu::out_r2_c1().encoded_len(),
            RtsPdu::out_r1_a11().encoded_len()
        );
        assert_eq!(sample(ConnB2).conn_b2_v6_len(), 140);
    }

    impl RtsPdu {
        fn conn_b2_v6_len(&self) -> usize {
            let mut p = self.clone();
            *p.commands.last_mut().unwrap() = RtsCommand::ClientAddress("::1".parse().unwrap());
            p.encoded_len()
        }
    }

    #[test]
    fn shared_shapes_are_all_reported() {
        assert_eq!(
            RtsPdu::in_r1_a5(Cookie::default()).candidate_kinds(),
            vec![
                RtsPduKind::InR1A5,
                RtsPduKind::InR1A6,
                RtsPduKind::InR2A2,
                RtsPduKind::InR2A5,
                RtsPduKind::OutR2A4
            ]
        );
        assert_eq!(
            RtsPdu::out_r1_a9().candidate_kinds(),
            vec![
                RtsPduKind::OutR1A9,
                RtsPduKind::OutR1A10,
                RtsPduKind::OutR1A11,
                RtsPduKind::OutR2B1
            ]
        );
        // Wrong fixed destination: not IN_R2/A3.
        let p = RtsPdu::new(RtsFlags::NONE, vec![dest(ForwardDestination::Server)]);
        assert_eq!(p.kind(), None);
        // OUT_R2/C1 with Padding instead of Empty.
        let p = RtsPdu::new(RtsFlags::PING, vec![RtsCommand::Padding(0)]);
        assert_eq!(p.kind(), Some(RtsPduKind::OutR2C1));
    }

    #[test]
    fn value_ranges_are_enforced_on_decode() {
        let cases: &[(RtsCommand, bool)] = &[
            (RtsCommand::ReceiveWindowSize(8191), false),
            (RtsCommand::ReceiveWindowSize(8192), true),
            (RtsCommand::ReceiveWindowSize(262_144), true),
            (RtsCommand::ReceiveWindowSize(262_145), false),
            (RtsCommand::ConnectionTimeout(119_999), false),
            (RtsCommand::ConnectionTimeout(120_000), true),
            (RtsCommand::ConnectionTimeout(14_400_000), true),
            (RtsCommand::ConnectionTimeout(14_400_001), false),
            (RtsCommand::ChannelLifetime(131_071), false),
            (RtsCommand::ChannelLifetime(131_072), true),
            (RtsCommand::ChannelLifetime(2_147_483_648), true),
            (RtsCommand::ChannelLifetime(2_147_483_649), false),
            (RtsCommand::ClientKeepalive(0), true),
            (RtsCommand::ClientKeepalive(59_999), false),
            (RtsCommand::ClientKeepalive(60_000), true),
            (RtsCommand::ClientKeepalive(u32::MAX), true),
            (RtsCommand::Padding(0xFF00), true),
            (RtsCommand::Version(7), true),
        ];
        for (cmd, ok) in cases {
            let pdu = RtsPdu::new(RtsFlags::NONE, vec![*cmd]);
            let mut out = BytesMut::new();
            pdu.encode(&mut out);
            assert_eq!(RtsPdu::decode(&out).is_ok(), *ok, "{cmd:?}");
            assert_eq!(pdu.validate().is_ok(), *ok, "{cmd:?}");
        }
        // Padding count above 0xFFFF, destination 4, address type 2, unknown command 15.
        for body in [
            &[8u8, 0, 0, 0, 0, 0, 1, 0][..],
            &[13, 0, 0, 0, 4, 0, 0, 0],
            &[11, 0, 0, 0, 2, 0, 0, 0],
            &[15, 0, 0, 0],
        ] {
            let mut pdu = RtsPdu::ping().to_bytes().to_vec();
            pdu[18] = 1;
            pdu.extend_from_slice(body);
            pdu[8] = pdu.len() as u8;
            assert!(RtsPdu::decode(&pdu).is_err(), "{body:?}");
        }
    }

    #[test]
    fn header_rules_are_enforced() {
        let good = RtsPdu::ping().to_bytes().to_vec();
        let mut bad = good.clone();
        bad[3] = 0x01; // only first frag
        assert!(matches!(
            RtsPdu::decode(&bad),
            Err(PduError::InvalidRtsHeader(_))
        ));
        let mut bad = good.clone();
        bad[12] = 1; // call_id 1
        assert!(matches!(
            RtsPdu::decode(&bad),
            Err(PduError::InvalidRtsHeader(_))
        ));
        let mut bad = good.clone();
        bad[4] = 0x00; // big-endian drep
        bad[8] = 0;
        bad[9] = 20;
        assert!(matches!(
            RtsPdu::decode(&bad),
            Err(PduError::InvalidRtsHeader(_))
        ));
        let mut bad = good.clone();
        bad[18] = 1; // one command announced, none present
        assert!(matches!(
            RtsPdu::decode(&bad),
            Err(PduError::Truncated { .. })
        ));
        let mut bad = good.clone();
        bad.extend_from_slice(&[7, 0, 0, 0]); // Empty command not counted
        bad[8] = 24;
        assert!(matches!(
            RtsPdu::decode(&bad),
            Err(PduError::TrailingBytes { .. })
        ));
        let mut bad = good;
        bad[2] = 0; // a request, not RTS
        assert!(matches!(
            RtsPdu::decode(&bad),
            Err(PduError::UnexpectedPacketType { .. })
        ));
    }

    #[test]
    fn padding_contents_are_ignored_and_written_as_zeros() {
        let mut pdu = RtsPdu::new(RtsFlags::PING, vec![RtsCommand::Padding(3)])
            .to_bytes()
            .to_vec();
        assert_eq!(&pdu[28..], &[0, 0, 0]);
        pdu[28] = 0xAA;
        assert_eq!(
            RtsPdu::decode(&pdu).unwrap().commands,
            vec![RtsCommand::Padding(3)]
        );
    }

    #[test]
    fn try_encode_refuses_what_encode_would_write() {
        let mut out = BytesMut::new();
        assert!(RtsPdu::conn_a3(1).try_encode(&mut out).is_err());
        assert!(out.is_empty());
        let huge = RtsPdu::new(RtsFlags::NONE, vec![RtsCommand::Padding(0xFFFF); 2]);
        assert!(matches!(
            huge.try_encode(&mut out),
            Err(PduError::TooLargeToEncode { .. })
        ));
    }
}
