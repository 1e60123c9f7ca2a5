//! The common network steps: DNS resolution, TCP connect with a timeout, and the TLS
//! handshake with certificate validation that explains itself (self-signed / unknown
//! issuer, name mismatch, expired, not yet valid, expiring soon).
//!
//! rustls' WebPKI verifier does the chain, name and validity checks; this module only
//! records what it decided and reads the certificate (with `x509-parser`) to say why in
//! words an admin can act on.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::report::{Failed, Failure, Report};

/// Certificates expiring sooner than this many days raise a warning (what Exchange's
/// certificate checks and most monitoring use).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// No TLS at all.
    Plain,
    /// Plain connect, then STARTTLS (IMAP) / STLS (POP3) before login.
    Starttls,
    /// Implicit TLS from the first byte (POP3S 995, IMAPS 993, RFC 8314).
    Tls,
}

impl Security {
    /// The lower-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Security::Plain => "plain",
            Security::Starttls => "starttls",
            Security::Tls => "tls",
        }
    }
}

/// How the server's certificate is judged.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file with the CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Accept a self-signed certificate (still checked for name and validity period).
    pub accept_self_signed: bool,
}

/// Resolves `host` (A and AAAA), as the step `DNS resolution`. An IP literal passes
/// without a lookup.
pub async fn resolve(
    report: &mut Report,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Failed> {
    let step = report.start("DNS resolution");
    if let Ok(ip) = host.parse::<IpAddr>() {
        report.pass(step, format!("{ip} is an IP address, no lookup needed"));
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await;
    let addrs: Vec<SocketAddr> = match lookup {
        Err(_) => {
            return Err(report.fail(
                step,
                Failure::new(
                    format!("no DNS answer for {host} within {}", secs(timeout)),
                    "check the resolver (/etc/resolv.conf) and the network",
                ),
            ));
        }
        Ok(Err(e)) => {
            return Err(report.fail(
                step,
                Failure::new(
                    format!("{host} does not resolve: {e}"),
                    "check the host name's spelling and that it has an A or AAAA record",
                ),
            ));
        }
        Ok(Ok(addrs)) => addrs.collect(),
    };
    if addrs.is_empty() {
        return Err(report.fail(
            step,
            Failure::new(
                format!("{host} has no A or AAAA record"),
                "publish an A or AAAA record for the host",
            ),
        ));
    }
    let v4 = addrs.iter().filter(|a| a.is_ipv4()).count();
    let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    report.pass(
        step,
        format!(
            "{host} → {} ({v4} A, {} AAAA)",
            list.join(", "),
            addrs.len() - v4
        ),
    );
    Ok(addrs)
}

/// Connects to the first address that answers, as the step `TCP connect`; each attempt
/// is bounded by `timeout`.
pub async fn connect(
    report: &mut Report,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<TcpStream, Failed> {
    let step = report.start("TCP connect");
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                report.pass(step, addr.to_string());
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some((*addr, Some(e))),
            Err(_) => last = Some((*addr, None)),
        }
    }
    let failure = match last {
        None => Failure::new("no address to connect to", "check the DNS step"),
        Some((addr, None)) => Failure::new(
            format!("connection to {addr} timed out after {}", secs(timeout)),
            "a firewall may drop the packets, or the host is down; check the port and the firewall",
        ),
        Some((addr, Some(e))) if e.kind() == io::ErrorKind::ConnectionRefused => Failure::new(
            format!("connection refused by {addr}"),
            "nothing listens on that port: check the port number and that the service is running",
        ),
        Some((addr, Some(e))) => Failure::new(
            format!("cannot connect to {addr}: {e}"),
            "check the address, routing and firewall",
        ),
    };
    Err(report.fail(step, failure))
}

/// The stream over `tcp`: after the TLS handshake (the step `TLS handshake`) when
/// `tls`, else plain.
pub async fn secure(
    report: &mut Report,
    tcp: TcpStream,
    tls: bool,
    host: &str,
    options: &TlsOptions,
    timeout: Duration,
) -> Result<Stream, Failed> {
    if !tls {
        return Ok(Stream::Plain(tcp));
    }
    let tls = tls_handshake(report, "TLS handshake", tcp, host, options, timeout).await?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// The steps `DNS resolution`, `TCP connect` and, for implicit TLS, `TLS handshake`; the
/// addresses come back too, for reconnections.
pub async fn open(
    report: &mut Report,
    host: &str,
    port: u16,
    implicit_tls: bool,
    options: &TlsOptions,
    timeout: Duration,
) -> Result<(Vec<SocketAddr>, Stream), Failed> {
    let addrs = resolve(report, host, port, timeout).await?;
    let tcp = connect(report, &addrs, timeout).await?;
    let stream = secure(report, tcp, implicit_tls, host, options, timeout).await?;
    Ok((addrs, stream))
}

/// The TLS handshake and certificate validation, as a step named `step_name` (`TLS
/// handshake`, or `STARTTLS` when it follows the protocol's upgrade command).
pub async fn tls_handshake(
    report: &mut Report,
    step_name: &str,
    tcp: TcpStream,
    host: &str,
    options: &TlsOptions,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, Failed> {
    let mut step = report.start(step_name);
    let verifier = match CheckingVerifier::new(options) {
        Ok(v) => Arc::new(v),
        Err(f) => return Err(report.fail(step, f)),
    };
    if let Some(w) = &verifier.roots_warning {
        step.warn(w.clone());
    }
    let config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth()
        });
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            return Err(report.fail(
                step,
                Failure::new(
                    format!("TLS setup failed: {e}"),
                    "this is a bug in the tester",
                ),
            ));
        }
    };
    let name = match ServerName::try_from(host.to_owned()) {
        Ok(n) => n,
        Err(e) => {
            return Err(report.fail(
                step,
                Failure::new(
                    format!("{host} is not a valid TLS server name: {e}"),
                    "use the host name the certificate is issued for",
                ),
            ));
        }
    };
    let connector = TlsConnector::from(Arc::new(config));
    let result = tokio::time::timeout(timeout, connector.connect(name, tcp)).await;
    let stream = match result {
        Err(_) => {
            return Err(report.fail(
                step,
                Failure::new(
                    format!("no TLS handshake within {}", secs(timeout)),
                    "the port may not speak TLS: try --security plain or starttls",
                ),
            ));
        }
        Ok(Err(e)) => {
            let failure = explain_handshake_error(&e, host, &verifier);
            return Err(report.fail(step, failure));
        }
        Ok(Ok(s)) => s,
    };
    let (_, conn) = stream.get_ref();
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "TLS",
    };
    let suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("");
    let mut detail = format!("{version} {suite}");
    if let Some(info) = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|leaf| CertInfo::parse(leaf))
    {
        detail.push_str(&format!(
            "; certificate for {} issued by {}, valid until {}",
            info.names_or_subject(),
            info.issuer,
            info.not_after_date
        ));
        let days = info.days_left(unix_now());
        if days < EXPIRY_WARNING_DAYS {
            step.warn(format!(
                "the certificate expires in {days} day{} ({})",
                if days == 1 { "" } else { "s" },
                info.not_after_date
            ));
        }
    }
    if let Some(why) = verifier.accepted() {
        step.warn(why);
    }
    report.pass(step, detail);
    Ok(stream)
}

