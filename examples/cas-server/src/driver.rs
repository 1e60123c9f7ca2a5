//! The one per-connection driver loop, shared by every protocol.
//!
//! A protocol plugs in with two pieces:
//!
//! - a [`SansIoSession`]: the sans-IO state machine from a protocol crate (bytes in, bytes
//!   and events out, time passed in), adapted to one trait;
//! - an [`Application`]: the protocol's meaning (credentials, mailboxes), which consumes the
//!   session's events and may run background work (password checks, file reads) whose
//!   results it later feeds back.
//!
//! [`drive`] owns the socket. In one `tokio::select!` it reads (only while
//! `wants_input()`), writes pending output, sleeps until `poll_timeout()`, waits for the
//! application's background work and for server shutdown, so a pipelining client can never
//! deadlock it (INTEROP: read and write in the same select loop). Time is tokio's clock
//! (`tokio::time::Instant::now().into_std()`), so tests can pause and advance it. When the
//! application asks for STARTTLS, the driver drains all output, runs the TLS handshake on
//! the same stream, swaps the stream and tells the session.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// Read buffer per connection.
const READ_BUF: usize = 8 * 1024;
/// Pull output from the session until this much is waiting for the socket.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// After a large transfer, give memory back once the output buffer is empty.
const OUTPUT_SHRINK_ABOVE: usize = 128 * 1024;
/// Longest a TLS handshake (STLS or implicit) may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the final flush and TLS close_notify may take once the session is closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A sans-IO server session as the driver sees it (the shape every protocol crate shares).
pub trait SansIoSession: Send {
    /// The session's event type.
    type Event: Send;
    /// Bytes received from the client.
    fn handle_input(&mut self, now: Instant, data: &[u8]);
    /// The client closed its sending side (or the connection broke).
    fn handle_eof(&mut self, now: Instant);
    /// `poll_timeout()` has passed (spurious calls are no-ops).
    fn handle_timeout(&mut self, now: Instant);
    /// The TLS handshake the session asked for has completed.
    fn handle_tls_established(&mut self, now: Instant);
    /// The server is shutting down: say goodbye and close.
    fn shutdown(&mut self, now: Instant);
    /// Next event for the application.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// Appends output to `buf`; returns how many bytes (0 = nothing to send).
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize;
    /// When `handle_timeout` must be called next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Back-pressure gate: read from the socket only while true.
    fn wants_input(&self) -> bool;
    /// Closed and all output handed out: the socket may be closed.
    fn is_closed(&self) -> bool;
}

/// What the driver must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Carry on.
    Continue,
    /// Drain all output, run the TLS handshake, then call `handle_tls_established`.
    StartTls,
}

/// A protocol's application logic, driven by one session's events.
pub trait Application<S: SansIoSession>: Send {
    /// Result of background work started by the application.
    type Done: Send;

    /// Handles one event from `session`; may answer at once, or start background work.
    fn handle_event(&mut self, now: Instant, session: &mut S, event: S::Event) -> Directive;

    /// Called just before bytes from the client are handed to the session, that is before
    /// the next command is handled: the place to end a session whose right to continue was
    /// taken away meanwhile (a policy reload). The default does nothing.
    fn before_input(&mut self, now: Instant, session: &mut S) {
        let _ = (now, session);
    }

    /// Called after every drain: start work the session is ready for (for example the
    /// next chunk of a message once the session wants more message data).
    fn poll_work(&mut self, now: Instant, session: &mut S);

    /// Whether background work is outstanding.
    fn is_busy(&self) -> bool;

    /// Resolves when the outstanding work is done. Must be cancel-safe: dropping the future
    /// before it resolves leaves the work outstanding.
    fn wait(&mut self) -> impl Future<Output = Self::Done> + Send + '_;

    /// Feeds the result of finished work back (usually as a reply to the session).
    fn complete(&mut self, now: Instant, session: &mut S, done: Self::Done);
}

/// A byte stream that may have been upgraded to TLS on the server side.
pub enum MaybeTls<T> {
    /// Clear text.
    Plain(T),
    /// TLS (implicit, or after STLS/STARTTLS).
    Tls(Box<TlsStream<T>>),
    /// Transient state while the stream is handed to the TLS handshake.
    Upgrading,
}

