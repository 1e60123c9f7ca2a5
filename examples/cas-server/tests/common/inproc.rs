//! In-process servers: the library's [`Server`] on ephemeral loopback ports over a
//! temporary data directory (users with cheap password hashes, their Maildirs, a
//! self-signed certificate), and TLS for the test clients.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cas_server::Server;
use cas_server::access::AccessControl;
use cas_server::live::LivePolicy;
use cas_server::maildir::create_maildir;
use cas_server::protolog::Rotation;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

/// alice's password.
pub const ALICE_PASSWORD: &str = "alice-Secret-1";
/// bob's password (spaces test quoting).
pub const BOB_PASSWORD: &str = "bob secret with spaces";

/// A temporary data directory, removed on drop.
pub struct DataDir {
    _tmp: tempfile::TempDir,
    /// The directory.
    pub dir: PathBuf,
    /// The self-signed certificate, PEM (for the clients' trust store).
    pub cert_pem: String,
    /// The server's TLS acceptor for that certificate.
    pub acceptor: TlsAcceptor,
    /// alice and bob.
    pub credentials: Arc<cas_auth::FileCredentialStore>,
}

impl DataDir {
    /// `policy.toml` holding `policy` (Exchange vocabulary); users alice and bob with cheap
    /// password hashes (and NT hashes when `nt_hashes`), each with a Maildir under
    /// `maildir/` that `fill(maildir_root, user)` fills; a self-signed certificate.
    pub fn new(policy: &str, nt_hashes: bool, fill: impl Fn(&Path, &str)) -> DataDir {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        fs::write(dir.join("policy.toml"), policy).unwrap();
        let params = cas_auth::PasswordHashParams::dangerous_low_cost();
        let mut users = String::new();
        for (user, password) in [("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)] {
            let phc =
                cas_auth::hash_password_with(password.as_bytes(), b"fixture-salt-0001", &params)
                    .unwrap();
            let nt = nt_hashes.then(|| cas_auth::nt_hash_of(password));
            users.push_str(&cas_auth::FileCredentialStore::render_line(user, &phc, nt).unwrap());
            users.push('\n');
            create_maildir(&dir.join("maildir").join(user)).unwrap();
            fill(&dir.join("maildir"), user);
        }
        let credentials = Arc::new(cas_auth::FileCredentialStore::parse(&users).unwrap());
        let (cert_pem, key_pem) = cas_server::tls::generate_self_signed().unwrap();
        fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
        fs::write(dir.join("key.pem"), &key_pem).unwrap();
        let acceptor =
            cas_server::tls::load_acceptor(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
        DataDir {
            _tmp: tmp,
            dir,
            cert_pem,
            acceptor,
            credentials,
        }
    }

    /// The access control over this directory's `policy.toml`, protocol logs in `logs/`.
    pub fn access(&self, allow_clear_text: bool) -> Arc<AccessControl> {
        let policy = Arc::new(LivePolicy::load(&self.dir.join("policy.toml")).unwrap());
        Arc::new(AccessControl::new(
            policy,
            self.dir.join("logs"),
            Rotation::default(),
            allow_clear_text,
        ))
    }

    /// A user's Maildir.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("maildir").join(user)
    }
}

/// A TLS client configuration trusting `cert_pem` only.
pub fn connector(cert_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A server running on a task, with its plain and implicit-TLS listeners.
pub struct Running {
    /// The plain listener (STLS/STARTTLS offered).
    pub plain: SocketAddr,
    /// The implicit-TLS listener.
    pub tls: SocketAddr,
    /// Trusts the server's certificate.
    pub connector: TlsConnector,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Runs `server`, whose listeners are `plain` and `tls`.
    pub fn spawn(server: Server, plain: SocketAddr, tls: SocketAddr, cert_pem: &str) -> Running {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        Running {
            plain,
            tls,
            connector: connector(cert_pem),
            shutdown,
            task,
        }
    }

    /// A TLS connection to the implicit-TLS listener, the certificate checked for
    /// `localhost`.
    pub async fn connect_tls(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.tls).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        self.connector.connect(name, tcp).await.unwrap()
    }

    /// Asks the server to shut down (its sessions say goodbye); [`Running::stop`] waits.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Shuts the server down and waits for it (10 s at most).
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}