/// Words for a failed handshake: the verifier's decision if it refused the certificate,
/// else the TLS error.
fn explain_handshake_error(e: &io::Error, host: &str, verifier: &CheckingVerifier) -> Failure {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let info = verifier.leaf().as_deref().and_then(CertInfo::parse);
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(ce)) => explain_certificate(ce, host, info.as_ref()),
        Some(rustls::Error::InvalidMessage(_))
        | Some(rustls::Error::InappropriateMessage { .. }) => Failure::new(
            format!("the server did not answer with TLS ({e})"),
            "the port may speak plain text: try --security plain or starttls",
        ),
        Some(rustls::Error::AlertReceived(alert)) => Failure::new(
            format!("the server refused the TLS handshake (alert {alert:?})"),
            "the server may not support TLS 1.2/1.3 or our cipher suites; check its TLS configuration",
        ),
        _ if e.kind() == io::ErrorKind::UnexpectedEof => Failure::new(
            "the server closed the connection during the TLS handshake",
            "the port may not speak TLS: try --security plain or starttls",
        ),
        _ => Failure::new(
            format!("TLS handshake failed: {e}"),
            "check the server's TLS configuration",
        ),
    }
}

/// Words for a refused certificate.
fn explain_certificate(ce: &CertificateError, host: &str, info: Option<&CertInfo>) -> Failure {
    let subject = info.map_or_else(|| "?".to_owned(), |i| i.subject.clone());
    match ce {
        CertificateError::UnknownIssuer if info.is_some_and(|i| i.self_signed) => Failure::new(
            format!("certificate is self-signed ({subject})"),
            "for a demo server pass --accept-self-signed; otherwise install a certificate from a trusted CA, or pass --ca-file",
        ),
        CertificateError::UnknownIssuer => Failure::new(
            format!(
                "certificate is issued by an unknown CA ({})",
                info.map_or("?", |i| i.issuer.as_str())
            ),
            "pass --ca-file with the issuing CA, or make the server send its intermediate certificates",
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = match (ce, info) {
                (_, Some(i)) => i.names_or_subject(),
                (CertificateError::NotValidForNameContext { presented, .. }, None)
                    if !presented.is_empty() =>
                {
                    // rustls renders them as `DnsName("a.example")`: keep what is quoted.
                    presented
                        .iter()
                        .map(|p| p.split('"').nth(1).unwrap_or(p).to_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
                _ => "other names".to_owned(),
            };
            Failure::new(
                format!("certificate is for {names}, not {host}"),
                "connect with a name the certificate covers, or give the server a certificate for this name",
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => Failure::new(
            format!(
                "certificate expired on {}",
                info.map_or("?", |i| i.not_after_date.as_str())
            ),
            "renew the server's certificate (or check this machine's clock)",
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Failure::new(
                format!(
                    "certificate is not valid before {}",
                    info.map_or("?", |i| i.not_before_date.as_str())
                ),
                "check the clocks of this machine and of the server",
            )
        }
        CertificateError::Other(other) if is_ca_as_leaf(other) => Failure::new(
            format!(
                "certificate is a CA certificate (basicConstraints CA:TRUE) used as the server's own ({subject})"
            ),
            "issue a server certificate (CA:FALSE) from that CA; for a demo server pass --accept-self-signed",
        ),
        CertificateError::Revoked => Failure::new(
            "certificate has been revoked",
            "give the server a new certificate",
        ),
        other => Failure::new(
            format!("certificate rejected: {other:?}"),
            "check the server's certificate chain",
        ),
    }
}

/// What an admin needs to know about a certificate.
#[derive(Clone, Debug)]
pub struct CertInfo {
    /// Subject DN, e.g. `CN=localhost, O=cas-rs demo`.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// DNS names and IP addresses from subjectAltName.
    pub names: Vec<String>,
    /// Whether issuer and subject are the same (self-issued).
    pub self_signed: bool,
    /// notBefore as `YYYY-MM-DD`.
    pub not_before_date: String,
    /// notAfter as `YYYY-MM-DD`.
    pub not_after_date: String,
    /// notBefore in Unix seconds.
    pub not_before: i64,
    /// notAfter in Unix seconds.
    pub not_after: i64,
}

impl CertInfo {
    /// Reads a DER certificate; `None` when it does not parse.
    pub fn parse(der: &[u8]) -> Option<CertInfo> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => names.push((*d).to_owned()),
                    GeneralName::IPAddress(b) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                            names.push(IpAddr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                            names.push(IpAddr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let validity = cert.validity();
        Some(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            names,
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            not_before_date: validity.not_before.to_datetime().date().to_string(),
            not_after_date: validity.not_after.to_datetime().date().to_string(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }

    /// The subjectAltName entries, or the subject when there are none.
    pub fn names_or_subject(&self) -> String {
        if self.names.is_empty() {
            self.subject.clone()
        } else {
            self.names.join(", ")
        }
    }

    /// Whether the subjectAltName covers `name` (a DNS name, `*.` wildcards matching one
    /// label, or an IP address), as WebPKI checks it; the subject CN is not looked at.
    pub fn covers(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        if let Ok(ip) = name.parse::<IpAddr>() {
            return self.names.iter().any(|n| n.parse::<IpAddr>() == Ok(ip));
        }
        self.names.iter().any(|n| {
            if let Some(suffix) = n.strip_prefix("*.") {
                name.split_once('.').is_some_and(|(label, rest)| {
                    !label.is_empty() && rest.eq_ignore_ascii_case(suffix)
                })
            } else {
                n.eq_ignore_ascii_case(name)
            }
        })
    }

    /// Whole days from `now` (Unix seconds) to notAfter (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f32())
}

/// Loads the roots: the CA file's certificates, or the system's.
type Roots = (RootCertStore, Vec<CertificateDer<'static>>, Option<String>);

fn load_roots(ca_file: Option<&Path>) -> Result<Roots, Failure> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| {
                Failure::new(
                    format!("cannot read the CA file {}: {e}", path.display()),
                    "pass a PEM file of CA certificates with --ca-file",
                )
            })?;
        let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
        if added == 0 {
            return Err(Failure::new(
                format!("no usable certificate in the CA file {}", path.display()),
                "pass a PEM file of CA certificates with --ca-file",
            ));
        }
        return Ok((roots, certs, None));
    }
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    let warning = (added == 0).then(|| {
        "no system root certificates found (install ca-certificates, or pass --ca-file)".to_owned()
    });
    Ok((roots, Vec::new(), warning))
}

/// WebPKI refuses a certificate with basicConstraints CA:TRUE as a server's own
/// (`CaUsedAsEndEntity`); rustls passes the WebPKI error through as an opaque
/// `OtherError`, so its name is the only handle on it without depending on WebPKI directly.
fn is_ca_as_leaf(other: &rustls::OtherError) -> bool {
    format!("{other:?}").contains("CaUsedAsEndEntity")
}

fn is_ca_as_leaf_error(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(CertificateError::Other(o)) if is_ca_as_leaf(o))
}

/// Name and validity period of a certificate accepted on the user's word (self-signed with
/// `--accept-self-signed`, or listed itself in `--ca-file`) that WebPKI cannot check because
/// it is a CA certificate. The handshake signature still proves the server holds its key.
fn check_name_and_dates(
    info: &CertInfo,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let name = match server_name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        _ => String::new(),
    };
    if !info.covers(&name) {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
    }
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now > info.not_after {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    if now < info.not_before {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    Ok(())
}

/// What the verifier decided, kept for the explanation.
#[derive(Default)]
struct Seen {
    leaf: Option<Vec<u8>>,
    accepted: Option<&'static str>,
}

/// rustls' WebPKI verifier, recording the certificate it saw, and accepting a self-signed
/// certificate (checked against itself as the trust anchor, so name and validity still
/// count) when the user asked for it.
struct CheckingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    accept_self_signed: bool,
    /// The `--ca-file` certificates: one of them may be the server's own (pinned).
    ca_certs: Vec<CertificateDer<'static>>,
    roots_warning: Option<String>,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for CheckingVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckingVerifier")
            .field("accept_self_signed", &self.accept_self_signed)
            .finish_non_exhaustive()
    }
}

impl CheckingVerifier {
    fn new(options: &TlsOptions) -> Result<CheckingVerifier, Failure> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (roots, ca_certs, roots_warning) = load_roots(options.ca_file.as_deref())?;
        let inner = if roots.is_empty() {
            empty_verifier(provider.clone())?
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| {
                    Failure::new(format!("unusable root certificates: {e}"), "pass --ca-file")
                })?
        };
        Ok(CheckingVerifier {
            inner,
            provider,
            accept_self_signed: options.accept_self_signed,
            ca_certs,
            roots_warning,
            seen: Mutex::new(Seen::default()),
        })
    }

    fn leaf(&self) -> Option<Vec<u8>> {
        self.seen.lock().ok().and_then(|s| s.leaf.clone())
    }

    /// Why a certificate WebPKI refused was accepted, if it was.
    fn accepted(&self) -> Option<&'static str> {
        self.seen.lock().ok().and_then(|s| s.accepted)
    }

    fn verify_self_signed(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(end_entity.clone().into_owned())?;
        let own =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        own.verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }
}

