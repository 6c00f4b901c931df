//! The accept loop and per-connection limits (reliability guide §2.6): HTTP/1.1 over hyper
//! directly, because `axum::serve` exposes no header limits, header read timeout, idle
//! keep-alive timeout or connection cap.
//!
//! - Heads with more than [`ConnLimits::max_headers`] headers or more than
//!   [`ConnLimits::max_header_bytes`] bytes (request line to the blank line) are answered
//!   `431 Request Header Fields Too Large` by hyper, then the connection is closed.
//! - A request head must be complete within [`ConnLimits::header_timeout`]: of the accept for a
//!   new connection, of its first byte for a later request on a kept-alive one. The clock does
//!   not restart on each byte, so a slowloris client trickling bytes is dropped as well.
//! - A kept-alive connection idle between requests is closed after [`ConnLimits::idle_timeout`].
//! - At most [`ConnLimits::max_connections`] connections are open. At the cap, a new connection
//!   evicts the connection that has been waiting longest without a request in flight (idle, or
//!   still sending its head), so idle or slowloris connections cannot lock out real clients;
//!   only when every connection has a request in flight is the new one refused at once with
//!   `503` and `Retry-After: 1`.
//!
//! A connection is "busy" from the moment hyper hands its request to the router until the
//! response body has been sent (the body is dropped); busy connections have no timeout here
//! (generations have their own wall-clock cap). Shutdown stops accepting, asks every connection
//! to close after its current response, and forcibly closes what is left after the drain window.

mod track;

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};

use track::{linger, ConnState, Service, Wait, Watched, LINGER_TIME};

/// Connection-level limits of the server.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// Most open connections (see the module docs for what happens at the cap).
    pub max_connections: usize,
    /// Time a client has to send a complete request head.
    pub header_timeout: Duration,
    /// Time a kept-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// Most header fields in one request head.
    pub max_headers: usize,
    /// Most bytes of one request head, request line and final blank line included.
    pub max_header_bytes: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_headers: 100,
            max_header_bytes: 16 << 10,
        }
    }
}

/// Connection counters for `/metrics` (process-wide, like the panic counter).
pub(crate) struct ConnStats {
    pub open: AtomicU64,
    pub refused: AtomicU64,
    pub evicted: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
}

pub(crate) static STATS: ConnStats = ConnStats {
    open: AtomicU64::new(0),
    refused: AtomicU64::new(0),
    evicted: AtomicU64::new(0),
    header_timeouts: AtomicU64::new(0),
    idle_timeouts: AtomicU64::new(0),
};

/// Closed connections drained at once (see `track::linger`); beyond this a socket is just closed.
const MAX_LINGERING: usize = 64;

