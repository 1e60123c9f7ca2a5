//! Minimal SPNEGO (RFC 4178) for the NTLM mechanism only: unwrap the client's
//! `NegTokenInit` / `NegTokenResp`, wrap the server's answers. Everything else about
//! SPNEGO (Kerberos, mechanism negotiation beyond "NTLM or nothing") is out of scope.

use crate::der::{DerError, expect, expect_only, read_tlv, tlv};

/// DER contents of the SPNEGO OID 1.3.6.1.5.5.2.
const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// DER contents of the NTLMSSP OID 1.3.6.1.4.1.311.2.2.10.
pub const NTLM_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/// The `negState` of a `NegTokenResp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NegState {
    /// `accept-completed` (0).
    AcceptCompleted,
    /// `accept-incomplete` (1).
    AcceptIncomplete,
    /// `reject` (2).
    Reject,
    /// `request-mic` (3).
    RequestMic,
}

impl NegState {
    fn code(self) -> u8 {
        match self {
            NegState::AcceptCompleted => 0,
            NegState::AcceptIncomplete => 1,
            NegState::Reject => 2,
            NegState::RequestMic => 3,
        }
    }
}

/// A client's SPNEGO token, reduced to what the NTLM acceptor needs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClientToken {
    /// From a `NegTokenInit`: the DER `MechTypeList` exactly as sent (what the
    /// `mechListMIC` covers). `None` for a `NegTokenResp`.
    pub mech_types: Option<Vec<u8>>,
    /// From a `NegTokenInit`: whether NTLM is in the list, and whether it is first.
    pub ntlm_offered: bool,
    /// Whether NTLM is the client's first (preferred) mechanism, so that an optimistic
    /// `mechToken` is an NTLM message.
    pub ntlm_first: bool,
    /// The mechanism token (`mechToken` / `responseToken`).
    pub token: Option<Vec<u8>>,
    /// The `mechListMIC`.
    pub mech_list_mic: Option<Vec<u8>>,
}

/// Why a SPNEGO token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SpnegoError {
    /// The DER is malformed.
    #[error("malformed SPNEGO token: {0}")]
    Der(#[from] DerError),
    /// Not a SPNEGO `InitialContextToken` nor a `NegTokenResp`.
    #[error("not a SPNEGO token")]
    NotSpnego,
    /// The client does not offer NTLM.
    #[error("the client does not offer NTLM")]
    NoNtlm,
}

/// Whether `token` looks like SPNEGO (`[APPLICATION 0]` or `[1]` NegTokenResp) rather
/// than a raw NTLM message (`NTLMSSP\0`).
pub fn is_spnego(token: &[u8]) -> bool {
    matches!(token.first(), Some(0x60 | 0xa1))
}

/// Parses a client token: a GSS `InitialContextToken` with a `NegTokenInit`, or a bare
/// `NegTokenResp`. Lengths must match exactly; unknown optional fields are skipped.
pub fn parse_client_token(token: &[u8]) -> Result<ClientToken, SpnegoError> {
    match token.first() {
        Some(0x60) => {
            let inner = expect_only(token, 0x60)?;
            let (oid, rest) = expect(inner, 0x06)?;
            if oid != SPNEGO_OID {
                return Err(SpnegoError::NotSpnego);
            }
            let init = expect_only(rest, 0xa0)?;
            let mut fields = expect_only(init, 0x30)?;
            let mut out = ClientToken::default();
            while !fields.is_empty() {
                let (tag, value, rest) = read_tlv(fields)?;
                fields = rest;
                match tag {
                    0xa0 => {
                        let list = expect_only(value, 0x30)?;
                        out.mech_types = Some(tlv(0x30, list));
                        let mut oids = list;
                        let mut first = true;
                        while !oids.is_empty() {
                            let (oid, rest) = expect(oids, 0x06)?;
                            if oid == NTLM_OID {
                                out.ntlm_offered = true;
                                out.ntlm_first |= first;
                            }
                            first = false;
                            oids = rest;
                        }
                    }
                    0xa2 => out.token = Some(expect_only(value, 0x04)?.to_vec()),
                    0xa3 => out.mech_list_mic = Some(expect_only(value, 0x04)?.to_vec()),
                    // reqFlags and anything newer.
                    _ => {}
                }
            }
            if !out.ntlm_offered {
                return Err(SpnegoError::NoNtlm);
            }
            Ok(out)
        }
        Some(0xa1) => {
            let resp = expect_only(token, 0xa1)?;
            let mut fields = expect_only(resp, 0x30)?;
            let mut out = ClientToken {
                ntlm_offered: true,
                ntlm_first: true,
                ..ClientToken::default()
            };
            while !fields.is_empty() {
                let (tag, value, rest) = read_tlv(fields)?;
                fields = rest;
                match tag {
                    0xa2 => out.token = Some(expect_only(value, 0x04)?.to_vec()),
                    0xa3 => out.mech_list_mic = Some(expect_only(value, 0x04)?.to_vec()),
                    0xa1 => {
                        let oid = expect_only(value, 0x06)?;
                        if oid != NTLM_OID {
                            return Err(SpnegoError::NoNtlm);
                        }
                    }
                    _ => {}
                }
            }
            Ok(out)
        }
        _ => Err(SpnegoError::NotSpnego),
    }
}

