//! The NTLM initiator against this crate's own acceptor: right password accepted, wrong
//! refused, MIC verified, channel bindings matched or refused, and the two sessions' keys
//! agree (each side unseals what the other sealed).

use std::sync::Arc;

use cas_auth::channel_binding::{ChannelBindings, ExtendedProtection};
use cas_auth::ntlm::messages::AuthenticateMessage;
use cas_auth::ntlm::{
    FileTime, NtlmAcceptor, NtlmAuthenticated, NtlmConfig, NtlmCredentials, NtlmError,
    NtlmInitiated, NtlmInitiator, NtlmVersion,
};
use cas_auth::{CredentialStore, NtHash, Secret, StoreError, nt_hash_of};

/// One account: alice / Passw0rd!.
struct Store;

impl CredentialStore for Store {
    fn verify_password(&self, _: &str, _: &[u8]) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
        Ok(user
            .eq_ignore_ascii_case("alice")
            .then(|| Secret::new(nt_hash_of("Passw0rd!"))))
    }

    fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
        Ok(user
            .eq_ignore_ascii_case("alice")
            .then(|| "alice".to_owned()))
    }
}

const NOW: FileTime = FileTime(133_500_000_000_000_000);

fn config() -> NtlmConfig {
    NtlmConfig::new("CORP", "CAS01", "corp.example", "cas01.corp.example")
}

fn run(
    client: NtlmInitiator,
    config: NtlmConfig,
    server_bindings: Option<&ChannelBindings>,
) -> (NtlmInitiated, Result<NtlmAuthenticated, NtlmError>) {
    let mut client = client;
    let mut server = NtlmAcceptor::new(Arc::new(config));
    if let Some(b) = server_bindings {
        server = server.with_channel_bindings(b);
    }
    let negotiate = client.negotiate().unwrap();
    let challenge = server.handle_negotiate(&negotiate, [9; 8], NOW).unwrap();
    let done = client
        .handle_challenge(&challenge, [0x11; 8], [0x22; 16], NOW)
        .unwrap();
    let result = server.handle_authenticate(&Store, &done.authenticate, NOW);
    (done, result)
}

fn alice(password: &str) -> NtlmInitiator {
    NtlmInitiator::new(NtlmCredentials::from_password("alice", "CORP", password))
        .with_workstation("WS01")
}

#[test]
fn right_password_is_accepted_with_mic_and_keys_agree() {
    let (done, result) = run(alice("Passw0rd!"), config(), None);
    let auth = result.unwrap();
    assert_eq!(auth.user, "alice");
    assert_eq!(auth.workstation, "WS01");
    assert_eq!(auth.version, NtlmVersion::V2);
    assert!(
        done.mic_sent,
        "the acceptor sends a timestamp, so a MIC is due"
    );
    assert!(auth.mic_verified);
    assert_eq!(auth.flags, done.flags);
    let mut client = done.session;
    let mut server = auth.session.unwrap();
    assert_eq!(
        client.exported_session_key().expose(),
        server.exported_session_key().expose()
    );
    let mut data = b"client to server".to_vec();
    let sig = client.seal(&mut data);
    assert_ne!(&data[..], b"client to server");
    server.unseal(&mut data, &sig).unwrap();
    assert_eq!(&data[..], b"client to server");
    let mut data = b"server to client".to_vec();
    let sig = server.seal(&mut data);
    client.unseal(&mut data, &sig).unwrap();
    assert_eq!(&data[..], b"server to client");
    let sig = client.sign(b"signed");
    server.verify(b"signed", &sig).unwrap();
}

#[test]
fn wrong_password_and_unknown_user_are_refused() {
    let (_, result) = run(alice("passw0rd!"), config(), None);
    assert!(matches!(result, Err(NtlmError::InvalidCredentials)));
    let bob = NtlmInitiator::new(NtlmCredentials::from_password("bob", "CORP", "Passw0rd!"));
    let (_, result) = run(bob, config(), None);
    assert!(matches!(result, Err(NtlmError::InvalidCredentials)));
}

#[test]
fn upn_and_empty_domain_are_accepted() {
    let client = NtlmInitiator::new(NtlmCredentials::from_account("alice", "Passw0rd!"));
    let (_, result) = run(client, config(), None);
    assert_eq!(result.unwrap().user, "alice");
}

#[test]
fn tampered_authenticate_fails_the_mic() {
    let mut client = alice("Passw0rd!");
    let mut server = NtlmAcceptor::new(Arc::new(config()));
    let negotiate = client.negotiate().unwrap();
    let challenge = server.handle_negotiate(&negotiate, [9; 8], NOW).unwrap();
    let done = client
        .handle_challenge(&challenge, [0x11; 8], [0x22; 16], NOW)
        .unwrap();
    // Change the workstation name, which the NTProofStr does not cover but the MIC does.
    let mut msg = AuthenticateMessage::parse(&done.authenticate, 65536).unwrap();
    msg.workstation = "EVIL".into();
    let tampered = msg.encode();
    assert!(matches!(
        server.handle_authenticate(&Store, &tampered, NOW),
        Err(NtlmError::MicMismatch)
    ));
}

#[test]
fn channel_bindings_match_and_mismatch() {
    let ours = ChannelBindings::from_application_data(b"tls-server-end-point:abc".to_vec());
    let other = ChannelBindings::from_application_data(b"tls-server-end-point:xyz".to_vec());
    let required = || config().with_extended_protection(ExtendedProtection::Require);

    let (done, result) = run(
        alice("Passw0rd!").with_channel_bindings(&ours),
        required(),
        Some(&ours),
    );
    assert!(done.channel_bindings_sent);
    assert!(result.unwrap().channel_bindings_verified);

    let (_, result) = run(
        alice("Passw0rd!").with_channel_bindings(&other),
        required(),
        Some(&ours),
    );
    assert!(matches!(result, Err(NtlmError::ChannelBindingMismatch)));

    let (_, result) = run(alice("Passw0rd!"), required(), Some(&ours));
    assert!(matches!(result, Err(NtlmError::ChannelBindingMissing)));
}

#[test]
fn target_name_reaches_the_acceptor() {
    let (_, result) = run(
        alice("Passw0rd!").with_target_name("HTTP/cas01.corp.example"),
        config(),
        None,
    );
    assert_eq!(
        result.unwrap().target_name.as_deref(),
        Some("HTTP/cas01.corp.example")
    );
}
