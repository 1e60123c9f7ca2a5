//! The NTLM one-way functions and key derivations (MS-NLMP §3.3, §3.4.5), built on the
//! RustCrypto primitives (MD4, MD5, HMAC-MD5, RC4, DES). No primitive is written here.

use des::Des;
use des::cipher::{BlockEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

use super::messages::NegotiateFlags;
use crate::hash::NtHash;

type HmacMd5 = Hmac<Md5>;

/// HMAC-MD5 over the concatenation of `parts`.
pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <HmacMd5 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 16],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// MD5 over the concatenation of `parts`.
pub(crate) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Windows' simple upper-casing (one UTF-16 code unit in, one out), which NTOWFv2 applies
/// to the user name: characters whose upper case is not a single character stay as they
/// are (`ß` stays `ß`, where `str::to_uppercase` would give `SS`).
pub(crate) fn windows_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) if u.len_utf16() == c.len_utf16() => u,
                _ => c,
            }
        })
        .collect()
}

/// NTOWFv2 (MS-NLMP §3.3.2): `HMAC_MD5(NT hash, UNICODE(Uppercase(user) ‖ domain))`.
/// The user is upper-cased, the domain is used exactly as given (possibly empty).
pub fn ntowf_v2(nt_hash: &NtHash, user: &str, domain: &str) -> Zeroizing<[u8; 16]> {
    let mut identity = Zeroizing::new(super::messages::utf16le(&windows_upper(user)));
    identity.extend_from_slice(&super::messages::utf16le(domain));
    Zeroizing::new(hmac_md5(nt_hash, &[&identity]))
}

/// NTProofStr (MS-NLMP §3.3.2): `HMAC_MD5(ResponseKeyNT, ServerChallenge ‖ temp)`, where
/// `temp` is the client blob exactly as received.
pub fn ntlmv2_proof(
    response_key_nt: &[u8; 16],
    server_challenge: &[u8; 8],
    blob: &[u8],
) -> [u8; 16] {
    hmac_md5(response_key_nt, &[server_challenge, blob])
}

/// The NTLMv2 SessionBaseKey (= KeyExchangeKey for NTLMv2):
/// `HMAC_MD5(ResponseKeyNT, NTProofStr)`.
pub fn ntlmv2_session_base_key(
    response_key_nt: &[u8; 16],
    proof: &[u8; 16],
) -> Zeroizing<[u8; 16]> {
    Zeroizing::new(hmac_md5(response_key_nt, &[proof]))
}

/// The LMv2 response (MS-NLMP §3.3.2):
/// `HMAC_MD5(ResponseKeyLM, ServerChallenge ‖ ClientChallenge) ‖ ClientChallenge`.
pub fn lmv2_response(
    response_key_lm: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&hmac_md5(
        response_key_lm,
        &[server_challenge, client_challenge],
    ));
    out[16..].copy_from_slice(client_challenge);
    out
}

/// Spreads 56 key bits over the high seven bits of eight bytes (the DES key layout; the
/// parity bits are left zero, DES ignores them).
fn des_key(k: &[u8; 7]) -> [u8; 8] {
    let mut bits = 0u64;
    for b in k {
        bits = (bits << 8) | u64::from(*b);
    }
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        // Seven bits per output byte, most significant first.
        let shift = 49 - 7 * i;
        *o = (((bits >> shift) & 0x7f) as u8) << 1;
    }
    out
}

/// `DES(K, D)` of MS-NLMP §6 with a 7-byte key.
fn des_block(key7: &[u8; 7], data: &[u8; 8]) -> [u8; 8] {
    let key = des_key(key7);
    let cipher = Des::new(&key.into());
    let mut block = (*data).into();
    cipher.encrypt_block(&mut block);
    block.into()
}

/// DESL (MS-NLMP §6): the 16-byte key zero-padded to 21 bytes, cut in three 7-byte DES
/// keys, each encrypting `data`.
pub fn desl(key: &[u8; 16], data: &[u8; 8]) -> [u8; 24] {
    let mut k = Zeroizing::new([0u8; 21]);
    k[..16].copy_from_slice(key);
    let mut out = [0u8; 24];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        let mut key7 = [0u8; 7];
        key7.copy_from_slice(&k[i * 7..i * 7 + 7]);
        chunk.copy_from_slice(&des_block(&key7, data));
    }
    out
}

