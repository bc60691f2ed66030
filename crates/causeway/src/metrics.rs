//! The operators' scrape endpoint (`metrics_listen`): `GET /metrics` over
//! plain HTTP/1.1, answered with the node's OpenMetrics text, then closed.
//!
//! Not a web server: Prometheus sends one short request per scrape, so each
//! connection gets one answer. The request head is parsed here without I/O
//! ([`answer`]) and capped at [`MAX_HEAD`] bytes; a client that sends it
//! more slowly than [`READ_IDLE`] between bytes is dropped, and at most
//! [`MAX_SCRAPES`] connections are served at once, so a scanner that finds
//! the port costs a few kilobytes. Off by default; bind it to loopback or a
//! management network, since it has no authentication (it shows counts,
//! never a user, key or message).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use causeway_net::{Count, Env, Listener, accept_until_shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tracing::{debug, info};

/// The longest request head read (Prometheus sends about 300 bytes).
pub const MAX_HEAD: usize = 8 * 1024;
/// A scraper that sends nothing for this long is dropped (it never waits
/// for anything but its own request to arrive).
pub const READ_IDLE: Duration = Duration::from_secs(10);
/// Scrape connections served at once; more are closed at once.
pub const MAX_SCRAPES: usize = 16;

/// What a request head gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// `GET /metrics` (or `HEAD`): the metrics.
    Metrics { head_only: bool },
    /// Another path.
    NotFound,
    /// Another method.
    NotAllowed,
    /// Not an HTTP request line.
    Bad,
}

/// The answer to a request whose head is `head` (up to and including the
/// blank line), or None while the blank line has not arrived.
pub fn answer(head: &[u8]) -> Option<Answer> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| {
        // Lenient about bare LF, as most servers are.
        head.windows(2).position(|w| w == b"\n\n")
    })?;
    let line = head[..end]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default().trim_end();
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Some(Answer::Bad);
    };
    if !version.starts_with("HTTP/1.") {
        return Some(Answer::Bad);
    }
    let path = target.split('?').next().unwrap_or_default();
    Some(match (method, path) {
        ("GET", "/metrics") => Answer::Metrics { head_only: false },
        ("HEAD", "/metrics") => Answer::Metrics { head_only: true },
        (_, "/metrics") => Answer::NotAllowed,
        _ => Answer::NotFound,
    })
}

/// The whole response to `answer`, with `metrics()` called only when the
/// metrics are asked for.
pub fn response(answer: &Answer, metrics: impl FnOnce() -> String) -> Vec<u8> {
    let (status, kind, body) = match answer {
        Answer::Metrics { .. } => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics(),
        ),
        Answer::NotFound => ("404 Not Found", "text/plain", "Try /metrics.\n".into()),
        Answer::NotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics only.\n".into(),
        ),
        Answer::Bad => ("400 Bad Request", "text/plain", "Not HTTP.\n".into()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if *answer != (Answer::Metrics { head_only: true }) {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Serves scrapes on `listener` until `shutdown`, each answered with
/// `metrics()` as it is at that moment.
pub async fn serve<E: Env>(
    env: E,
    listener: E::Listener,
    metrics: Arc<dyn Fn() -> String + Send + Sync>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let live = Count::default();
    accept_until_shutdown(&env.clone(), listener, shutdown, move |stream, peer| {
        let (env, metrics, ticket) = (
            env.clone(),
            metrics.clone(),
            live.ticket_within(MAX_SCRAPES),
        );
        async move {
            let Some(_ticket) = ticket else {
                debug!(%peer, max = MAX_SCRAPES, "closed a scrape connection: too many at once");
                return;
            };
            if let Err(e) = scrape(&env, stream, peer, &*metrics).await {
                debug!(%peer, error = %e, "a scrape connection ended without an answer");
            }
        }
    })
    .await
}

async fn scrape<E: Env>(
    env: &E,
    mut stream: E::Stream,
    peer: SocketAddr,
    metrics: &(dyn Fn() -> String + Send + Sync),
) -> io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let asked = loop {
        if let Some(a) = answer(&head) {
            break a;
        }
        if head.len() >= MAX_HEAD {
            break Answer::Bad;
        }
        let n = tokio::select! {
            r = stream.read(&mut buf) => r?,
            _ = env.sleep(READ_IDLE) => return Err(io::Error::new(io::ErrorKind::TimedOut,
                "the scraper sent nothing for 10 s")),
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n.min(MAX_HEAD - head.len())]);
    };
    debug!(%peer, answer = ?asked, "scrape");
    let out = response(&asked, metrics);
    // The scraper reads as fast as it asked; a stalled one is dropped.
    tokio::select! {
        r = stream.write_all(&out) => r?,
        _ = env.sleep(READ_IDLE) => return Err(io::Error::new(io::ErrorKind::TimedOut,
            "the scraper read nothing for 10 s")),
    }
    stream.shutdown().await
}

