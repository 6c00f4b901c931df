//! Reliability guide §2.6, connection bounds, over real TCP against `serve_until` on
//! 127.0.0.1:0 (no model needed: `/health` and a held-open `POST /api/show`): header count and
//! head size (limit passes, limit + 1 gets 431), the header read timeout (slowloris), the
//! keep-alive idle timeout, 1,000 idle connections not blocking a new request, and the
//! connection cap refusing with 503 only when every connection is busy.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use slm_server::auth::Auth;
use slm_server::{serve_until, AppState, ConnLimits, KeepAlive, Limits, ModelConfig, Models};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ConnLimits) -> Server {
        let models = Models::new(
            Vec::new(),
            None,
            ModelConfig {
                load: Default::default(),
                max_memory: 1 << 30,
                default_keep_alive: KeepAlive::Forever,
                offline: true,
            },
        );
        let state = AppState::new(models, Auth::open_loopback(), Limits::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_until(
            listener,
            state,
            Duration::from_secs(1),
            limits,
            async move {
                let _ = rx.await;
            },
        ));
        Server {
            addr,
            stop: Some(tx),
            task,
        }
    }

    /// Shut down and check that the server returns.
    async fn stop(mut self) {
        let _ = self.stop.take().map(|tx| tx.send(()));
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server did not stop")
            .unwrap()
            .unwrap();
    }
}

/// A response: status, head text and body.
struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Read one response (head, then a `content-length` body) from a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> std::io::Result<Resp> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {} bytes", buf.len()),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("body cut at {} of {len} bytes", body.len()),
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Resp { status, head, body })
}

