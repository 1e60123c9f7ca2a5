//! NTLM session security after authentication (MS-NLMP §3.4): message signatures and
//! sealing, with per-direction keys and sequence numbers, for DCE/RPC packet integrity
//! (auth level 5) and privacy (auth level 6).

use std::fmt;

use rc4::consts::U16;
use rc4::{KeyInit, Rc4, StreamCipher};
use zeroize::Zeroizing;

use super::crypto::{hmac_md5, seal_key, sign_key};
use super::messages::NegotiateFlags;
use crate::secret::{Secret, constant_time_eq};

/// Length of an NTLMSSP_MESSAGE_SIGNATURE (MS-NLMP §2.2.2.9).
pub const SIGNATURE_LEN: usize = 16;

/// Which end of the connection a [`NtlmSession`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The server (acceptor): sends with the server-to-client keys.
    Server,
    /// The client (initiator): sends with the client-to-server keys.
    Client,
}

/// A received signature did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature is not 16 bytes, or its version is not 1.
    #[error("malformed message signature")]
    Malformed,
    /// The checksum does not match the message.
    #[error("message signature mismatch")]
    BadChecksum,
    /// The checksum matches but the sequence number is not the expected one (a replayed,
    /// dropped or reordered message).
    #[error("sequence number {found}, expected {expected}")]
    BadSequence {
        /// The sequence number this side expected.
        expected: u32,
        /// The one in the signature.
        found: u32,
    },
    /// An earlier verification failed; the RC4 state is out of step, so the session
    /// cannot be used any more.
    #[error("session broken by an earlier verification failure")]
    Broken,
}

struct Direction {
    sign_key: Option<Zeroizing<[u8; 16]>>,
    rc4: Rc4<U16>,
    seq: u32,
}

impl Direction {
    fn new(exported: &[u8; 16], flags: NegotiateFlags, client_to_server: bool) -> Direction {
        let seal = seal_key(exported, flags, client_to_server);
        Direction {
            sign_key: sign_key(exported, flags, client_to_server),
            rc4: Rc4::new(seal.as_ref().into()),
            seq: 0,
        }
    }

    /// The checksum bytes 4..16 of the signature, computed over the plaintext `parts`
    /// after any sealing has consumed its keystream. Advances the sequence number.
    fn mac(&mut self, flags: NegotiateFlags, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        match &self.sign_key {
            // Extended session security (MS-NLMP §3.4.4.2).
            Some(key) => {
                let seq_bytes = seq.to_le_bytes();
                let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
                all.push(&seq_bytes);
                all.extend_from_slice(parts);
                let digest = hmac_md5(key.as_ref(), &all);
                sig[4..12].copy_from_slice(&digest[..8]);
                if flags.contains(NegotiateFlags::KEY_EXCH) {
                    self.rc4.apply_keystream(&mut sig[4..12]);
                }
                sig[12..].copy_from_slice(&seq_bytes);
            }
            // Without it (MS-NLMP §3.4.4.1): RC4 over RandomPad (0), CRC32 and 0, the last
            // XORed with the sequence number.
            None => {
                let mut crc = crc32fast::Hasher::new();
                for p in parts {
                    crc.update(p);
                }
                sig[8..12].copy_from_slice(&crc.finalize().to_le_bytes());
                self.rc4.apply_keystream(&mut sig[4..16]);
                for (s, q) in sig[12..].iter_mut().zip(seq.to_le_bytes()) {
                    *s ^= q;
                }
            }
        }
        sig
    }

    /// Checks a received signature against the plaintext `parts`.
    fn check(
        &mut self,
        flags: NegotiateFlags,
        parts: &[&[u8]],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let Ok(received) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
            return Err(SignatureError::Malformed);
        };
        if received[..4] != 1u32.to_le_bytes() {
            return Err(SignatureError::Malformed);
        }
        let expected_seq = self.seq;
        let expected = self.mac(flags, parts);
        let found = if self.sign_key.is_some() {
            u32::from_le_bytes([received[12], received[13], received[14], received[15]])
        } else {
            // The last four bytes are RC4(0) XOR SeqNum, and mac() used the same keystream:
            // XOR the two to recover the sender's number.
            let mut s = [0u8; 4];
            for (i, b) in s.iter_mut().enumerate() {
                *b = received[12 + i] ^ expected[12 + i] ^ expected_seq.to_le_bytes()[i];
            }
            u32::from_le_bytes(s)
        };
        // The RandomPad (bytes 4..8 without extended session security) is not checked: a
        // sender may pad with anything.
        let checksum = if self.sign_key.is_some() {
            4..12
        } else {
            8..12
        };
        if !constant_time_eq(&received[checksum.clone()], &expected[checksum]) {
            return Err(SignatureError::BadChecksum);
        }
        if found != expected_seq {
            return Err(SignatureError::BadSequence {
                expected: expected_seq,
                found,
            });
        }
        Ok(())
    }
}

