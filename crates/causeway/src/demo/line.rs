//! The demo's bad line: a forwarder between client proxy and edge, over
//! [`Env`], that cuts each connection at a random byte count (or lets it
//! through whole), and remembers each cut.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use causeway_net::{Env, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Chance that a connection is cut at all.
const CUT_CHANCE: f64 = 0.7;
/// A cut connection is cut after 2^(b-1) to 2^b bytes (both directions
/// together), b drawn uniformly from this range: as often inside the
/// handshake as halfway through a compressed body.
const CUT_BITS: (u64, u64) = (7, 18);

pub struct Cutter {
    pub addr: String,
    cuts: Arc<Mutex<Vec<String>>>,
}

impl Cutter {
    pub async fn start<E: Env>(env: E, target: String) -> io::Result<Cutter> {
        let mut listener = env.bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let cuts = Arc::new(Mutex::new(Vec::new()));
        let log = cuts.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while let Ok((down, _)) = listener.accept().await {
                n += 1;
                let up = match env
                    .timeout(
                        std::time::Duration::from_secs(10),
                        "connecting to the edge",
                        env.connect(&target),
                    )
                    .await
                {
                    Ok(Ok(s)) => s,
                    _ => continue,
                };
                let cut_at = env.rng().chance(CUT_CHANCE).then(|| {
                    let b = env.rng().range(CUT_BITS.0, CUT_BITS.1 + 1);
                    env.rng().range(1 << (b - 1), 1 << b)
                });
                tokio::spawn(carry(n, down, up, cut_at, log.clone()));
            }
        });
        Ok(Cutter { addr, cuts })
    }

    /// One line per cut so far.
    pub fn cuts(&self) -> Vec<String> {
        self.cuts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn carry<S: causeway_net::Stream>(
    n: u64,
    down: S,
    up: S,
    cut_at: Option<u64>,
    log: Arc<Mutex<Vec<String>>>,
) {
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let (cut_tx, _) = watch::channel(false);
    let (dr, dw) = tokio::io::split(down);
    let (ur, uw) = tokio::io::split(up);
    let a = pump(dr, uw, 0, counts.clone(), cut_at, cut_tx.clone());
    let b = pump(ur, dw, 1, counts.clone(), cut_at, cut_tx.clone());
    tokio::join!(a, b);
    if *cut_tx.borrow() {
        let (u, d) = (
            counts[0].load(Ordering::SeqCst),
            counts[1].load(Ordering::SeqCst),
        );
        let line = format!(
            "line #{n} cut after {} bytes ({u} client proxy -> edge, {d} edge -> client proxy)",
            u + d
        );
        println!("[cut line] {line}");
        log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

async fn pump<R, W>(
    mut from: R,
    mut to: W,
    dir: usize,
    counts: Arc<[AtomicU64; 2]>,
    cut_at: Option<u64>,
    cut: watch::Sender<bool>,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut cut_rx = cut.subscribe();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = tokio::select! {
            _ = async { let _ = cut_rx.wait_for(|c| *c).await; } => return,
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
        };
        let total = counts[0].load(Ordering::SeqCst) + counts[1].load(Ordering::SeqCst);
        let send = match cut_at {
            Some(at) => n.min(at.saturating_sub(total) as usize),
            None => n,
        };
        if send > 0 && to.write_all(&buf[..send]).await.is_err() {
            return;
        }
        counts[dir].fetch_add(send as u64, Ordering::SeqCst);
        if send < n || cut_at.is_some_and(|at| total + send as u64 >= at) {
            let _ = cut.send(true);
            return;
        }
    }
}
