//! What one client can hold of a server: a bounded number of connections,
//! each closed when it sends no request head in time.
//!
//! Without these a client that opens connections and trickles a byte now
//! and then (slowloris) keeps each open forever: 200 of 200 were still
//! open after 60 s. A connection must send its first byte (after TLS)
//! within the header-read timeout, and HTTP/1 then closes one that has not
//! sent a whole request head within it, counted again after each response
//! (so it is the keep-alive idle timeout as well); bodies are bounded by
//! `server.request_timeout`. The limit caps what is left: connections beyond
//! it are closed at once, before TLS. An HTTP/2 connection that answers
//! pings may stay idle; the limit bounds those.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto::Builder;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::http::ConnectionMetrics;

/// Pings an idle HTTP/2 connection this often, and closes it when a ping
/// goes unanswered this long: a vanished peer does not hold a slot.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Applies the HTTP-level limits to the server's connection builder.
pub(super) fn configure<E>(builder: &mut Builder<E>, header_read_timeout: Duration) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_KEEP_ALIVE)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE);
}

/// An acceptor that admits at most `max` connections at a time (the one
/// after is closed on arrival: a queue would only hold it open longer),
/// then runs `inner` (TLS, or nothing) on the admitted ones.
#[derive(Clone, Debug)]
pub(super) struct ConnectionLimit<A> {
    inner: A,
    permits: Arc<Semaphore>,
    first_byte_timeout: Duration,
    metrics: ConnectionMetrics,
}

impl<A> ConnectionLimit<A> {
    /// `first_byte_timeout`: how long an admitted connection may stay
    /// silent before its first byte (after TLS). The header-read timeout
    /// starts only once the protocol is known, which takes a first byte.
    pub(super) fn new(
        inner: A,
        max: usize,
        first_byte_timeout: Duration,
        metrics: ConnectionMetrics,
    ) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            first_byte_timeout,
            metrics,
        }
    }
}

type Accepted<T, S> = Pin<Box<dyn Future<Output = io::Result<(Admitted<T>, S)>> + Send>>;

impl<A, S> Accept<TcpStream, S> for ConnectionLimit<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Admitted<A::Stream>;
    type Service = A::Service;
    type Future = Accepted<A::Stream, A::Service>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            // Counted, not logged: a flood of refusals would flood the logs.
            self.metrics.refused.inc();
            return Box::pin(std::future::ready(Err(io::Error::other(
                "connection limit reached",
            ))));
        };
        // Responses are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let handshake = self.inner.accept(stream, service);
        let open = self.metrics.open.clone();
        let first_byte = Box::pin(tokio::time::sleep(self.first_byte_timeout));
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            open.inc();
            let admitted = Admitted {
                stream,
                _permit: permit,
                open,
                first_byte: Some(first_byte),
            };
            Ok((admitted, service))
        })
    }
}

/// An admitted connection: it gives its slot back when it closes, and
/// fails its reads if no byte arrives before its first-byte deadline.
#[derive(Debug)]
pub(super) struct Admitted<T> {
    stream: T,
    _permit: OwnedSemaphorePermit,
    open: Gauge,
    first_byte: Option<Pin<Box<Sleep>>>,
}

impl<T> Drop for Admitted<T> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Admitted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.first_byte = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .first_byte
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    let timed_out =
                        io::Error::new(io::ErrorKind::TimedOut, "no request before the deadline");
                    return Poll::Ready(Err(timed_out));
                }
                Poll::Pending
            }
            failed => failed,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Admitted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