/// The security context an NTLM authentication leaves behind (MS-NLMP §3.4): signing and
/// sealing keys for both directions, their RC4 states and sequence numbers.
///
/// The outgoing direction uses the keys of `role` (a server signs with the
/// server-to-client keys); the incoming direction the other ones. Each direction keeps its
/// own sequence number, starting at 0 and incremented by every signature made or checked.
/// Signing and sealing share one RC4 state per direction, so messages must be processed in
/// the order they are sent and received, and one failed check leaves the session unusable
/// ([`SignatureError::Broken`] from then on): drop the connection.
///
/// With `EXTENDED_SESSIONSECURITY` (always, for clients of this century) the checksum is
/// `HMAC_MD5(SignKey, SeqNum ‖ message)[0..8]`, RC4-encrypted under `KEY_EXCH`. Without it,
/// the NTLMv1 form: a CRC32 under RC4. `Debug` shows no key.
pub struct NtlmSession {
    flags: NegotiateFlags,
    role: Role,
    exported_session_key: Secret<[u8; 16]>,
    send: Direction,
    recv: Direction,
    broken: bool,
}

impl fmt::Debug for NtlmSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmSession")
            .field("flags", &self.flags)
            .field("role", &self.role)
            .field("send_seq", &self.send.seq)
            .field("recv_seq", &self.recv.seq)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl NtlmSession {
    /// Derives the session from the ExportedSessionKey and the negotiated flags.
    pub fn new(exported_session_key: &[u8; 16], flags: NegotiateFlags, role: Role) -> NtlmSession {
        let client = Direction::new(exported_session_key, flags, true);
        let server = Direction::new(exported_session_key, flags, false);
        let (send, recv) = match role {
            Role::Server => (server, client),
            Role::Client => (client, server),
        };
        NtlmSession {
            flags,
            role,
            exported_session_key: Secret::new(*exported_session_key),
            send,
            recv,
            broken: false,
        }
    }

    /// Restarts both directions' RC4 keystreams from their sealing keys, keeping the
    /// sequence numbers (and a broken session broken).
    ///
    /// SPNEGO requires this once the `mechListMIC`s are exchanged (MS-SPNG §3.3.5.1): the
    /// application's first signed or sealed message uses the RC4 state the MIC started
    /// from, but the sequence number after it (Windows, Samba and pyspnego all do this; a
    /// peer that also restarted the numbers would be off by one).
    pub fn restart_rc4_after_mech_list_mic(&mut self) {
        let key = *self.exported_session_key.expose();
        let (send_c2s, recv_c2s) = match self.role {
            Role::Server => (false, true),
            Role::Client => (true, false),
        };
        let send_seq = self.send.seq;
        let recv_seq = self.recv.seq;
        self.send = Direction::new(&key, self.flags, send_c2s);
        self.recv = Direction::new(&key, self.flags, recv_c2s);
        self.send.seq = send_seq;
        self.recv.seq = recv_seq;
    }

    /// The negotiated flags the keys were derived with.
    pub fn flags(&self) -> NegotiateFlags {
        self.flags
    }

    /// The ExportedSessionKey (for SPNEGO's mechListMIC, SMB signing and the like). It
    /// decrypts the whole session: keep it out of logs.
    pub fn exported_session_key(&self) -> &Secret<[u8; 16]> {
        &self.exported_session_key
    }

    /// The sequence number the next outgoing signature will carry.
    pub fn send_sequence(&self) -> u32 {
        self.send.seq
    }

    /// The sequence number the next incoming signature must carry.
    pub fn recv_sequence(&self) -> u32 {
        self.recv.seq
    }

    /// Whether a failed check has made the session unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Signs an outgoing message (GSS_GetMIC): the 16-byte NTLMSSP_MESSAGE_SIGNATURE.
    pub fn sign(&mut self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign_parts(&[message])
    }

    /// Signs the concatenation of `parts` (a DCE/RPC PDU: header, body, trailer).
    pub fn sign_parts(&mut self, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
        self.send.mac(self.flags, parts)
    }

    /// Checks the signature of an incoming message (GSS_VerifyMIC).
    pub fn verify(&mut self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        self.verify_parts(&[message], signature)
    }

    /// Checks the signature of an incoming message made of `parts`.
    pub fn verify_parts(
        &mut self,
        parts: &[&[u8]],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        if self.broken {
            return Err(SignatureError::Broken);
        }
        let result = self.recv.check(self.flags, parts, signature);
        self.broken = result.is_err();
        result
    }

    /// Seals an outgoing message in place (GSS_WrapEx with one buffer) and returns its
    /// signature, computed over the plaintext.
    pub fn seal(&mut self, message: &mut [u8]) -> [u8; SIGNATURE_LEN] {
        self.seal_parts(&[], message, &[])
    }

    /// Seals `data` in place and signs `before ‖ data ‖ after` (all in plaintext), as
    /// DCE/RPC packet privacy does with the PDU header, the stub data and the
    /// sec_trailer.
    pub fn seal_parts(
        &mut self,
        before: &[u8],
        data: &mut [u8],
        after: &[u8],
    ) -> [u8; SIGNATURE_LEN] {
        // The checksum covers the plaintext, but the data takes its keystream first.
        let plaintext = Zeroizing::new(data.to_vec());
        self.send.rc4.apply_keystream(data);
        self.send.mac(self.flags, &[before, &plaintext, after])
    }

    /// Unseals an incoming message in place and checks its signature (GSS_UnwrapEx). On
    /// error the contents of `message` are unspecified and the session is broken.
    pub fn unseal(&mut self, message: &mut [u8], signature: &[u8]) -> Result<(), SignatureError> {
        self.unseal_parts(&[], message, &[], signature)
    }

    /// Unseals `data` in place and checks the signature over `before ‖ data ‖ after`.
    pub fn unseal_parts(
        &mut self,
        before: &[u8],
        data: &mut [u8],
        after: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        if self.broken {
            return Err(SignatureError::Broken);
        }
        self.recv.rc4.apply_keystream(data);
        let result = self
            .recv
            .check(self.flags, &[before, data, after], signature);
        self.broken = result.is_err();
        result
    }
}

