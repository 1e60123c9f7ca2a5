//! A small client driver loop: any sans-IO client session (POP3, IMAP) over a [`Stream`],
//! read and written until the session has an event for the test.
//!
//! The connectivity tests are strictly request/response, so the loop is simpler than the
//! server's [`crate::driver`]: flush what the session queued, then read until an event
//! comes out, the session's own timer fires, or the step's deadline passes.

use std::fmt::Display;
use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::net::{self, Stream, TlsOptions};
use super::report::{Failed, Failure, Report};
use crate::driver::SansIoSession;

// The client sessions have the common sans-IO shape too: the server's driver trait serves.
crate::driver::sans_io_session!(
    pop3_proto::ClientSession,
    pop3_proto::ClientEvent,
    shutdown(session, now) => session.close(now)
);
crate::driver::sans_io_session!(
    cas_imap_proto::client::ClientSession,
    cas_imap_proto::client::Event,
    shutdown(session, now) => session.close(now)
);

/// Why no event came.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// Reading or writing the socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The step's deadline passed with no event.
    #[error("no answer from the server in time")]
    TimedOut,
    /// The session is waiting for something the driver cannot give (e.g. a TLS
    /// handshake) and has no event.
    #[error("the session is stalled")]
    Stalled,
}

/// A session and its connection.
#[derive(Debug)]
pub struct Conn<S> {
    /// The sans-IO session.
    pub session: S,
    stream: Option<Stream>,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
}

impl<S: SansIoSession> Conn<S> {
    /// Wraps `session` over `stream`.
    pub fn new(session: S, stream: Stream) -> Conn<S> {
        Conn {
            session,
            stream: Some(stream),
            read_buf: vec![0; 16 * 1024],
            write_buf: Vec::new(),
        }
    }

    /// The connection (absent only while [`take_stream`](Conn::take_stream) has it).
    pub fn stream(&self) -> Option<&Stream> {
        self.stream.as_ref()
    }

    /// Takes the connection out (for the STARTTLS handshake); put it back with
    /// [`set_stream`](Conn::set_stream).
    pub fn take_stream(&mut self) -> Option<Stream> {
        self.stream.take()
    }

    /// Puts a (now TLS) connection back.
    pub fn set_stream(&mut self, stream: Stream) {
        self.stream = Some(stream);
    }

    /// After the server agreed to STLS/STARTTLS (and the command was flushed): the TLS
    /// handshake over the plain stream, as the step `TLS handshake`; then the session is
    /// told.
    pub async fn upgrade_tls(
        &mut self,
        report: &mut Report,
        host: &str,
        options: &TlsOptions,
        timeout: Duration,
    ) -> Result<(), Failed> {
        let Some(Stream::Plain(tcp)) = self.take_stream() else {
            return Err(Failed);
        };
        let stream = net::secure(report, tcp, true, host, options, timeout).await?;
        self.set_stream(stream);
        self.session.handle_tls_established(Instant::now());
        Ok(())
    }

    /// Sends everything the session queued.
    pub async fn flush(&mut self) -> Result<(), DriveError> {
        self.write_buf.clear();
        while self.session.poll_transmit(&mut self.write_buf) > 0 {}
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no connection"))?;
        stream.write_all(&self.write_buf).await?;
        stream.flush().await?;
        self.write_buf.clear();
        Ok(())
    }

    /// The session's next event, reading from the server as needed until `deadline`.
    pub async fn next_event(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<S::Event, DriveError> {
        loop {
            if let Some(event) = self.session.poll_event() {
                return Ok(event);
            }
            self.flush().await?;
            if let Some(event) = self.session.poll_event() {
                return Ok(event);
            }
            if !self.session.wants_input() {
                return Err(DriveError::Stalled);
            }
            let timer = self.session.poll_timeout();
            let wake = timer
                .map(|t| tokio::time::Instant::from_std(t).min(deadline))
                .unwrap_or(deadline);
            let stream = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no connection"))?;
            match tokio::time::timeout_at(wake, stream.read(&mut self.read_buf)).await {
                Ok(Ok(0)) => self.session.handle_eof(Instant::now()),
                Ok(Ok(n)) => {
                    let data = self.read_buf.get(..n).unwrap_or_default();
                    self.session.handle_input(Instant::now(), data);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // A TLS peer that closes without close_notify: treat as end of stream.
                    self.session.handle_eof(Instant::now());
                }
                Ok(Err(e)) => return Err(DriveError::Io(e)),
                Err(_) => {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        return Err(DriveError::TimedOut);
                    }
                    self.session.handle_timeout(Instant::now());
                }
            }
        }
    }

    /// Closes the connection (TLS close_notify first), ignoring errors: the test is over.
    pub async fn shutdown(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), stream.shutdown()).await;
        }
    }
}

/// A report failure for a [`DriveError`] while waiting for `what` (`timeout` is the
/// step's).
pub fn drive_failure(e: &DriveError, timeout: Duration, what: &str) -> Failure {
    match e {
        DriveError::TimedOut => Failure::new(
            format!("no {what} from the server within {} s", timeout.as_secs()),
            "the server is slow or stuck, or the port speaks another protocol (is it TLS? try --security tls)",
        ),
        DriveError::Io(e) => Failure::new(
            format!("connection error: {e}"),
            "the connection broke; check the network and the server's logs",
        ),
        DriveError::Stalled => Failure::new("the client session stalled", "report a bug"),
    }
}

/// A report failure for a session the server ended (`reason` is the session's).
pub fn closed(reason: &impl Display) -> Failure {
    Failure::new(
        format!("the session ended: {reason}"),
        "the server closed the connection; its logs say why",
    )
}
