//! NTLM benches: full NTLMv2 verifications per second (parse AUTHENTICATE, NTOWFv2,
//! NTProofStr, session key and MIC), on pyspnego's captured exchange.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use cas_auth::ntlm::{FileTime, NtlmAcceptor, NtlmConfig};
use cas_auth::{CredentialStore, NtHash, Secret, StoreError, nt_hash_of};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// One account, alice/Passw0rd!, answered without hashing cost.
struct Store(NtHash);

impl CredentialStore for Store {
    fn verify_password(&self, _: &str, _: &[u8]) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
        Ok(user
            .eq_ignore_ascii_case("alice")
            .then(|| Secret::new(self.0)))
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn capture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../crates/cas-auth/tests/data/ntlm/pyspnego_{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    hex(&std::fs::read_to_string(path).unwrap())
}

fn ntlmv2_verify(c: &mut Criterion) {
    let negotiate = capture("negotiate");
    let authenticate = capture("authenticate");
    let config = Arc::new(NtlmConfig::new(
        "CORP",
        "CAS01",
        "corp.example",
        "cas01.corp.example",
    ));
    let store = Store(nt_hash_of("Passw0rd!"));
    let now = FileTime(133_500_000_000_000_000);
    let challenge = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

    let mut group = c.benchmark_group("ntlm");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ntlmv2_verify", |b| {
        b.iter_batched(
            || {
                let mut a = NtlmAcceptor::new(config.clone());
                a.handle_negotiate(&negotiate, challenge, now).unwrap();
                a
            },
            |mut a| {
                let ok = a
                    .handle_authenticate(&store, black_box(&authenticate), now)
                    .unwrap();
                black_box(ok)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("negotiate_to_challenge", |b| {
        b.iter(|| {
            let mut a = NtlmAcceptor::new(config.clone());
            black_box(
                a.handle_negotiate(black_box(&negotiate), challenge, now)
                    .unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, ntlmv2_verify);
criterion_main!(benches);