/// Encodes a server `NegTokenResp` (`[1]`), naming NTLM as the supported mechanism when
/// `supported_mech` is set.
pub fn encode_response(
    state: NegState,
    supported_mech: bool,
    response_token: Option<&[u8]>,
    mech_list_mic: Option<&[u8]>,
) -> Vec<u8> {
    let mut seq = tlv(0xa0, &tlv(0x0a, &[state.code()]));
    if supported_mech {
        seq.extend_from_slice(&tlv(0xa1, &tlv(0x06, NTLM_OID)));
    }
    if let Some(t) = response_token {
        seq.extend_from_slice(&tlv(0xa2, &tlv(0x04, t)));
    }
    if let Some(m) = mech_list_mic {
        seq.extend_from_slice(&tlv(0xa3, &tlv(0x04, m)));
    }
    tlv(0xa1, &tlv(0x30, &seq))
}

/// Encodes a client `InitialContextToken` with a `NegTokenInit` offering `mechs` (DER OID
/// contents) and an optional mechanism token (for clients and tests).
pub fn encode_init(mechs: &[&[u8]], mech_token: Option<&[u8]>) -> Vec<u8> {
    let list: Vec<u8> = mechs.iter().flat_map(|m| tlv(0x06, m)).collect();
    let mut seq = tlv(0xa0, &tlv(0x30, &list));
    if let Some(t) = mech_token {
        seq.extend_from_slice(&tlv(0xa2, &tlv(0x04, t)));
    }
    let mut inner = tlv(0x06, SPNEGO_OID);
    inner.extend_from_slice(&tlv(0xa0, &tlv(0x30, &seq)));
    tlv(0x60, &inner)
}

/// A server `NegTokenResp` as a client sees it: the `negState` code, the
/// `responseToken` and the `mechListMIC`.
pub type ServerResponse = (Option<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Parses a server `NegTokenResp` (for clients and tests).
pub fn parse_response(token: &[u8]) -> Result<ServerResponse, SpnegoError> {
    let resp = expect_only(token, 0xa1)?;
    let mut fields = expect_only(resp, 0x30)?;
    let (mut state, mut tok, mut mic) = (None, None, None);
    while !fields.is_empty() {
        let (tag, value, rest) = read_tlv(fields)?;
        fields = rest;
        match tag {
            0xa0 => state = expect_only(value, 0x0a)?.first().copied(),
            0xa2 => tok = Some(expect_only(value, 0x04)?.to_vec()),
            0xa3 => mic = Some(expect_only(value, 0x04)?.to_vec()),
            _ => {}
        }
    }
    Ok((state, tok, mic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_round_trip() {
        let krb: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
        let t = encode_init(&[NTLM_OID, krb], Some(b"NTLMSSP\0\x01"));
        assert!(is_spnego(&t));
        let c = parse_client_token(&t).unwrap();
        assert!(c.ntlm_offered && c.ntlm_first);
        assert_eq!(c.token.as_deref(), Some(&b"NTLMSSP\0\x01"[..]));
        let second = parse_client_token(&encode_init(&[krb, NTLM_OID], None)).unwrap();
        assert!(second.ntlm_offered && !second.ntlm_first);
        assert_eq!(
            parse_client_token(&encode_init(&[krb], None)),
            Err(SpnegoError::NoNtlm)
        );
        // Any truncation is an error, never a panic.
        for n in 0..t.len() {
            assert!(parse_client_token(&t[..n]).is_err());
        }
        let mut long = t.clone();
        long.push(0);
        assert!(parse_client_token(&long).is_err());
    }

    #[test]
    fn response_round_trip() {
        let r = encode_response(NegState::AcceptIncomplete, true, Some(b"chal"), None);
        assert_eq!(
            parse_response(&r).unwrap(),
            (Some(1), Some(b"chal".to_vec()), None)
        );
        let c = parse_client_token(&r).unwrap();
        assert_eq!(c.token.as_deref(), Some(&b"chal"[..]));
        let done = encode_response(NegState::AcceptCompleted, false, None, Some(&[1; 16]));
        assert_eq!(
            parse_response(&done).unwrap(),
            (Some(0), None, Some(vec![1; 16]))
        );
        assert!(!is_spnego(b"NTLMSSP\0"));
    }
}