/// Binds `address` and serves scrapes there until `shutdown`, in a task of
/// its own; logs where (`metrics_address=`).
pub async fn start<E: Env>(
    env: &E,
    address: &str,
    metrics: Arc<dyn Fn() -> String + Send + Sync>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let listener = env.bind(address).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen for metrics on {address}: {e}"),
        )
    })?;
    info!(metrics_address = %listener.local_addr()?, "metrics endpoint open (GET /metrics)");
    tokio::spawn(serve(env.clone(), listener, metrics, shutdown));
    Ok(())
}

/// Fuzz target body (`fuzz/fuzz_targets/metrics_request.rs`, and the
/// proptest below): any bytes a scraper sends get an answer or a wait for
/// more, never a panic, and every answer is a whole response.
pub fn fuzz_request(data: &[u8]) {
    let head = &data[..data.len().min(MAX_HEAD)];
    if let Some(a) = answer(head) {
        let out = response(&a, || "x 1\n# EOF\n".into());
        assert!(out.starts_with(b"HTTP/1.1 "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_request_bytes_get_an_answer_or_a_wait(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            fuzz_request(&data);
        }
    }

    #[test]
    fn a_scrape_is_answered_and_anything_else_refused() {
        let get = b"GET /metrics HTTP/1.1\r\nHost: edge:9464\r\nAccept: */*\r\n\r\n";
        assert_eq!(answer(get), Some(Answer::Metrics { head_only: false }));
        assert_eq!(answer(&get[..20]), None, "not whole yet");
        assert_eq!(
            answer(b"GET /metrics?x=1 HTTP/1.0\n\n"),
            Some(Answer::Metrics { head_only: false })
        );
        assert_eq!(
            answer(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Some(Answer::Metrics { head_only: true })
        );
        assert_eq!(
            answer(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Answer::NotAllowed)
        );
        assert_eq!(answer(b"GET / HTTP/1.1\r\n\r\n"), Some(Answer::NotFound));
        assert_eq!(answer(b"USER alice\r\n\r\n"), Some(Answer::Bad));
        assert_eq!(answer(b"GET /metrics SSH-2.0\r\n\r\n"), Some(Answer::Bad));
        assert_eq!(
            answer(
                &[0xff; 40]
                    .iter()
                    .chain(b"\r\n\r\n")
                    .copied()
                    .collect::<Vec<u8>>()
            ),
            Some(Answer::Bad)
        );
    }

    #[test]
    fn responses_carry_their_length_and_close() {
        let ok = response(&Answer::Metrics { head_only: false }, || {
            "x 1\n# EOF\n".into()
        });
        let ok = String::from_utf8(ok).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Length: 10\r\nConnection: close\r\n\r\nx 1\n# EOF\n"),
            "{ok}"
        );
        let head = response(&Answer::Metrics { head_only: true }, || "x 1\n".into());
        assert!(String::from_utf8(head).unwrap().ends_with("\r\n\r\n"));
        let nf = response(&Answer::NotFound, || unreachable!("no metrics for a 404"));
        assert!(String::from_utf8(nf).unwrap().starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn a_real_scrape_over_loopback() {
        let env = causeway_net::TokioEnv::new();
        let (_stop, rx) = watch::channel(false);
        let listener = env.bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(
            env.clone(),
            listener,
            Arc::new(|| "up 1\n# EOF\n".into()),
            rx,
        ));
        let mut s = env.connect(&addr.to_string()).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).await.unwrap();
        assert!(
            got.starts_with("HTTP/1.1 200 OK") && got.ends_with("up 1\n# EOF\n"),
            "{got}"
        );
    }
}
