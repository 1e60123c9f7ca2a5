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
//!
//! When the application asks for compression (IMAP `COMPRESS=DEFLATE`, RFC 4978), the driver
//! drains all output uncompressed (the tagged `OK` must reach the client as is), then puts
//! raw deflate (RFC 1951, no zlib header) between the session and the stream, above TLS, in
//! both directions: output is compressed and sync-flushed after every batch, so the client
//! always holds complete data; input is inflated one read buffer (8 KiB) at a time, and
//! only while the session wants input, so a highly compressed burst never grows memory
//! beyond the session's own limits. Bytes the session had already received after the
//! command were compressed by the client: the driver takes them back
//! ([`SansIoSession::take_buffered_input`]) and inflates them first.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
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
    /// Removes and returns the input received but not yet consumed. Called once, right
    /// after [`Directive::StartCompression`]: what the client sent after the command was
    /// already compressed, so the driver inflates it and hands it back through
    /// `handle_input`. Sessions of protocols without compression keep the default.
    fn take_buffered_input(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// Implements [`SansIoSession`] for a protocol crate's session (server or client), whose
/// inherent methods have the shared names (DESIGN.md, "The common sans-IO shape");
/// `shutdown(s, now) => expr` says how it closes. Methods the protocol overrides follow in
/// braces.
macro_rules! sans_io_session {
    (
        $session:ty,
        $event:ty,
        shutdown($s:ident, $now:ident) => $shutdown:expr
        $(, { $($extra:item)* })?
    ) => {
        impl $crate::driver::SansIoSession for $session {
            type Event = $event;

            fn handle_input(&mut self, now: ::std::time::Instant, data: &[u8]) {
                <$session>::handle_input(self, now, data);
            }
            fn handle_eof(&mut self, now: ::std::time::Instant) {
                <$session>::handle_eof(self, now);
            }
            fn handle_timeout(&mut self, now: ::std::time::Instant) {
                <$session>::handle_timeout(self, now);
            }
            fn handle_tls_established(&mut self, now: ::std::time::Instant) {
                <$session>::handle_tls_established(self, now);
            }
            fn shutdown(&mut self, now: ::std::time::Instant) {
                let ($s, $now) = (self, now);
                $shutdown;
            }
            fn poll_event(&mut self) -> Option<$event> {
                <$session>::poll_event(self)
            }
            fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
                <$session>::poll_transmit(self, buf)
            }
            fn poll_timeout(&self) -> Option<::std::time::Instant> {
                <$session>::poll_timeout(self)
            }
            fn wants_input(&self) -> bool {
                <$session>::wants_input(self)
            }
            fn is_closed(&self) -> bool {
                <$session>::is_closed(self)
            }
            $($($extra)*)?
        }
    };
}
pub(crate) use sans_io_session;

/// What the driver must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Carry on.
    Continue,
    /// Drain all output, run the TLS handshake, then call `handle_tls_established`.
    StartTls,
    /// Drain all output, then compress both directions with raw deflate (RFC 4978), first
    /// inflating what [`SansIoSession::take_buffered_input`] hands back.
    StartCompression,
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
    /// Raw deflate once compression is on, with the session's uncompressed output staged.
    deflate: Option<(Compress, Vec<u8>)>,
}

