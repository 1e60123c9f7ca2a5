//! Channel bindings for Extended Protection for Authentication: the `tls-server-end-point`
//! binding of RFC 5929 §4 and the MD5 digest that NTLM carries in `MsvAvChannelBindings`.

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use crate::der::{DerError, expect, expect_only};

/// The hash function RFC 5929 §4.1 picks for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndPointHash {
    /// SHA-224 (signature with SHA-224).
    Sha224,
    /// SHA-256 (signatures with MD5, SHA-1, SHA-256, and algorithms without one hash).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl EndPointHash {
    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            EndPointHash::Sha224 => Sha224::digest(data).to_vec(),
            EndPointHash::Sha256 => Sha256::digest(data).to_vec(),
            EndPointHash::Sha384 => Sha384::digest(data).to_vec(),
            EndPointHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// A certificate whose signature algorithm could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the certificate's signature algorithm: {0}")]
pub struct CertificateError(#[from] pub DerError);

// DER contents of the OIDs whose hash differs from SHA-256.
const SHA224_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e];
const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const ECDSA_SHA224: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01];
const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const DSA_SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x01];
const SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

fn hash_for_oid(oid: &[u8]) -> Option<EndPointHash> {
    match oid {
        SHA224_WITH_RSA | ECDSA_SHA224 | DSA_SHA224 | SHA224 => Some(EndPointHash::Sha224),
        SHA384_WITH_RSA | ECDSA_SHA384 | SHA384 => Some(EndPointHash::Sha384),
        SHA512_WITH_RSA | ECDSA_SHA512 | SHA512 => Some(EndPointHash::Sha512),
        _ => None,
    }
}

/// The hash RFC 5929 §4.1 prescribes for `cert_der` (an X.509 certificate in DER): the one
/// its `signatureAlgorithm` uses, except that MD5 and SHA-1 become SHA-256. RSASSA-PSS
/// names its hash in the parameters (default SHA-1, so SHA-256). Algorithms without a
/// single hash function (Ed25519, Ed448), for which RFC 5929 defines no binding, and
/// unknown ones get SHA-256.
pub fn end_point_hash(cert_der: &[u8]) -> Result<EndPointHash, CertificateError> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let cert = expect_only(cert_der, 0x30)?;
    let (_tbs, rest) = expect(cert, 0x30)?;
    let (alg, _signature) = expect(rest, 0x30)?;
    let (oid, params) = expect(alg, 0x06)?;
    if oid == RSASSA_PSS {
        // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] HashAlgorithm DEFAULT sha1, ... }
        if let Ok((seq, _)) = expect(params, 0x30)
            && let Ok((hash_alg, _)) = expect(seq, 0xa0)
        {
            let (alg, _) = expect(hash_alg, 0x30)?;
            let (hash_oid, _) = expect(alg, 0x06)?;
            return Ok(hash_for_oid(hash_oid).unwrap_or(EndPointHash::Sha256));
        }
        return Ok(EndPointHash::Sha256);
    }
    Ok(hash_for_oid(oid).unwrap_or(EndPointHash::Sha256))
}

/// The `tls-server-end-point` channel binding data of RFC 5929 §4.1: the hash of the
/// server's certificate (DER) with the hash chosen by [`end_point_hash`].
pub fn tls_server_end_point(cert_der: &[u8]) -> Result<Vec<u8>, CertificateError> {
    Ok(end_point_hash(cert_der)?.digest(cert_der))
}

/// Channel bindings as GSS-API passes them (RFC 2744 `gss_channel_bindings_struct`) with
/// no addresses and the given application data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelBindings {
    application_data: Vec<u8>,
}

impl ChannelBindings {
    /// Bindings with arbitrary application data (for `tls-unique` or tests).
    pub fn from_application_data(application_data: Vec<u8>) -> ChannelBindings {
        ChannelBindings { application_data }
    }

    /// The `tls-server-end-point` bindings for the certificate the server presented:
    /// application data `"tls-server-end-point:"` followed by [`tls_server_end_point`].
    /// This is what Windows, requests-ntlm and pyspnego send over HTTPS.
    pub fn tls_server_end_point(cert_der: &[u8]) -> Result<ChannelBindings, CertificateError> {
        let mut data = b"tls-server-end-point:".to_vec();
        data.extend_from_slice(&tls_server_end_point(cert_der)?);
        Ok(ChannelBindings::from_application_data(data))
    }

    /// The application data.
    pub fn application_data(&self) -> &[u8] {
        &self.application_data
    }

    /// The MD5 of the flattened `gss_channel_bindings_struct` (four zero 32-bit address
    /// fields, then the 32-bit little-endian length of the application data and the data),
    /// the value of NTLM's `MsvAvChannelBindings` (MS-NLMP §2.2.2.1).
    pub fn md5(&self) -> [u8; 16] {
        let len = u32::try_from(self.application_data.len()).unwrap_or(u32::MAX);
        crate::ntlm::crypto::md5(&[&[0u8; 16], &len.to_le_bytes(), &self.application_data])
    }
}

/// When channel bindings are checked, as Exchange's and IIS's Extended Protection setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ExtendedProtection {
    /// Bindings are not looked at (the default: curl sends none).
    #[default]
    None,
    /// A client that sends bindings must send the right ones; a client that sends none
    /// (or all zeros, which means "none") is accepted.
    Allow,
    /// Every client must send the right bindings; a connection for which the server has
    /// none (plain HTTP) fails.
    Require,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::tlv;

    fn fake_cert(alg: &[u8]) -> Vec<u8> {
        let mut body = tlv(0x30, &tlv(0x02, &[1]));
        body.extend_from_slice(&tlv(0x30, alg));
        body.extend_from_slice(&tlv(0x03, &[0, 1, 2]));
        tlv(0x30, &body)
    }

    #[test]
    fn hash_selection() {
        let rsa_sha1 = tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        );
        assert_eq!(
            end_point_hash(&fake_cert(&rsa_sha1)),
            Ok(EndPointHash::Sha256)
        );
        assert_eq!(
            end_point_hash(&fake_cert(&tlv(0x06, SHA384_WITH_RSA))),
            Ok(EndPointHash::Sha384)
        );
        assert_eq!(
            end_point_hash(&fake_cert(&tlv(0x06, ECDSA_SHA512))),
            Ok(EndPointHash::Sha512)
        );
        let mut pss = tlv(0x06, RSASSA_PSS);
        pss.extend_from_slice(&tlv(0x30, &tlv(0xa0, &tlv(0x30, &tlv(0x06, SHA384)))));
        assert_eq!(end_point_hash(&fake_cert(&pss)), Ok(EndPointHash::Sha384));
        assert_eq!(
            end_point_hash(&fake_cert(&tlv(0x06, RSASSA_PSS))),
            Ok(EndPointHash::Sha256)
        );
        assert!(end_point_hash(b"\x30\x03\x02\x01").is_err());
        assert!(end_point_hash(&[]).is_err());
    }

    #[test]
    fn bindings_md5_layout() {
        let cert = fake_cert(&tlv(0x06, SHA384_WITH_RSA));
        let cb = ChannelBindings::tls_server_end_point(&cert).unwrap();
        assert_eq!(cb.application_data().len(), 21 + 48);
        let mut flat = vec![0u8; 16];
        flat.extend_from_slice(&(69u32).to_le_bytes());
        flat.extend_from_slice(cb.application_data());
        assert_eq!(cb.md5(), crate::ntlm::crypto::md5(&[&flat]));
    }
}