#[cfg(test)]
mod tests {
    //! GSS_WrapEx examples of MS-NLMP §4.2.2.4, §4.2.3.4 and §4.2.4.4, seen from the
    //! client (which seals) and from the server (which unseals).
    use super::*;
    use crate::ntlm::crypto::tests_support::hex;

    fn plaintext() -> Vec<u8> {
        crate::ntlm::messages::utf16le("Plaintext")
    }

    fn check(exported: [u8; 16], flags: u32, sealed: &str, signature: &str) {
        let flags = NegotiateFlags(flags);
        let mut client = NtlmSession::new(&exported, flags, Role::Client);
        let mut data = plaintext();
        let sig = client.seal(&mut data);
        assert_eq!(data, hex(sealed));
        assert_eq!(sig.to_vec(), hex(signature));
        assert_eq!(client.send_sequence(), 1);

        let mut server = NtlmSession::new(&exported, flags, Role::Server);
        server.unseal(&mut data, &sig).unwrap();
        assert_eq!(data, plaintext());
        assert_eq!(server.recv_sequence(), 1);

        // A replay of the same message is refused (sequence and keystream have moved on).
        let mut again = hex(sealed);
        assert!(server.unseal(&mut again, &sig).is_err());
        assert!(server.is_broken());
        assert_eq!(server.verify(b"x", &sig), Err(SignatureError::Broken));
    }

    #[test]
    fn ntlmv1_4_2_2_4() {
        check(
            [0x55; 16],
            0xe202_8233,
            "56 fe 04 d8 61 f9 31 9a f0 d7 23 8a 2e 3b 4d 45 7f b8",
            "01 00 00 00 45 c8 44 e5 09 dc d1 df 2e 45 9d 36",
        );
    }

