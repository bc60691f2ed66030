//! A TCP forwarder that can cut the line: the "bad line" of the end-to-end
//! tests, on real loopback sockets.
//!
//! It sits between the client proxy and the edge, copies bytes both ways,
//! counts them, and drops every connection it carries either on command
//! ([`Forwarder::cut_now`]) or once a chosen number of further bytes has
//! passed in one direction ([`Forwarder::cut_after`]), e.g. halfway through a
//! message body. A cut closes both sockets: each side sees its stream end
//! without a close frame, as when a mobile line dies.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A direction through the forwarder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client proxy -> edge.
    Up,
    /// Edge -> client proxy.
    Down,
}

#[derive(Default)]
struct Shared {
    /// Bytes forwarded, per direction (Up, Down), over all connections.
    bytes: [AtomicU64; 2],
    /// Cut when this direction's count reaches this total.
    trigger: Mutex<Option<(Dir, u64)>>,
    connections: AtomicU64,
    /// Direction of the last chunk forwarded, and how often the traffic
    /// turned from Up to Down: the round trips the line cost.
    last: Mutex<Option<Dir>>,
    round_trips: AtomicU64,
}

pub struct Forwarder {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Bumped on every cut; each connection ends when it changes.
    cuts: watch::Sender<u64>,
}

/// A slow line: each direction carries `bytes_per_sec`, and every byte
/// arrives `delay` after it was sent (a serialising queue, as on a real
/// radio or satellite link).
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub bytes_per_sec: u64,
    pub delay: std::time::Duration,
}

impl Forwarder {
    /// Listens on a fresh loopback port and forwards each connection to `target`.
    pub async fn start(target: String) -> Forwarder {
        Self::start_paced(target, None).await
    }

    /// As [`Forwarder::start`], over a slow line when `pace` says so.
    pub async fn start_paced(target: String, pace: Option<Pace>) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the forwarder");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let (cuts, _) = watch::channel(0);
        let (s, c) = (shared.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect(&target).await else {
                    continue;
                };
                s.connections.fetch_add(1, Ordering::SeqCst);
                let _ = (down.set_nodelay(true), up.set_nodelay(true));
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(pump(dr, uw, Dir::Up, s.clone(), c.clone(), pace));
                tokio::spawn(pump(ur, dw, Dir::Down, s.clone(), c.clone(), pace));
            }
        });
        Forwarder { addr, shared, cuts }
    }

    /// `host:port` to connect to instead of the target.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Drops every connection now.
    pub fn cut_now(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Drops every connection once `more` further bytes have passed in `dir`
    /// (the bytes up to that point are delivered, the rest never is).
    pub fn cut_after(&self, dir: Dir, more: u64) {
        let at = self.bytes(dir) + more;
        *self.shared.trigger.lock().unwrap() = Some((dir, at));
    }

    /// Bytes forwarded in `dir` so far.
    pub fn bytes(&self, dir: Dir) -> u64 {
        self.shared.bytes[dir as usize].load(Ordering::SeqCst)
    }

    /// Round trips so far: how often the traffic turned from client -> edge
    /// to edge -> client (the TCP handshake not counted).
    pub fn round_trips(&self) -> u64 {
        self.shared.round_trips.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    dir: Dir,
    shared: Arc<Shared>,
    cuts: watch::Sender<u64>,
    pace: Option<Pace>,
) {
    let mut cut = cuts.subscribe();
    cut.mark_unchanged();
    // On a slow line, bytes go through a queue that releases each chunk
    // once the line has carried it and its delay has passed.
    let (paced, mut to) = match pace {
        None => (None, Some(to)),
        Some(p) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(deliver_paced(rx, to, cuts.subscribe()));
            (Some((p, tx)), None)
        }
    };
    let mut line_free = tokio::time::Instant::now();
    let mut buf = vec![0u8; if pace.is_some() { 1 << 10 } else { 16 << 10 }];
    loop {
        let n = tokio::select! {
            _ = cut.changed() => return,
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    // A clean end on one side is passed on as such.
                    match (&mut to, &paced) {
                        (Some(to), _) => {
                            let _ = to.shutdown().await;
                        }
                        (None, Some((_, tx))) => {
                            let _ = tx.send((tokio::time::Instant::now(), None));
                        }
                        _ => {}
                    }
                    return;
                }
                Ok(n) => n,
            },
        };
        let before = shared.bytes[dir as usize].load(Ordering::SeqCst);
        let limit = match *shared.trigger.lock().unwrap() {
            Some((d, at)) if d == dir => Some(at.saturating_sub(before)),
            _ => None,
        };
        let send = limit.map_or(n, |l| n.min(l as usize));
        // Noted before writing: the peer's answer cannot be read before this.
        let previous = shared.last.lock().unwrap().replace(dir);
        if dir == Dir::Down && previous == Some(Dir::Up) {
            shared.round_trips.fetch_add(1, Ordering::SeqCst);
        }
        match (&mut to, &paced) {
            (Some(to), _) => {
                if to.write_all(&buf[..send]).await.is_err() {
                    return;
                }
            }
            (None, Some((p, tx))) => {
                let carried = std::time::Duration::from_nanos(
                    send as u64 * 1_000_000_000 / p.bytes_per_sec.max(1),
                );
                line_free = line_free.max(tokio::time::Instant::now()) + carried;
                if tx
                    .send((line_free + p.delay, Some(buf[..send].to_vec())))
                    .is_err()
                {
                    return;
                }
            }
            _ => return,
        }
        shared.bytes[dir as usize].fetch_add(send as u64, Ordering::SeqCst);
        if limit.is_some_and(|l| send as u64 >= l) {
            *shared.trigger.lock().unwrap() = None;
            cuts.send_modify(|n| *n += 1);
            return;
        }
    }
}

/// The far end of a slow line: writes each chunk when it is due; `None`
/// passes on a clean end.
async fn deliver_paced(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(tokio::time::Instant, Option<Vec<u8>>)>,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<u64>,
) {
    cut.mark_unchanged();
    while let Some((due, chunk)) = rx.recv().await {
        tokio::select! {
            _ = cut.changed() => return,
            _ = tokio::time::sleep_until(due) => {}
        }
        match chunk {
            Some(bytes) => {
                if to.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            None => {
                let _ = to.shutdown().await;
                return;
            }
        }
    }
}