impl Output {
    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    /// Pulls output from the session up to the high-water mark (compressed and
    /// sync-flushed when compression is on).
    fn fill<S: SansIoSession>(&mut self, session: &mut S) -> io::Result<()> {
        let Some((compress, staged)) = self.deflate.as_mut() else {
            while self.buf.len() - self.sent < OUTPUT_HIGH_WATER {
                if session.poll_transmit(&mut self.buf) == 0 {
                    break;
                }
            }
            return Ok(());
        };
        // The high-water mark bounds the uncompressed bytes pulled per round, so that a
        // well-compressing message is still delivered in steps.
        while self.buf.len() - self.sent < OUTPUT_HIGH_WATER {
            staged.clear();
            while staged.len() < OUTPUT_HIGH_WATER {
                if session.poll_transmit(staged) == 0 {
                    break;
                }
            }
            if staged.is_empty() {
                break;
            }
            deflate_into(compress, staged, &mut self.buf)?;
        }
        if staged.capacity() > OUTPUT_SHRINK_ABOVE {
            *staged = Vec::new();
        }
        Ok(())
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

/// Compresses all of `input` into `out` and sync-flushes, so the peer can inflate every
/// byte so far without waiting for more.
fn deflate_into(compress: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    loop {
        out.reserve(input.len() / 2 + 64);
        let before = compress.total_in();
        compress
            .compress_vec(input, out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        let consumed = usize::try_from(compress.total_in() - before).unwrap_or(input.len());
        input = &input[consumed.min(input.len())..];
        // Done once the input is used up and the flush did not fill the output space.
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
    }
}

/// Client input after `COMPRESS DEFLATE`: compressed bytes not yet inflated.
struct Inflate {
    decompress: Decompress,
    /// Received, not yet inflated.
    pending: Vec<u8>,
    /// The last call filled its output space: the inflater may hold more output even
    /// without more input.
    more: bool,
    /// The client ended its deflate stream; anything after that is not IMAP.
    ended: bool,
    /// The pending bytes are an incomplete piece of the deflate stream: wait for more.
    starved: bool,
}

impl Inflate {
    fn new() -> Self {
        Self {
            decompress: Decompress::new(false),
            pending: Vec::new(),
            more: false,
            ended: false,
            starved: false,
        }
    }

    /// Whether inflating can produce input for the session without reading the socket.
    fn has_pending(&self) -> bool {
        !self.ended && (self.more || !self.pending.is_empty() && !self.starved)
    }

    /// Inflates up to `out.len()` bytes; returns how many were produced.
    fn inflate(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let (before_in, before_out) = (self.decompress.total_in(), self.decompress.total_out());
        let status = self
            .decompress
            .decompress(&self.pending, out, FlushDecompress::None)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let consumed = usize::try_from(self.decompress.total_in() - before_in)
            .unwrap_or(self.pending.len())
            .min(self.pending.len());
        let produced = usize::try_from(self.decompress.total_out() - before_out)
            .unwrap_or(0)
            .min(out.len());
        self.pending.drain(..consumed);
        if self.pending.capacity() > OUTPUT_SHRINK_ABOVE && self.pending.len() < READ_BUF {
            self.pending.shrink_to(READ_BUF);
        }
        self.more = produced == out.len();
        match status {
            Status::StreamEnd => self.ended = true,
            // Nothing moved: the inflater needs more input than is pending (it buffers
            // partial blocks internally, so this is rare; a bounded wait for the socket).
            _ if produced == 0 && consumed == 0 => {
                self.more = false;
                self.starved = true;
            }
            _ => self.starved = false,
        }
        Ok(produced)
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
            let next = app.handle_event(now, session, event);
            if next != Directive::Continue {
                directive = next;
            }
        }
        app.poll_work(now, session);
        if !any {
            // poll_work may have answered the session, which may queue new events.
            match session.poll_event() {
                None => return directive,
                Some(event) => {
                    let next = app.handle_event(now, session, event);
                    if next != Directive::Continue {
                        directive = next;
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
        out.fill(session)?;
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
    let mut inflate: Option<Inflate> = None;
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
            if let Err(e) = out.fill(&mut session) {
                return broken(
                    now,
                    &mut session,
                    &mut app,
                    &format!("compression failed: {e}"),
                );
            }
            if out.pending().len() == before {
                break;
            }
            directive = drain(now, &mut session, &mut app);
        }

        if directive == Directive::StartCompression {
            if out.deflate.is_some() {
                // The session allows one COMPRESS per connection; a second switch would
                // garble the stream.
                return broken(now, &mut session, &mut app, "compression started twice");
            }
            let flushed = tokio::time::timeout(
                CLOSE_TIMEOUT,
                flush_all(&mut session, &mut out, &mut stream),
            )
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))
            .and_then(|r| r);
            if let Err(e) = flushed {
                return broken(
                    now,
                    &mut session,
                    &mut app,
                    &format!("COMPRESS failed: {e}"),
                );
            }
            out.deflate = Some((Compress::new(Compression::default(), false), Vec::new()));
            let mut fresh = Inflate::new();
            fresh.pending = session.take_buffered_input();
            inflate = Some(fresh);
            continue;
        }

        // Inflated input is handed over one buffer at a time while the session wants it,
        // before the socket is read again.
        if let Some(inf) = inflate.as_mut()
            && inf.has_pending()
            && session.wants_input()
            && !session.is_closed()
        {
            match inf.inflate(&mut inbuf) {
                Ok(0) => {}
                Ok(n) => {
                    app.before_input(now, &mut session);
                    session.handle_input(now, &inbuf[..n]);
                }
                Err(e) => {
                    return broken(
                        now,
                        &mut session,
                        &mut app,
                        &format!("bad compressed input: {e}"),
                    );
                }
            }
            if read_closed && !inf.has_pending() {
                session.handle_eof(now);
            }
            continue;
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
        let inflating = inflate.as_ref().is_some_and(Inflate::has_pending);
        let want_read = !read_closed && session.wants_input() && !inflating;
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
                        // Compressed input still to inflate reaches the session first.
                        if !inflate.as_ref().is_some_and(Inflate::has_pending) {
                            session.handle_eof(now);
                        }
                    }
                    Io::Read(n) => match inflate.as_mut() {
                        Some(inf) if inf.ended => {
                            return broken(now, &mut session, &mut app, "data after the end of the compressed stream");
                        }
                        // Inflated at the top of the loop, as the session takes it.
                        Some(inf) => {
                            inf.pending.extend_from_slice(&inbuf[..n]);
                            inf.starved = false;
                        }
                        None => {
                            app.before_input(now, &mut session);
                            session.handle_input(now, &inbuf[..n]);
                        }
                    },
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

/// Ends a connection whose stream can no longer carry the session: the session sees EOF and
/// the application its close.
fn broken<S: SansIoSession, A: Application<S>>(
    now: Instant,
    session: &mut S,
    app: &mut A,
    why: &str,
) -> Ending {
    session.handle_eof(now);
    drain(now, session, app);
    Ending::Broken(why.to_owned())
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use flate2::{Compress, Compression, Decompress, FlushDecompress};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A line protocol just big enough to exercise the driver: `COMPRESS` switches (and
    /// leaves what follows it unread until the switch), `QUIT` ends, `NOOP` is counted,
    /// anything else is echoed.
    #[derive(Default)]
    struct LineSession {
        input: Vec<u8>,
        output: Vec<u8>,
        events: VecDeque<&'static str>,
        waiting_for_switch: bool,
        noops: usize,
        /// Largest input buffer seen: back-pressure must bound it.
        max_buffered: usize,
        closed: bool,
    }

    impl LineSession {
        fn process(&mut self) {
            while !self.waiting_for_switch && !self.closed {
                let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") else {
                    return;
                };
                let line: Vec<u8> = self.input.drain(..end + 2).take(end).collect();
                match line.as_slice() {
                    b"COMPRESS" => {
                        self.output.extend_from_slice(b"OK deflate\r\n");
                        self.events.push_back("compress");
                        self.waiting_for_switch = true;
                    }
                    b"QUIT" => {
                        let bye = format!("BYE after {} NOOPs\r\n", self.noops);
                        self.output.extend_from_slice(bye.as_bytes());
                        self.closed = true;
                    }
                    b"NOOP" => self.noops += 1,
                    other => {
                        self.output.extend_from_slice(b"ECHO ");
                        self.output.extend_from_slice(other);
                        self.output.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
    }

    impl SansIoSession for LineSession {
        type Event = &'static str;
        fn handle_input(&mut self, _now: Instant, data: &[u8]) {
            self.input.extend_from_slice(data);
            self.max_buffered = self.max_buffered.max(self.input.len());
            self.process();
        }
        fn handle_eof(&mut self, _now: Instant) {
            self.closed = true;
        }
        fn handle_timeout(&mut self, _now: Instant) {}
        fn handle_tls_established(&mut self, _now: Instant) {}
        fn shutdown(&mut self, _now: Instant) {
            self.closed = true;
        }
        fn poll_event(&mut self) -> Option<&'static str> {
            self.events.pop_front()
        }
        fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
            // Small pieces, as a real session hands them out.
            let n = self.output.len().min(100);
            buf.extend(self.output.drain(..n));
            n
        }
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn wants_input(&self) -> bool {
            !self.closed && !self.waiting_for_switch && self.input.len() < 1024
        }
        fn is_closed(&self) -> bool {
            self.closed && self.output.is_empty()
        }
        fn take_buffered_input(&mut self) -> Vec<u8> {
            self.waiting_for_switch = false;
            std::mem::take(&mut self.input)
        }
    }

    struct SwitchApp;

    impl Application<LineSession> for SwitchApp {
        type Done = ();
        fn handle_event(&mut self, _: Instant, _: &mut LineSession, event: &str) -> Directive {
            assert_eq!(event, "compress");
            Directive::StartCompression
        }
        fn poll_work(&mut self, _: Instant, _: &mut LineSession) {}
        fn is_busy(&self) -> bool {
            false
        }
        async fn wait(&mut self) {
            std::future::pending::<()>().await;
        }
        fn complete(&mut self, _: Instant, _: &mut LineSession, (): ()) {}
    }

    fn deflate(compress: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        deflate_into(compress, data, &mut out).unwrap();
        out
    }

    /// Reads and inflates until `want` bytes of plain text arrived.
    async fn read_inflated(
        stream: &mut (impl AsyncRead + Unpin),
        inflater: &mut Decompress,
        want: usize,
    ) -> Vec<u8> {
        let mut plain = Vec::new();
        let mut buf = [0u8; 4096];
        while plain.len() < want {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "EOF after {:?}", String::from_utf8_lossy(&plain));
            let mut input = &buf[..n];
            while !input.is_empty() {
                let mut out = vec![0u8; 64 * 1024];
                let before = (inflater.total_in(), inflater.total_out());
                inflater
                    .decompress(input, &mut out, FlushDecompress::Sync)
                    .unwrap();
                let used = (inflater.total_in() - before.0) as usize;
                let made = (inflater.total_out() - before.1) as usize;
                plain.extend_from_slice(&out[..made]);
                input = &input[used..];
            }
        }
        plain
    }

    #[tokio::test]
    async fn compression_takes_over_pipelined_input_and_both_directions() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(drive(
            LineSession::default(),
            SwitchApp,
            MaybeTls::Plain(server),
            None,
            CancellationToken::new(),
        ));
        let mut compress = Compress::new(Compression::default(), false);
        // The command and compressed commands after it in one write, as a pipelining
        // client may send them: the session holds the compressed part unread.
        let mut first = b"HELLO\r\nCOMPRESS\r\n".to_vec();
        first.extend(deflate(&mut compress, b"A\r\nB\r\n"));
        client.write_all(&first).await.unwrap();

        let plain = b"ECHO HELLO\r\nOK deflate\r\n";
        let mut got = vec![0u8; plain.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, plain, "the OK is not compressed");

        let mut inflater = Decompress::new(false);
        let echoed = read_inflated(&mut client, &mut inflater, 14).await;
        assert_eq!(echoed, b"ECHO A\r\nECHO B\r\n");

        // About 6 MB of NOOPs compress to a few KiB: inflated only as the session takes
        // input, so its buffer stays bounded.
        let noops = b"NOOP\r\n".repeat(1_000_000);
        let bomb = deflate(&mut compress, &noops);
        assert!(bomb.len() < 64 * 1024);
        client.write_all(&bomb).await.unwrap();
        client
            .write_all(&deflate(&mut compress, b"QUIT\r\n"))
            .await
            .unwrap();
        let bye = read_inflated(&mut client, &mut inflater, 25).await;
        assert_eq!(bye, b"BYE after 1000000 NOOPs\r\n");
        assert_eq!(task.await.unwrap(), Ending::Closed);
    }

    #[tokio::test]
    async fn corrupt_compressed_input_ends_the_connection() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(drive(
            LineSession::default(),
            SwitchApp,
            MaybeTls::Plain(server),
            None,
            CancellationToken::new(),
        ));
        client.write_all(b"COMPRESS\r\n").await.unwrap();
        let mut got = [0u8; 12];
        client.read_exact(&mut got).await.unwrap();
        // Block type 3 is reserved in RFC 1951: invalid from the first byte.
        client.write_all(&[0xff; 32]).await.unwrap();
        match task.await.unwrap() {
            Ending::Broken(why) => assert!(why.contains("compressed"), "{why}"),
            Ending::Closed => panic!("corrupt input was accepted"),
        }
    }

    #[test]
    fn inflate_bounds_each_step() {
        let mut compress = Compress::new(Compression::default(), false);
        let data = vec![b'x'; 1_000_000];
        let mut inflate = Inflate::new();
        inflate.pending = deflate(&mut compress, &data);
        let mut out = [0u8; 1000];
        let mut total = 0;
        while inflate.has_pending() {
            let n = inflate.inflate(&mut out).unwrap();
            assert!(n <= out.len());
            total += n;
        }
        assert_eq!(total, data.len());
    }
}
