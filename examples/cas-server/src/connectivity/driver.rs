//! A small client driver loop: any sans-IO client session (POP3, IMAP) over a [`Stream`],
//! read and written until the session has an event for the test.
//!
//! The connectivity tests are strictly request/response, so the loop is simpler than the
//! server's [`crate::driver`]: flush what the session queued, then read until an event
//! comes out, the session's own timer fires, or the step's deadline passes.

use std::io;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::net::Stream;

/// What the driver needs of a client session (the common sans-IO shape of
/// `pop3_proto::ClientSession` and `cas_imap_proto::client::ClientSession`).
pub trait ClientIo {
    /// The session's event type.
    type Event;
    /// Bytes from the server.
    fn handle_input(&mut self, now: Instant, data: &[u8]);
    /// The server closed the connection.
    fn handle_eof(&mut self, now: Instant);
    /// The session's timer fired.
    fn handle_timeout(&mut self, now: Instant);
    /// The next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// Appends bytes to send; returns how many.
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize;
    /// When the session's timer fires.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether the session reads now (false while it waits for the TLS handshake).
    fn wants_input(&self) -> bool;
}

impl ClientIo for pop3_proto::ClientSession {
    type Event = pop3_proto::ClientEvent;

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        pop3_proto::ClientSession::handle_input(self, now, data);
    }
    fn handle_eof(&mut self, now: Instant) {
        pop3_proto::ClientSession::handle_eof(self, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        pop3_proto::ClientSession::handle_timeout(self, now);
    }
    fn poll_event(&mut self) -> Option<Self::Event> {
        pop3_proto::ClientSession::poll_event(self)
    }
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        pop3_proto::ClientSession::poll_transmit(self, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        pop3_proto::ClientSession::poll_timeout(self)
    }
    fn wants_input(&self) -> bool {
        pop3_proto::ClientSession::wants_input(self)
    }
}

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

impl<S: ClientIo> Conn<S> {
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