impl<T> MaybeTls<T> {
    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }
}

fn upgrading_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "stream is being upgraded to TLS",
    )
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Upgrading => Poll::Ready(Err(upgrading_error())),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Upgrading => Poll::Ready(Err(upgrading_error())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Upgrading => Poll::Ready(Err(upgrading_error())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Upgrading => Poll::Ready(Err(upgrading_error())),
        }
    }
}

/// How a connection ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The session closed and its output was delivered.
    Closed,
    /// The socket failed (peer reset, write error, failed STARTTLS handshake).
    Broken(String),
}

/// The current time on tokio's clock (virtual in tests with paused time).
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Output waiting for the socket.
#[derive(Default)]
struct Output {
    buf: Vec<u8>,
    sent: usize,
    /// Bytes were written since the last flush (TLS may hold them in its own buffer).
    unflushed: bool,
}

impl Output {
    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    /// Pulls output from the session up to the high-water mark.
    fn fill<S: SansIoSession>(&mut self, session: &mut S) {
        while self.buf.len() - self.sent < OUTPUT_HIGH_WATER {
            if session.poll_transmit(&mut self.buf) == 0 {
                break;
            }
        }
    }

    fn advance(&mut self, n: usize) {
        self.sent += n;
        self.unflushed = true;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
            if self.buf.capacity() > OUTPUT_SHRINK_ABOVE {
                self.buf.shrink_to(READ_BUF);
            }
        }
    }
}

/// One step of socket I/O.
enum Io {
    Read(usize),
    Wrote(usize),
    Flushed,
    Failed(io::Error),
}

/// Polls, on one stream, a write of pending output (or a flush) and a read, whichever is
/// ready first.
fn poll_io<T: AsyncRead + AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    stream: &mut T,
    out: &Output,
    inbuf: &mut [u8],
    read: bool,
) -> Poll<Io> {
    let pending = out.pending();
    if !pending.is_empty() {
        match Pin::new(&mut *stream).poll_write(cx, pending) {
            Poll::Ready(Ok(0)) => {
                return Poll::Ready(Io::Failed(io::ErrorKind::WriteZero.into()));
            }
            Poll::Ready(Ok(n)) => return Poll::Ready(Io::Wrote(n)),
            Poll::Ready(Err(e)) => return Poll::Ready(Io::Failed(e)),
            Poll::Pending => {}
        }
    } else if out.unflushed {
        match Pin::new(&mut *stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => return Poll::Ready(Io::Flushed),
            Poll::Ready(Err(e)) => return Poll::Ready(Io::Failed(e)),
            Poll::Pending => {}
        }
    }
    if read {
        let mut rb = ReadBuf::new(inbuf);
        match ready!(Pin::new(stream).poll_read(cx, &mut rb)) {
            Ok(()) => return Poll::Ready(Io::Read(rb.filled().len())),
            Err(e) => return Poll::Ready(Io::Failed(e)),
        }
    }
    Poll::Pending
}

/// Drains events into the application until neither produces more work.
fn drain<S: SansIoSession, A: Application<S>>(
    now: Instant,
    session: &mut S,
    app: &mut A,
) -> Directive {
    let mut directive = Directive::Continue;
    loop {
        let mut any = false;
        while let Some(event) = session.poll_event() {
            any = true;
            if app.handle_event(now, session, event) == Directive::StartTls {
                directive = Directive::StartTls;
            }
        }
        app.poll_work(now, session);
        if !any {
            // poll_work may have answered the session, which may queue new events.
            match session.poll_event() {
                None => return directive,
                Some(event) => {
                    if app.handle_event(now, session, event) == Directive::StartTls {
                        directive = Directive::StartTls;
                    }
                }
            }
        }
    }
}

/// Writes every byte the session has to send, then flushes (before a TLS handshake).
async fn flush_all<S: SansIoSession, T: AsyncRead + AsyncWrite + Unpin>(
    session: &mut S,
    out: &mut Output,
    stream: &mut T,
) -> io::Result<()> {
    loop {
        out.fill(session);
        if out.pending().is_empty() {
            break;
        }
        stream.write_all(out.pending()).await?;
        let n = out.pending().len();
        out.advance(n);
    }
    stream.flush().await?;
    out.unflushed = false;
    Ok(())
}