/// LMOWFv1 (MS-NLMP §3.3.1): DES of `KGS!@#$%` under the two halves of the upper-cased
/// OEM password padded to 14 bytes. Only the known-answer tests use it: the credential
/// store keeps no LM hash, so LM responses cannot be verified.
#[cfg(test)]
pub(crate) fn lmowf_v1(password: &str) -> [u8; 16] {
    let mut p = [0u8; 14];
    for (d, s) in p.iter_mut().zip(password.to_ascii_uppercase().bytes()) {
        *d = s;
    }
    let mut out = [0u8; 16];
    for (i, half) in p.chunks_exact(7).enumerate() {
        let mut k = [0u8; 7];
        k.copy_from_slice(half);
        out[i * 8..i * 8 + 8].copy_from_slice(&des_block(&k, b"KGS!@#$%"));
    }
    out
}

/// The NTLMv1 NT response the client should have sent (MS-NLMP §3.3.1): with extended
/// session security `DESL(NT hash, MD5(ServerChallenge ‖ ClientChallenge)[0..8])`, where
/// the client challenge is the first 8 bytes of the LM response; without it
/// `DESL(NT hash, ServerChallenge)`.
pub fn ntlmv1_response(
    nt_hash: &NtHash,
    server_challenge: &[u8; 8],
    client_challenge: Option<&[u8; 8]>,
) -> [u8; 24] {
    match client_challenge {
        Some(cc) => {
            let digest = md5(&[server_challenge, cc]);
            let mut d = [0u8; 8];
            d.copy_from_slice(&digest[..8]);
            desl(nt_hash, &d)
        }
        None => desl(nt_hash, server_challenge),
    }
}

/// The NTLMv1 SessionBaseKey: `MD4(NT hash)`.
pub fn ntlmv1_session_base_key(nt_hash: &NtHash) -> Zeroizing<[u8; 16]> {
    use md4::{Digest as _, Md4};
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&Md4::digest(nt_hash));
    out
}

/// KXKEY for NTLMv1 (MS-NLMP §3.4.5.1). With extended session security:
/// `HMAC_MD5(SessionBaseKey, ServerChallenge ‖ LmChallengeResponse[0..8])`; without it the
/// SessionBaseKey itself (`LM_KEY` and `REQUEST_NON_NT_SESSION_KEY` are never granted, so
/// their variants, which need the LM hash, do not arise).
pub fn ntlmv1_key_exchange_key(
    session_base_key: &[u8; 16],
    server_challenge: &[u8; 8],
    lm_response: &[u8],
    flags: NegotiateFlags,
) -> Zeroizing<[u8; 16]> {
    if flags.contains(NegotiateFlags::EXTENDED_SESSIONSECURITY) {
        let cc = lm_response.get(..8).unwrap_or_default();
        Zeroizing::new(hmac_md5(session_base_key, &[server_challenge, cc]))
    } else {
        Zeroizing::new(*session_base_key)
    }
}

/// RC4 of `data` under a fresh key schedule of `key` (one-shot, as for the encrypted
/// random session key).
pub(crate) fn rc4_once(key: &[u8; 16], data: &[u8; 16]) -> Zeroizing<[u8; 16]> {
    use rc4::{KeyInit as _, Rc4, StreamCipher, consts::U16};
    let mut out = Zeroizing::new(*data);
    let mut cipher = Rc4::<U16>::new(key.into());
    cipher.apply_keystream(out.as_mut_slice());
    out
}

/// The ExportedSessionKey: the client's random session key decrypted with the
/// KeyExchangeKey when `KEY_EXCH` was negotiated and a key was sent (MS-NLMP §3.2.5.1.2),
/// otherwise the KeyExchangeKey.
pub fn exported_session_key(
    key_exchange_key: &[u8; 16],
    encrypted_random_session_key: &[u8],
    flags: NegotiateFlags,
) -> Zeroizing<[u8; 16]> {
    match <&[u8; 16]>::try_from(encrypted_random_session_key) {
        Ok(enc) if flags.contains(NegotiateFlags::KEY_EXCH) => rc4_once(key_exchange_key, enc),
        _ => Zeroizing::new(*key_exchange_key),
    }
}

/// The MIC (MS-NLMP §3.1.5.1.2): `HMAC_MD5(ExportedSessionKey, NEGOTIATE ‖ CHALLENGE ‖
/// AUTHENTICATE)`, with the AUTHENTICATE's MIC field zeroed by the caller.
pub fn mic(
    exported_session_key: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    authenticate: &[u8],
) -> [u8; 16] {
    hmac_md5(exported_session_key, &[negotiate, challenge, authenticate])
}

const CLIENT_SIGN: &[u8] = b"session key to client-to-server signing key magic constant\0";
const SERVER_SIGN: &[u8] = b"session key to server-to-client signing key magic constant\0";
const CLIENT_SEAL: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SEAL: &[u8] = b"session key to server-to-client sealing key magic constant\0";