/// The answer to a connection refused at the cap.
fn refusal() -> Vec<u8> {
    let body = r#"{"error":{"message":"server busy: too many connections","type":"server_busy","code":503}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What the accept loop and the connection tasks share.
struct Shared {
    limits: ConnLimits,
    builder: hyper::server::conn::http1::Builder,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Connections counted against the cap (open and not evicted).
    counted: AtomicUsize,
    /// Connection tasks still running, and a wake-up when that reaches 0.
    tasks: AtomicUsize,
    all_closed: Notify,
    lingering: Arc<Semaphore>,
}

impl Shared {
    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make room for one more connection: true when there is room (after evicting the
    /// connection waiting longest, if at the cap), false when every connection is busy.
    fn make_room(&self) -> bool {
        if self.counted.load(Ordering::Acquire) < self.limits.max_connections.max(1) {
            return true;
        }
        let conns = self.conns();
        let victim = conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .filter_map(|c| c.waiting_since().map(|t| (t, c)))
            .min_by_key(|(t, _)| *t)
            .map(|(_, c)| c.clone());
        drop(conns);
        match victim {
            Some(c) => {
                self.uncount(&c);
                STATS.evicted.fetch_add(1, Ordering::Relaxed);
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Stop counting a connection against the cap (once).
    fn uncount(&self, c: &ConnState) {
        if !c.evicted.swap(true, Ordering::AcqRel) {
            self.counted.fetch_sub(1, Ordering::AcqRel);
            STATS.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Ends a connection task's bookkeeping however the task ends.
struct TaskGuard {
    shared: Arc<Shared>,
    id: u64,
    st: Arc<ConnState>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.shared.uncount(&self.st);
        self.shared.conns().remove(&self.id);
        if self.shared.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.all_closed.notify_waiters();
        }
    }
}

enum End {
    Done,
    Close,
    Timeout(Wait),
}

/// Serve one connection until it ends, times out, is evicted or is force-closed.
async fn serve_conn(
    stream: TcpStream,
    app: Router,
    guard: TaskGuard,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = guard.shared.clone();
    let st = guard.st.clone();
    let io = TokioIo::new(Watched::new(stream, st.clone(), shared.lingering.clone()));
    let service = Service::new(app, st.clone());
    let mut conn = pin!(shared.builder.serve_connection(io, service));
    let mut shut = pin!(async move {
        let _ = shutdown.wait_for(|v| *v).await;
    });
    let mut draining = false;
    let mut shutting_down = false;
    let mut sleep = pin!(tokio::time::sleep(Duration::ZERO));
    let mut closing = pin!(st.close.notified());
    let end = std::future::poll_fn(|cx| loop {
        if !shutting_down && shut.as_mut().poll(cx).is_ready() {
            shutting_down = true;
            if !draining {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
        if let Poll::Ready(r) = conn.as_mut().poll(cx) {
            if let Err(e) = r {
                tracing::debug!("connection ended: {e}");
            }
            return Poll::Ready(End::Done);
        }
        if shutting_down && st.fresh() {
            // Shutting down and no request started: nothing to finish (hyper itself keeps a
            // connection with a partial first head until that head completes).
            return Poll::Ready(End::Close);
        }
        if closing.as_mut().poll(cx).is_ready() {
            closing.set(st.close.notified());
            // Evicted while a request just started: finish it, then close.
            if st.in_flight() > 0 && !st.force.load(Ordering::Acquire) {
                if !draining {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                continue;
            }
            return Poll::Ready(End::Close);
        }
        if let Some((at, why)) = st.deadline(&shared.limits) {
            if sleep.deadline() != at {
                sleep.as_mut().reset(at);
            }
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(End::Timeout(why));
            }
        }
        return Poll::Pending;
    })
    .await;
    match end {
        End::Timeout(Wait::Header) => {
            STATS.header_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        End::Timeout(Wait::Idle) => {
            STATS.idle_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        End::Done | End::Close => {}
    }
    drop(guard);
}

/// Answer a connection that cannot be served with a 503 and close it.
async fn refuse(mut stream: TcpStream) {
    let sent = tokio::time::timeout(LINGER_TIME, async {
        stream.write_all(&refusal()).await?;
        stream.shutdown().await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        linger(stream).await;
    }
}

/// Accept and serve connections on `listener` until `shutdown` completes, then stop accepting,
/// let open connections finish their current response, and after `drain` close what is left.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes)
        .header_read_timeout(None)
        .keep_alive(true);
    let shared = Arc::new(Shared {
        limits,
        builder,
        conns: Mutex::new(HashMap::new()),
        counted: AtomicUsize::new(0),
        tasks: AtomicUsize::new(0),
        all_closed: Notify::new(),
        lingering: Arc::new(Semaphore::new(MAX_LINGERING)),
    });
    let (tx, rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut next_id = 0u64;
    loop {
        let (stream, _peer) = tokio::select! {
            _ = shutdown.as_mut() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted:
                    // back off briefly instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if !shared.make_room() {
            STATS.refused.fetch_add(1, Ordering::Relaxed);
            if let Ok(permit) = shared.lingering.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let st = Arc::new(ConnState::new());
        shared.conns().insert(next_id, st.clone());
        shared.counted.fetch_add(1, Ordering::AcqRel);
        STATS.open.fetch_add(1, Ordering::Relaxed);
        shared.tasks.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard {
            shared: shared.clone(),
            id: next_id,
            st,
        };
        tokio::spawn(serve_conn(stream, app.clone(), guard, rx.clone()));
    }
    drop(listener);
    let _ = tx.send(true);
    let closed = async {
        loop {
            let mut n = pin!(shared.all_closed.notified());
            n.as_mut().enable();
            if shared.tasks.load(Ordering::Acquire) == 0 {
                break;
            }
            n.await;
        }
    };
    if tokio::time::timeout(drain, closed).await.is_err() {
        tracing::warn!("connections still open after the drain timeout; closing them");
        for c in shared.conns().values() {
            c.force.store(true, Ordering::Release);
            c.close.notify_one();
        }
    }
    Ok(())
}