/// Runs one connection to its end.
///
/// `stream` is the client connection, plain or already TLS (implicit TLS: the caller did the
/// handshake); `tls` is used when the application asks for STARTTLS. `shutdown` asks the
/// session to say goodbye; the caller bounds how long it then waits.
pub async fn drive<S, A, T>(
    mut session: S,
    mut app: A,
    mut stream: MaybeTls<T>,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> Ending
where
    S: SansIoSession,
    A: Application<S>,
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut inbuf = vec![0u8; READ_BUF];
    let mut out = Output::default();
    let mut read_closed = false;
    let mut shutdown_sent = false;
    // Once the session is closed, how long its last output may take to reach a client that
    // may have stopped reading.
    let mut final_flush_deadline: Option<tokio::time::Instant> = None;

    loop {
        let now = now();
        let mut directive = drain(now, &mut session, &mut app);
        // Handing out output may let the session resume pipelined commands: drain again
        // until output stops coming.
        while directive == Directive::Continue {
            let before = out.pending().len();
            out.fill(&mut session);
            if out.pending().len() == before {
                break;
            }
            directive = drain(now, &mut session, &mut app);
        }

        if directive == Directive::StartTls {
            if let Err(e) = start_tls(&mut session, &mut out, &mut stream, tls.as_ref()).await {
                session.handle_eof(now);
                return Ending::Broken(format!("STARTTLS failed: {e}"));
            }
            session.handle_tls_established(self::now());
            continue;
        }

        if session.is_closed() {
            if out.pending().is_empty() && !out.unflushed {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
                return Ending::Closed;
            }
            final_flush_deadline.get_or_insert_with(|| tokio::time::Instant::now() + CLOSE_TIMEOUT);
        }

        let deadline = session
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .or(final_flush_deadline);
        let want_read = !read_closed && session.wants_input();
        let io_possible = want_read || !out.pending().is_empty() || out.unflushed;
        let busy = app.is_busy();

        tokio::select! {
            io = poll_fn(|cx| poll_io(cx, &mut stream, &out, &mut inbuf, want_read)),
                if io_possible =>
            {
                let now = self::now();
                match io {
                    Io::Read(0) => {
                        read_closed = true;
                        session.handle_eof(now);
                    }
                    Io::Read(n) => {
                        app.before_input(now, &mut session);
                        session.handle_input(now, &inbuf[..n]);
                    }
                    Io::Wrote(n) => out.advance(n),
                    Io::Flushed => out.unflushed = false,
                    Io::Failed(e) => {
                        session.handle_eof(now);
                        // Let the application see the close (and release what it holds).
                        drain(now, &mut session, &mut app);
                        return Ending::Broken(e.to_string());
                    }
                }
            }
            () = sleep_until(deadline), if deadline.is_some() => {
                if session.is_closed() {
                    return Ending::Broken("client did not read the final output in time".into());
                }
                session.handle_timeout(self::now());
            }
            done = app.wait(), if busy => {
                app.complete(self::now(), &mut session, done);
            }
            () = shutdown.cancelled(), if !shutdown_sent => {
                shutdown_sent = true;
                session.shutdown(self::now());
            }
            else => {
                // Nothing can happen any more: the session is stuck without input or output.
                session.handle_eof(self::now());
                drain(self::now(), &mut session, &mut app);
                return Ending::Broken("connection stalled".into());
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Drains output, then swaps `stream` for its TLS form.
async fn start_tls<S: SansIoSession, T: AsyncRead + AsyncWrite + Unpin>(
    session: &mut S,
    out: &mut Output,
    stream: &mut MaybeTls<T>,
    tls: Option<&TlsAcceptor>,
) -> io::Result<()> {
    let acceptor = tls.ok_or_else(|| io::Error::other("no TLS certificate configured"))?;
    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, flush_all(session, out, stream))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let MaybeTls::Plain(plain) = std::mem::replace(stream, MaybeTls::Upgrading) else {
        return Err(io::Error::other("TLS is already active"));
    };
    let tls_stream = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(plain))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    *stream = MaybeTls::Tls(Box::new(tls_stream));
    Ok(())
}