/// SIGNKEY (MS-NLMP §3.4.5.2): `MD5(ExportedSessionKey ‖ magic)` with extended session
/// security, none without.
pub fn sign_key(
    exported_session_key: &[u8; 16],
    flags: NegotiateFlags,
    client_to_server: bool,
) -> Option<Zeroizing<[u8; 16]>> {
    flags
        .contains(NegotiateFlags::EXTENDED_SESSIONSECURITY)
        .then(|| {
            let magic = if client_to_server {
                CLIENT_SIGN
            } else {
                SERVER_SIGN
            };
            Zeroizing::new(md5(&[exported_session_key, magic]))
        })
}

/// SEALKEY (MS-NLMP §3.4.5.3). With extended session security: MD5 of the first 16
/// (`NEGOTIATE_128`), 7 (`NEGOTIATE_56`) or 5 bytes of the ExportedSessionKey and the
/// direction's magic constant. Without it: the ExportedSessionKey itself (the 40/56-bit
/// variants apply only with `LM_KEY`, which is never granted).
pub fn seal_key(
    exported_session_key: &[u8; 16],
    flags: NegotiateFlags,
    client_to_server: bool,
) -> Zeroizing<[u8; 16]> {
    if flags.contains(NegotiateFlags::EXTENDED_SESSIONSECURITY) {
        let len = if flags.contains(NegotiateFlags::NEGOTIATE_128) {
            16
        } else if flags.contains(NegotiateFlags::NEGOTIATE_56) {
            7
        } else {
            5
        };
        let magic = if client_to_server {
            CLIENT_SEAL
        } else {
            SERVER_SEAL
        };
        Zeroizing::new(md5(&[&exported_session_key[..len], magic]))
    } else {
        Zeroizing::new(*exported_session_key)
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    //! Helpers shared by the NTLM unit tests.

    /// Bytes from hex digits, white space ignored.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The §4.2.4 `temp`: RespType 1, HiRespType 1, six zero bytes, time 0, client
    /// challenge, four zero bytes, the AV pairs (NbDomainName "Domain", NbComputerName
    /// "Server", EOL), four zero bytes.
    pub(crate) fn v2_blob() -> Vec<u8> {
        hex(
            "01 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 aa aa aa aa aa aa aa aa 00 00 00 00
             02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00
             01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00
             00 00 00 00 00 00 00 00",
        )
    }
}

#[cfg(test)]
mod tests {
    //! Known answers from MS-NLMP §4.2.2 (NTLMv1), §4.2.3 (NTLMv1 with client challenge)
    //! and §4.2.4 (NTLMv2). Common values (§4.2.1): user "User", domain "Domain",
    //! password "Password", server challenge 0123456789abcdef, client challenge aa×8,
    //! random session key 55×16, time 0.
    use super::tests_support::{hex, v2_blob};
    use super::*;
    use crate::nt_hash_of;

    fn h16(s: &str) -> [u8; 16] {
        hex(s).try_into().unwrap()
    }

    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];
    const RANDOM_SESSION_KEY: [u8; 16] = [0x55; 16];

    #[test]
    fn v1_owfs_4_2_2_1() {
        assert_eq!(
            lmowf_v1("Password"),
            h16("e5 2c ac 67 41 9a 9a 22 4a 3b 10 8f 3f a6 cb 6d")
        );
        assert_eq!(
            nt_hash_of("Password"),
            h16("a4 f4 9c 40 65 10 bd ca b6 82 4e e7 c3 0f d8 52")
        );
        let nt = nt_hash_of("Password");
        assert_eq!(
            *ntlmv1_session_base_key(&nt),
            h16("d8 72 62 b0 cd e4 b1 cb 74 99 be cc cd f1 07 84")
        );
    }

    #[test]
    fn v1_results_4_2_2_2() {
        let nt = nt_hash_of("Password");
        assert_eq!(
            ntlmv1_response(&nt, &SERVER_CHALLENGE, None).to_vec(),
            hex("67 c4 30 11 f3 02 98 a2 ad 35 ec e6 4f 16 33 1c 44 bd be d9 27 84 1f 94")
        );
        // LMv1 response: DESL(LMOWFv1, ServerChallenge).
        assert_eq!(
            desl(&lmowf_v1("Password"), &SERVER_CHALLENGE).to_vec(),
            hex("98 de f7 b8 7f 88 aa 5d af e2 df 77 96 88 a1 72 de f1 1c 7d 5c cd ef 13")
        );
        // Encrypted session key: RC4(KeyExchangeKey = SessionBaseKey, RandomSessionKey).
        let flags = NegotiateFlags(0xe202_8233);
        let kx =
            ntlmv1_key_exchange_key(&ntlmv1_session_base_key(&nt), &SERVER_CHALLENGE, &[], flags);
        assert_eq!(
            *rc4_once(&kx, &RANDOM_SESSION_KEY),
            h16("51 88 22 b1 b3 f3 50 c8 95 86 82 ec bb 3e 3c b7")
        );
        // And back: the acceptor's ExportedSessionKey.
        let enc = h16("51 88 22 b1 b3 f3 50 c8 95 86 82 ec bb 3e 3c b7");
        assert_eq!(*exported_session_key(&kx, &enc, flags), RANDOM_SESSION_KEY);
    }

    #[test]
    fn v1_client_challenge_4_2_3() {
        let nt = nt_hash_of("Password");
        let flags = NegotiateFlags(0x820a_8233);
        let mut lm = [0u8; 24];
        lm[..8].copy_from_slice(&CLIENT_CHALLENGE);
        assert_eq!(
            ntlmv1_response(&nt, &SERVER_CHALLENGE, Some(&CLIENT_CHALLENGE)).to_vec(),
            hex("75 37 f8 03 ae 36 71 28 ca 45 82 04 bd e7 ca f8 1e 97 ed 26 83 26 72 32")
        );
        let kx =
            ntlmv1_key_exchange_key(&ntlmv1_session_base_key(&nt), &SERVER_CHALLENGE, &lm, flags);
        assert_eq!(*kx, h16("eb 93 42 9a 8b d9 52 f8 b8 9c 55 b8 7f 47 5e dc"));
        // No KEY_EXCH: the exported key is the key exchange key.
        let exported = exported_session_key(&kx, &[], flags);
        assert_eq!(
            *seal_key(&exported, flags, true),
            h16("04 dd 7f 01 4d 85 04 d2 65 a2 5c c8 6a 3a 7c 06")
        );
        assert_eq!(
            *sign_key(&exported, flags, true).unwrap(),
            h16("60 e7 99 be 5c 72 fc 92 92 2a e8 eb e9 61 fb 8d")
        );
    }

    #[test]
    fn v2_4_2_4() {
        let nt = nt_hash_of("Password");
        let key = ntowf_v2(&nt, "User", "Domain");
        assert_eq!(*key, h16("0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f"));
        assert_eq!(
            lmv2_response(&key, &SERVER_CHALLENGE, &CLIENT_CHALLENGE).to_vec(),
            hex("86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa aa aa aa aa")
        );
        let blob = v2_blob();
        let proof = ntlmv2_proof(&key, &SERVER_CHALLENGE, &blob);
        assert_eq!(
            proof,
            h16("68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c")
        );
        let base = ntlmv2_session_base_key(&key, &proof);
        assert_eq!(
            *base,
            h16("8d e4 0c ca db c1 4a 82 f1 5c b0 ad 0d e9 5c a3")
        );
        assert_eq!(
            *rc4_once(&base, &RANDOM_SESSION_KEY),
            h16("c5 da d2 54 4f c9 79 90 94 ce 1c e9 0b c9 d0 3e")
        );
        let flags = NegotiateFlags(0xe28a_8233);
        let exported = exported_session_key(
            &base,
            &h16("c5 da d2 54 4f c9 79 90 94 ce 1c e9 0b c9 d0 3e"),
            flags,
        );
        assert_eq!(*exported, RANDOM_SESSION_KEY);
        assert_eq!(
            *seal_key(&exported, flags, true),
            h16("59 f6 00 97 3c c4 96 0a 25 48 0a 7c 19 6e 4c 58")
        );
        assert_eq!(
            *sign_key(&exported, flags, true).unwrap(),
            h16("47 88 dc 86 1b 47 82 f3 5d 43 fd 98 fe 1a 2d 39")
        );
    }

    #[test]
    fn windows_upper_is_one_to_one() {
        assert_eq!(windows_upper("user"), "USER");
        assert_eq!(windows_upper("jörg"), "JÖRG");
        assert_eq!(windows_upper("straße"), "STRAßE");
        assert_eq!(windows_upper("ǆ"), "Ǆ");
    }

    #[test]
    fn des_key_spreads_bits() {
        assert_eq!(des_key(&[0xff; 7]), [0xfe; 8]);
        assert_eq!(
            des_key(&[0x80, 0, 0, 0, 0, 0, 0]),
            [0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(des_key(&[0, 0, 0, 0, 0, 0, 1]), [0, 0, 0, 0, 0, 0, 0, 2]);
    }
}
