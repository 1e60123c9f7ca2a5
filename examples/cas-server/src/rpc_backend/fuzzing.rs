//! Invariants of the association machine, shared by the `rpc_backend` fuzz target and the
//! unit tests: arbitrary bytes never panic, buffers stay bounded, every PDU we send decodes
//! and fits the negotiated fragment size, nothing is sent after the association closed, and
//! the output does not depend on how the input was split into reads.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cas_auth::ntlm::FileTime;
use cas_auth::{CredentialStore, NtHash, Secret, StoreError, nt_hash_of};
use rpch_framing::pdu::{
    Bind, ContextElement, Limits, PacketType, Pdu, PduHeader, PfcFlags, SyntaxId,
};

use super::association::{Association, AssociationConfig};
use super::mgmt::MGMT_INTERFACE;
use super::security::SecurityConfig;

struct FuzzStore;

impl CredentialStore for FuzzStore {
    fn verify_password(&self, _: &str, _: &[u8]) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
        Ok((user == "alice").then(|| Secret::new(nt_hash_of("Passw0rd!"))))
    }

    fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
        Ok((user == "alice").then(|| user.to_owned()))
    }
}

fn config() -> Arc<AssociationConfig> {
    let ntlm = cas_auth::ntlm::NtlmConfig::new("CAS", "CAS-SERVER", "localhost", "localhost");
    let mut c = AssociationConfig::new(SecurityConfig {
        ntlm: Some(Arc::new(ntlm)),
        store: Arc::new(FuzzStore),
        challenge: Arc::new(|| [7; 8]),
    });
    c.principal_name = "localhost".into();
    c.secondary_address = "6001".into();
    c.max_frag = 2048;
    c.limits.max_reassembled_stub = 64 * 1024;
    Arc::new(c)
}

/// A bind to `mgmt` (NDR), so that inputs starting with it reach calls.
fn mgmt_bind() -> Vec<u8> {
    let mut h = PduHeader::new(PacketType::Bind, 1);
    h.pfc_flags = PfcFlags::FIRST_AND_LAST;
    let mut out = BytesMut::new();
    let bind = Pdu::Bind(Bind {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0,
        contexts: vec![ContextElement {
            context_id: 0,
            abstract_syntax: MGMT_INTERFACE,
            transfer_syntaxes: vec![SyntaxId::NDR],
        }],
        auth: None,
    });
    if bind.encode(&h, &mut out).is_err() {
        return Vec::new();
    }
    out.to_vec()
}

const NOW: FileTime = FileTime(133_500_000_000_000_000);

/// Runs `input` through a fresh association in the reads `splits` describes; returns the
/// PDUs sent. Checks the per-step invariants.
fn run(input: &[u8], splits: &[usize]) -> Vec<Bytes> {
    let config = config();
    let mut a = Association::new(config.clone(), 42);
    let mut sent = Vec::new();
    let mut at = 0;
    let mut cuts = splits.iter().copied().chain(std::iter::once(input.len()));
    while at < input.len() {
        let end = cuts
            .next()
            .unwrap_or(input.len())
            .clamp(at + 1, input.len());
        let was_closed = a.is_closed();
        a.handle_input(NOW, &input[at..end]);
        at = end;
        // A fragment is the most an association keeps of an incomplete PDU.
        assert!(a.buffered_input() < usize::from(u16::MAX));
        while a.poll_event().is_some() {}
        loop {
            let mut pdu = Vec::new();
            if a.poll_transmit(&mut pdu) == 0 {
                break;
            }
            assert!(!was_closed, "output after the association closed");
            let pdu = Bytes::from(pdu);
            let decoded = Pdu::decode_with_header(&pdu, &Limits::default())
                .unwrap_or_else(|e| panic!("we sent an undecodable PDU: {e}"));
            if matches!(decoded.pdu, Pdu::Response(_)) {
                assert!(pdu.len() <= usize::from(a.max_xmit_frag()));
            }
            sent.push(pdu);
        }
        assert_eq!(a.buffered_output(), 0);
    }
    sent
}

/// The fuzz entry point. The first byte chooses whether a `mgmt` bind is put in front (so
/// the rest reaches requests) and how to split the input into reads.
pub fn association(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = if mode & 1 == 1 {
        mgmt_bind()
    } else {
        Vec::new()
    };
    input.extend_from_slice(rest);
    let whole = run(&input, &[]);
    // Chunking invariance: the same input in reads of `step` bytes answers the same.
    let step = usize::from(mode >> 1).max(1);
    let splits: Vec<usize> = (1..input.len()).step_by(step).collect();
    let split = run(&input, &splits);
    assert_eq!(whole, split, "output depends on how the input was split");
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_and_garbage_hold_the_invariants() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/rpc_backend");
        let mut seen = 0;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).unwrap();
                for mode in [0u8, 1, 6, 7, 255] {
                    let mut d = data.clone();
                    if let Some(first) = d.first_mut() {
                        *first = mode;
                    }
                    super::association(&d);
                }
                seen += 1;
            }
        }
        assert!(seen >= 3, "seed corpus missing in {}", dir.display());
        for len in [0usize, 1, 15, 16, 17, 100, 5000] {
            let garbage: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            super::association(&garbage);
            let mut with_header = vec![3u8, 5, 0, 0, 3, 0x10, 0, 0, 0];
            with_header.extend_from_slice(&garbage);
            super::association(&with_header);
        }
    }
}