    #[test]
    fn ntlmv1_client_challenge_4_2_3_4() {
        // No KEY_EXCH: the exported session key is the KeyExchangeKey.
        let exported: [u8; 16] = hex("eb 93 42 9a 8b d9 52 f8 b8 9c 55 b8 7f 47 5e dc")
            .try_into()
            .unwrap();
        check(
            exported,
            0x820a_8233,
            "a0 23 72 f6 53 02 73 f3 aa 1e b9 01 90 ce 52 00 c9 9d",
            "01 00 00 00 ff 2a eb 52 f6 81 79 3a 00 00 00 00",
        );
    }

    #[test]
    fn ntlmv2_4_2_4_4() {
        check(
            [0x55; 16],
            0xe28a_8233,
            "54 e5 01 65 bf 19 36 dc 99 60 20 c1 81 1b 0f 06 fb 5f",
            "01 00 00 00 7f b3 8e c5 c5 5d 49 76 00 00 00 00",
        );
    }

    #[test]
    fn rc4_restart_after_mech_list_mic_keeps_sequence_numbers() {
        // After a MIC (seq 0) and the restart, §4.2.4.4's plaintext seals to the same
        // ciphertext as a first message (keystream from offset 0) but carries seq 1.
        let flags = NegotiateFlags(0xe28a_8233);
        let mut client = NtlmSession::new(&[0x55; 16], flags, Role::Client);
        let mut server = NtlmSession::new(&[0x55; 16], flags, Role::Server);
        let mech_types = b"30 0c 06 0a 2b 06 01 04 01 82 37 02 02 0a";
        server.verify(mech_types, &client.sign(mech_types)).unwrap();
        client.verify(mech_types, &server.sign(mech_types)).unwrap();
        client.restart_rc4_after_mech_list_mic();
        server.restart_rc4_after_mech_list_mic();
        let mut data = plaintext();
        let sig = client.seal(&mut data);
        assert_eq!(
            data,
            hex("54 e5 01 65 bf 19 36 dc 99 60 20 c1 81 1b 0f 06 fb 5f")
        );
        assert_eq!(sig[12..], 1u32.to_le_bytes());
        server.unseal(&mut data, &sig).unwrap();
        assert_eq!(data, plaintext());
        assert_eq!((server.recv_sequence(), server.send_sequence()), (2, 1));
    }

    #[test]
    fn sign_verify_both_directions_and_tampering() {
        for flags in [0xe28a_8233u32, 0x820a_8233, 0xe202_8233] {
            let flags = NegotiateFlags(flags);
            let mut client = NtlmSession::new(&[7; 16], flags, Role::Client);
            let mut server = NtlmSession::new(&[7; 16], flags, Role::Server);
            for i in 0..3u8 {
                let m = [i; 10];
                let sig = server.sign(&m);
                client.verify(&m, &sig).unwrap();
                let sig = client.sign_parts(&[b"head", &m, b"tail"]);
                server.verify_parts(&[b"head", &m, b"tail"], &sig).unwrap();
            }
            let sig = client.sign(b"hello");
            assert_eq!(
                server.verify(b"hellO", &sig),
                Err(SignatureError::BadChecksum)
            );
            let mut fresh = NtlmSession::new(&[7; 16], flags, Role::Server);
            assert_eq!(fresh.verify(b"x", &[0; 15]), Err(SignatureError::Malformed));
        }
    }

    #[test]
    fn out_of_order_sequence_is_reported() {
        let flags = NegotiateFlags(0x820a_8233);
        let mut client = NtlmSession::new(&[1; 16], flags, Role::Client);
        let mut server = NtlmSession::new(&[1; 16], flags, Role::Server);
        let _lost = client.sign(b"one");
        let sig = client.sign(b"two");
        // Without KEY_EXCH nor sealing the checksum is independent of RC4, so only the
        // sequence number gives the loss away.
        assert!(matches!(
            server.verify(b"two", &sig),
            Err(SignatureError::BadChecksum | SignatureError::BadSequence { .. })
        ));
    }

    #[test]
    fn debug_hides_keys() {
        let s = NtlmSession::new(&[0x42; 16], NegotiateFlags(0xe28a_8233), Role::Server);
        let d = format!("{s:?}");
        assert!(!d.contains("42") && !d.contains("66"), "{d}");
    }
}
