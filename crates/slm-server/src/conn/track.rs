//! Per-connection state and the wrappers that keep it up to date: the socket (first byte of a
//! head, lingering close), the service (request start) and the response body (request end).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::Router;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::ConnLimits;

/// How long a closed connection is drained for at most.
pub(super) const LINGER_TIME: Duration = Duration::from_secs(1);

/// Where one connection stands, for its timeouts and for eviction.
struct Phase {
    /// Requests handed to the router whose response has not been sent yet.
    in_flight: usize,
    /// Requests seen so far.
    requests: u64,
    /// When the connection was accepted or its last response finished.
    since: Instant,
    /// First byte received since then (the start of the next head).
    head_started: Option<Instant>,
}

/// One connection's state, shared by its task, its wrappers and the accept loop.
pub(super) struct ConnState {
    phase: Mutex<Phase>,
    /// Set once the accept loop has stopped counting this connection against the cap.
    pub evicted: AtomicBool,
    /// Close even if a request is in flight (end of the drain window).
    pub force: AtomicBool,
    /// Asks the connection's task to close it.
    pub close: Notify,
}

#[derive(Clone, Copy)]
pub(super) enum Wait {
    Header,
    Idle,
}

impl ConnState {
    pub(super) fn new() -> ConnState {
        ConnState {
            phase: Mutex::new(Phase {
                in_flight: 0,
                requests: 0,
                since: Instant::now(),
                head_started: None,
            }),
            evicted: AtomicBool::new(false),
            force: AtomicBool::new(false),
            close: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When this connection times out, and why; `None` while a request is in flight.
    pub(super) fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, Wait)> {
        let p = self.phase();
        if p.in_flight > 0 {
            None
        } else if p.requests == 0 {
            Some((p.since + limits.header_timeout, Wait::Header))
        } else if let Some(t) = p.head_started {
            Some((t + limits.header_timeout, Wait::Header))
        } else {
            Some((p.since + limits.idle_timeout, Wait::Idle))
        }
    }

    /// Since when the connection has been without a request in flight (`None`: busy).
    pub(super) fn waiting_since(&self) -> Option<Instant> {
        let p = self.phase();
        (p.in_flight == 0).then_some(p.since)
    }

    pub(super) fn in_flight(&self) -> usize {
        self.phase().in_flight
    }

    /// No request has started on this connection yet.
    pub(super) fn fresh(&self) -> bool {
        self.phase().requests == 0
    }
}

/// Marks its connection busy while a request is in flight: created when hyper hands the request
/// over, dropped with the response body once it has been sent (or with the request, if the
/// connection goes away first).
pub(super) struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(st: Arc<ConnState>) -> InFlight {
        {
            let mut p = st.phase();
            p.in_flight += 1;
            p.requests += 1;
            p.head_started = None;
        }
        InFlight(st)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut p = self.0.phase();
        p.in_flight = p.in_flight.saturating_sub(1);
        if p.in_flight == 0 {
            p.since = Instant::now();
            p.head_started = None;
        }
    }
}

/// A response body that keeps its connection marked busy until it is dropped.
pub(super) struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The router as a hyper service that tracks its connection's requests.
#[derive(Clone)]
pub(super) struct Service {
    app: Router,
    st: Arc<ConnState>,
}

impl Service {
    pub(super) fn new(app: Router, st: Arc<ConnState>) -> Service {
        Service { app, st }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<TrackedBody>, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(self.st.clone());
        let mut app = self.app.clone();
        let fut = tower_service::Service::call(&mut app, req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}

/// The socket, noting when the first byte of a new request head arrives. When hyper closes
/// the connection after an answer (a 431, `Connection: close`, a shutdown), the socket lingers.
pub(super) struct Watched {
    io: Option<TcpStream>,
    st: Arc<ConnState>,
    lingering: Arc<Semaphore>,
    answered: bool,
}

impl Watched {
    pub(super) fn new(io: TcpStream, st: Arc<ConnState>, lingering: Arc<Semaphore>) -> Watched {
        Watched {
            io: Some(io),
            st,
            lingering,
            answered: false,
        }
    }

    fn io(&mut self) -> std::io::Result<Pin<&mut TcpStream>> {
        self.io
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| std::io::ErrorKind::NotConnected.into())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if !self.answered {
            return;
        }
        let (Some(io), Ok(rt)) = (self.io.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        if let Ok(permit) = self.lingering.clone().try_acquire_owned() {
            rt.spawn(async move {
                linger(io).await;
                drop(permit);
            });
        }
    }
}

/// Read and discard what the client still sends, for a while, before closing: closing a socket
/// with unread bytes resets the connection, which can destroy the answer just sent (a 431 sent
/// while the client is still writing an oversized head, a 503 refusal).
pub(super) async fn linger(mut io: TcpStream) {
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut buf = [0u8; 16384];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = this.io()?.poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let mut p = this.st.phase();
            if p.in_flight == 0 && p.head_started.is_none() {
                p.head_started = Some(Instant::now());
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().io()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().io()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().io()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.answered = true;
        this.io()?.poll_shutdown(cx)
    }
}