/// Send raw request bytes on a new connection and read the response.
async fn raw(addr: SocketAddr, req: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.unwrap();
    read_response(&mut s).await.unwrap()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Wait until the server closes `s` (EOF or reset); returns how long that took.
async fn time_to_close(s: &mut TcpStream, limit: Duration) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return t.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

/// A GET /health head with `n` header fields (Host included).
fn head_with_headers(n: usize) -> Vec<u8> {
    let mut s = String::from("GET /health HTTP/1.1\r\nHost: localhost\r\n");
    for i in 1..n {
        s.push_str(&format!("X-H{i}: v\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// A GET /health head of exactly `len` bytes (request line to the final blank line).
fn head_of_size(len: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = len - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_count_and_head_size_limits() {
    let server = Server::start(ConnLimits::default()).await;
    // 100 header fields pass, 101 are answered 431.
    let r = raw(server.addr, &head_with_headers(100)).await;
    assert_eq!(r.status, 200, "{}", r.head);
    let r = raw(server.addr, &head_with_headers(101)).await;
    assert_eq!(r.status, 431, "{}", r.head);
    // A head of exactly 16 KiB passes, one byte more is answered 431.
    let at = head_of_size(16 << 10);
    assert_eq!(at.len(), 16384);
    let r = raw(server.addr, &at).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(String::from_utf8_lossy(&r.body).contains("\"ok\""));
    let r = raw(server.addr, &head_of_size((16 << 10) + 1)).await;
    assert_eq!(r.status, 431, "{}", r.head);
    // Far over the limit (the server stops reading at 16 KiB): still a 431, not a reset.
    let r = raw(server.addr, &head_of_size(256 << 10)).await;
    assert_eq!(r.status, 431, "{}", r.head);
    // A client that writes all of a 16 MiB head before reading still gets the 431: the
    // server drains what it sends instead of resetting the connection under the answer.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&head_of_size(16 << 20))
        .await
        .expect("the connection was reset while the client was sending");
    assert_eq!(read_response(&mut s).await.unwrap().status, 431);
    // The limits apply per request on a kept-alive connection too.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut s).await.unwrap().status, 200);
    s.write_all(&head_with_headers(101)).await.unwrap();
    assert_eq!(read_response(&mut s).await.unwrap().status, 431);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_are_dropped_after_the_header_timeout() {
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let server = Server::start(limits).await;
    // Warm up (and prove the server answers).
    assert_eq!(raw(server.addr, HEALTH).await.status, 200);
    // A half-sent head.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    // Nothing sent at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // A head trickled a byte every 100 ms: the clock does not restart with each byte.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    let dribble = tokio::spawn(async move {
        let t0 = Instant::now();
        for b in b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if trickle.write_all(&[*b]).await.is_err() || t0.elapsed() > Duration::from_secs(8) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        t0.elapsed()
    });
    let d = time_to_close(&mut half, Duration::from_secs(6)).await;
    assert!(d >= Duration::from_millis(800), "closed after {d:?}");
    let d = time_to_close(&mut silent, Duration::from_secs(6)).await;
    assert!(d < Duration::from_secs(6), "closed after {d:?}");
    let d = dribble.await.unwrap();
    assert!(
        d >= Duration::from_millis(800) && d < Duration::from_secs(6),
        "a trickled head was closed after {d:?}"
    );
    // A later request on a kept-alive connection gets the header timeout from its first byte.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut s).await.unwrap().status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await; // idle: longer than the header timeout
    s.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let d = time_to_close(&mut s, Duration::from_secs(6)).await;
    assert!(d >= Duration::from_millis(800), "closed after {d:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let server = Server::start(limits).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // Requests within the idle time keep the connection.
    for _ in 0..3 {
        s.write_all(HEALTH).await.unwrap();
        assert_eq!(read_response(&mut s).await.unwrap().status, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    s.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut s).await.unwrap().status, 200);
    // Then idle: closed after about a second (not after the 5 s header timeout).
    let d = time_to_close(&mut s, Duration::from_secs(4)).await;
    assert!(d >= Duration::from_millis(800), "closed after {d:?}");
    server.stop().await;
}

/// Raise the soft descriptor limit to `want` (within the hard limit), or fail clearly.
#[cfg(not(unix))]
fn ensure_fds(_want: u64) {}

/// Raise the soft descriptor limit to `want` (within the hard limit), or fail clearly.
#[cfg(unix)]
fn ensure_fds(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current.is_some_and(|c| c < want) {
        l.current = Some(l.maximum.map_or(want, |m| m.min(want)));
        let _ = setrlimit(Resource::Nofile, l);
    }
    let now = getrlimit(Resource::Nofile).current;
    assert!(
        now.is_none_or(|c| c >= want),
        "this test needs {want} file descriptors; the limit is {now:?} (raise `ulimit -n`)"
    );
}

/// Open `n` connections that each send half a request head and then nothing.
async fn slowloris(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: loc")
            .await
            .unwrap();
        conns.push(s);
    }
    conns
}

/// GET /health on a new connection, timed from the connect.
async fn timed_health(addr: SocketAddr) -> (u16, Duration) {
    let t = Instant::now();
    let r = raw(addr, HEALTH).await;
    (r.status, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_block_a_request() {
    ensure_fds(2500);
    // Default cap (256): the idle connections are evicted as new ones arrive.
    let server = Server::start(ConnLimits::default()).await;
    assert_eq!(timed_health(server.addr).await.0, 200); // warm
    let idle = slowloris(server.addr, 1000).await;
    let (status, d) = timed_health(server.addr).await;
    eprintln!("GET /health with 1,000 idle connections (cap 256): {d:?}");
    assert_eq!(status, 200);
    assert!(d < Duration::from_secs(1), "took {d:?}");
    let m = raw(
        server.addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(text.contains("slm_connections_open "), "{text}");
    assert!(text.contains("slm_connections_closed_total{reason=\"evicted\"}"));
    drop(idle);
    server.stop().await;
    // A cap above 1,000: all of them stay open, and a new request is still served at once.
    let server = Server::start(ConnLimits {
        max_connections: 1100,
        ..Default::default()
    })
    .await;
    assert_eq!(timed_health(server.addr).await.0, 200);
    let idle = slowloris(server.addr, 1000).await;
    let (status, d) = timed_health(server.addr).await;
    eprintln!("GET /health with 1,000 idle connections (cap 1100): {d:?}");
    assert_eq!(status, 200);
    assert!(d < Duration::from_secs(1), "took {d:?}");
    drop(idle);
    server.stop().await;
}

/// A POST whose head is complete and whose body is not: the request stays in flight.
/// `Expect: 100-continue` tells us when the handler has started reading the body.
async fn busy(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
Content-Length: 100\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let r = read_response(&mut s).await.unwrap();
    assert_eq!(r.status, 100, "{}", r.head);
    s.write_all(b"{\"model\":").await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_refuses_only_when_all_are_busy() {
    let server = Server::start(ConnLimits {
        max_connections: 8,
        ..Default::default()
    })
    .await;
    assert_eq!(timed_health(server.addr).await.0, 200);
    // 7 busy + 1 idle = the cap: a new connection evicts the idle one and is served.
    let mut held = Vec::new();
    for _ in 0..7 {
        held.push(busy(server.addr).await);
    }
    let mut idle = slowloris(server.addr, 1).await;
    let (status, d) = timed_health(server.addr).await;
    assert_eq!(status, 200);
    assert!(d < Duration::from_secs(1), "took {d:?}");
    time_to_close(&mut idle[0], Duration::from_secs(2)).await;
    // 8 busy: the 9th is refused at once with 503 and Retry-After.
    held.push(busy(server.addr).await);
    let t = Instant::now();
    let r = raw(server.addr, HEALTH).await;
    let d = t.elapsed();
    eprintln!("refusal with 8 of 8 connections busy: {d:?}");
    assert_eq!(r.status, 503, "{}", r.head);
    assert!(r.head.to_ascii_lowercase().contains("retry-after: 1"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"]["code"], 503);
    assert!(d < Duration::from_secs(1), "took {d:?}");
    // The busy requests are untouched: finishing one answers it, and frees a place.
    let mut first = held.remove(0);
    first
        .write_all(&[b' '; 91])
        .await
        .expect("a busy connection was closed");
    let r = read_response(&mut first).await.unwrap();
    assert!(r.status == 404 || r.status == 400, "{}", r.head);
    drop(first);
    let (status, _) = timed_health(server.addr).await;
    assert_eq!(status, 200);
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_finishes_busy_ones() {
    let server = Server::start(ConnLimits::default()).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut idle).await.unwrap().status, 200);
    let mut b = busy(server.addr).await;
    let mut loris = slowloris(server.addr, 1).await.remove(0);
    let addr = server.addr;
    let stopping = tokio::spawn(server.stop());
    // The idle connection and the one still sending its first head are closed at once (not
    // after the 10 s header timeout); new connections are not accepted.
    time_to_close(&mut idle, Duration::from_secs(2)).await;
    time_to_close(&mut loris, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = match TcpStream::connect(addr).await {
        Err(_) => true,
        Ok(mut s) => {
            let _ = s.write_all(HEALTH).await;
            read_response(&mut s).await.is_err()
        }
    };
    assert!(refused, "a connection was served after shutdown");
    // The busy request still gets its answer, then its connection closes.
    b.write_all(&[b' '; 91]).await.unwrap();
    let r = read_response(&mut b).await.unwrap();
    assert!(r.status == 404 || r.status == 400, "{}", r.head);
    time_to_close(&mut b, Duration::from_secs(2)).await;
    stopping.await.unwrap();
}
