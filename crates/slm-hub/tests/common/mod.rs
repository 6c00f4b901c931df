//! A small HTTP/1.1 test server on 127.0.0.1 (std only), scriptable per request, able to lie:
//! wrong Content-Length, early close, ignored Range, slow bodies. It counts the body bytes sent.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Declared Content-Length (defaults to body.len()).
    pub content_length: Option<u64>,
    /// Send the body in chunks of this size with this pause in between.
    pub throttle: Option<(usize, Duration)>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            content_length: None,
            throttle: None,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn json(v: serde_json::Value) -> Reply {
        Reply::new(200, v.to_string()).header("Content-Type", "application/json")
    }

    pub fn redirect(to: &str) -> Reply {
        Reply::new(302, "").header("Location", to)
    }
}

/// Serve `data` honoring a `Range: bytes=N-` header (206 + Content-Range).
pub fn ranged(req: &Req, data: &[u8]) -> Reply {
    if let Some(r) = req.header("range") {
        let start: usize = r
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap_or(0);
        if start >= data.len() {
            return Reply::new(416, "");
        }
        return Reply::new(206, data[start..].to_vec()).header(
            "Content-Range",
            &format!("bytes {start}-{}/{}", data.len() - 1, data.len()),
        );
    }
    Reply::new(200, data.to_vec())
}

pub struct Server {
    pub port: u16,
    pub log: Arc<Mutex<Vec<Req>>>,
    pub body_bytes: Arc<AtomicU64>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    pub fn sent(&self) -> u64 {
        self.body_bytes.load(Ordering::SeqCst)
    }
}

type Handler = dyn Fn(&Req) -> Reply + Send + Sync;

pub fn serve(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let body_bytes = Arc::new(AtomicU64::new(0));
    let handler: Arc<Handler> = Arc::new(handler);
    let (l2, b2) = (log.clone(), body_bytes.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (h, l, b) = (handler.clone(), l2.clone(), b2.clone());
            std::thread::spawn(move || {
                let _ = handle(stream, &*h, &l, &b);
            });
        }
    });
    Server {
        port,
        log,
        body_bytes,
    }
}

fn handle(
    stream: TcpStream,
    h: &Handler,
    log: &Mutex<Vec<Req>>,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut it = line.split_whitespace();
        let method = it.next().unwrap_or("").to_string();
        let path = it.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            reader.read_line(&mut l)?;
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let req = Req {
            method,
            path,
            headers,
        };
        log.lock().unwrap().push(req.clone());
        let r = h(&req);
        let cl = r.content_length.unwrap_or(r.body.len() as u64);
        let mut head = format!("HTTP/1.1 {} X\r\nContent-Length: {cl}\r\n", r.status);
        for (k, v) in &r.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        match r.throttle {
            Some((chunk, pause)) => {
                for c in r.body.chunks(chunk) {
                    out.write_all(c)?;
                    sent.fetch_add(c.len() as u64, Ordering::SeqCst);
                    std::thread::sleep(pause);
                }
            }
            None => {
                out.write_all(&r.body)?;
                sent.fetch_add(r.body.len() as u64, Ordering::SeqCst);
            }
        }
        out.flush()?;
        if cl != r.body.len() as u64 {
            // A lie: close so the client sees the short body.
            return Ok(());
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(b"GGUF");
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Every file in blobs/ hashes to its name.
pub fn assert_blobs_verified(store: &slm_hub::Store) {
    for e in std::fs::read_dir(store.blobs_dir()).unwrap() {
        let e = e.unwrap();
        let fname = e.file_name().to_string_lossy().into_owned();
        let d =
            slm_hub::Digest::from_file_name(&fname).unwrap_or_else(|| panic!("stray file {fname}"));
        let data = std::fs::read(e.path()).unwrap();
        assert_eq!(
            slm_hub::Digest::of_bytes(&data),
            d,
            "{fname} does not hash to its name"
        );
    }
}

pub fn fast_http() -> slm_hub::Http {
    slm_hub::Http::new(slm_hub::HttpConfig {
        retries: 3,
        backoff: Duration::from_millis(10),
        stall_timeout: Duration::from_secs(5),
        ..Default::default()
    })
}