/// A WebPKI verifier that trusts nothing, for when no roots could be loaded.
fn empty_verifier(provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, Failure> {
    // WebPkiServerVerifier refuses an empty store; a freshly generated, immediately
    // forgotten CA is a root nothing chains to.
    let key = rcgen::KeyPair::generate().map_err(|e| Failure::new(e.to_string(), "bug"))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Failure::new(e.to_string(), "bug"))?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params
        .self_signed(&key)
        .map_err(|e| Failure::new(e.to_string(), "bug"))?;
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.der().clone())
        .map_err(|e| Failure::new(e.to_string(), "bug"))?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Failure::new(e.to_string(), "bug"))
}

impl ServerCertVerifier for CheckingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.leaf = Some(end_entity.to_vec());
        }
        let refused = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        let info = CertInfo::parse(end_entity);
        let self_signed = info.as_ref().is_some_and(|i| i.self_signed);
        let pinned = self
            .ca_certs
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref());
        let unknown_issuer = matches!(
            refused,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        let accepted = if self.accept_self_signed && self_signed && unknown_issuer {
            "the certificate is self-signed; accepted because of --accept-self-signed"
        } else if self.accept_self_signed && self_signed && is_ca_as_leaf_error(&refused) {
            "the certificate is a self-signed CA certificate; accepted because of --accept-self-signed"
        } else if pinned && is_ca_as_leaf_error(&refused) {
            "the certificate is a CA certificate used as the server's own; accepted because --ca-file lists it"
        } else {
            return Err(refused);
        };
        let verified = match self.verify_self_signed(end_entity, server_name, ocsp_response, now) {
            Ok(v) => v,
            // A CA certificate cannot be its own end entity for WebPKI: check what still
            // matters, the name and the dates.
            Err(e) if is_ca_as_leaf_error(&e) => {
                let info = info.ok_or(e)?;
                check_name_and_dates(&info, server_name, now)?;
                ServerCertVerified::assertion()
            }
            Err(e) => return Err(e),
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.accepted = Some(accepted);
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A connection before or after TLS: what the protocol drivers read and write.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The TLS server certificate (leaf, DER), for channel bindings.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(t) => t
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec()),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_info_of_the_demo_certificate() {
        let (pem, _) = crate::tls::generate_self_signed().unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let info = CertInfo::parse(&der).unwrap();
        assert!(info.self_signed);
        assert_eq!(info.names, ["localhost", "127.0.0.1"]);
        assert!(info.subject.contains("CN=localhost"));
        assert_eq!(info.names_or_subject(), "localhost, 127.0.0.1");
        assert!(info.days_left(unix_now()) > EXPIRY_WARNING_DAYS);
        assert!(CertInfo::parse(b"not a certificate").is_none());
    }

    #[test]
    fn name_coverage() {
        let info = CertInfo {
            subject: "CN=x".into(),
            issuer: "CN=x".into(),
            names: vec![
                "mail.example.com".into(),
                "*.corp.example".into(),
                "127.0.0.1".into(),
            ],
            self_signed: true,
            not_before_date: String::new(),
            not_after_date: String::new(),
            not_before: 0,
            not_after: 0,
        };
        assert!(info.covers("MAIL.example.com"));
        assert!(info.covers("mail.example.com."));
        assert!(info.covers("imap.corp.example"));
        assert!(!info.covers("corp.example"));
        assert!(!info.covers("a.b.corp.example"));
        assert!(info.covers("127.0.0.1"));
        assert!(!info.covers("127.0.0.2"));
        assert!(!info.covers("other.example.com"));
    }

    #[test]
    fn explanations_name_the_cause() {
        let info = CertInfo {
            subject: "CN=a".into(),
            issuer: "CN=a".into(),
            names: vec!["a.example".into()],
            self_signed: true,
            not_before_date: "2020-01-01".into(),
            not_after_date: "2021-01-01".into(),
            not_before: 0,
            not_after: 0,
        };
        let f = explain_certificate(&CertificateError::UnknownIssuer, "h", Some(&info));
        assert!(f.cause.starts_with("certificate is self-signed"), "{f:?}");
        let f = explain_certificate(&CertificateError::NotValidForName, "b.example", Some(&info));
        assert_eq!(f.cause, "certificate is for a.example, not b.example");
        let f = explain_certificate(&CertificateError::Expired, "h", Some(&info));
        assert_eq!(f.cause, "certificate expired on 2021-01-01");
        let other_ca = CertInfo {
            self_signed: false,
            issuer: "CN=Other CA".into(),
            ..info
        };
        let f = explain_certificate(&CertificateError::UnknownIssuer, "h", Some(&other_ca));
        assert_eq!(
            f.cause,
            "certificate is issued by an unknown CA (CN=Other CA)"
        );
    }
}
