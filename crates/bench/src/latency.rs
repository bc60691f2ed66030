//! Figure 6: the time Causeway adds to one command, on loopback.
//!
//! One session through Causeway and one direct (both through a forwarder
//! standing in for the line, so each path has the same extra hop): `STAT`
//! `iterations` times, then `RETR` of `iterations` different 4 KiB messages,
//! each timed alone. Through Causeway, STAT is answered by the client proxy
//! from the listing it got at login. A RETR is answered from the proxy's
//! mirror once the body has been streamed ahead (the default); with
//! streaming ahead off (a second chain), each RETR goes to the edge, which
//! fetches the body from the server (TOP) on demand: #18 asks the first
//! within 1x direct and the second within 2x.

use std::time::{Duration, Instant};

use causeway_net::{EnvRng, TokioEnv};
use causeway_pop3::Pop3Client;
use tokio::net::TcpStream;

use crate::nodes::{Chain, ChainSpec, DIRECT_USER, USER, mail_client};
use crate::{Figure, Options};

/// Exactly 4,096 octets (CRLF line ends), generated text.
fn message(rng: &EnvRng, i: u64) -> Vec<u8> {
    const SIZE: usize = 4096;
    let m = causeway_pop3::multiline::normalise(&causeway_mailserver::generate::message(
        rng,
        i,
        2 * SIZE,
    ));
    let cut = m[..SIZE - 80]
        .windows(2)
        .rposition(|w| w == b"\r\n")
        .unwrap()
        + 2;
    let mut out = m[..cut].to_vec();
    let pad = SIZE - out.len() - 2;
    out.extend(std::iter::repeat_n(b'x', pad));
    out.extend_from_slice(b"\r\n");
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

async fn timed(
    mut c: Pop3Client<TokioEnv, TcpStream>,
    n: usize,
) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    let e = |e: causeway_pop3::ClientError| e.to_string();
    let mut stat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.stat().await.map_err(e)?;
        stat.push(t.elapsed());
    }
    let mut retr = Vec::with_capacity(n);
    for i in 1..=n as u32 {
        let t = Instant::now();
        let body = c.retr(i).await.map_err(e)?;
        retr.push(t.elapsed());
        if body.len() != 4096 {
            return Err(format!("RETR {i} returned {} bytes", body.len()));
        }
    }
    c.quit().await.map_err(e)?;
    stat.sort();
    retr.sort();
    Ok((stat, retr))
}

pub async fn figures(opts: &Options) -> Result<Vec<Figure>, String> {
    let n = opts.iterations.max(1);
    let chain = Chain::start(ChainSpec::default()).await;
    let fetching = Chain::start(ChainSpec {
        no_prefetch: true,
        ..ChainSpec::default()
    })
    .await;
    let rng = EnvRng::from_seed([4; 32]);
    for i in 0..n {
        let m = message(&rng, i as u64);
        for (c, user) in [(&chain, USER), (&chain, DIRECT_USER), (&fetching, USER)] {
            c.store.deliver(user, &m).map_err(|e| e.to_string())?;
        }
    }
    let c = mail_client(&chain.env, &chain.proxy, true).await?;
    let (cw_stat, cw_retr) = timed(c, n).await?;
    chain.settle().await?;
    let c = mail_client(&fetching.env, &fetching.proxy, true).await?;
    let (_, fetched_retr) = timed(c, n).await?;
    fetching.settle().await?;
    drop(fetching);
    let c = mail_client(&chain.env, &chain.forward.addr(), false).await?;
    let (d_stat, d_retr) = timed(c, n).await?;

    let row = |name: &str, cw: &[Duration], d: &[Duration], p: f64, what: &str| {
        Figure::new(
            name,
            "µs",
            percentile(cw, p),
            vec![("direct", percentile(d, p))],
        )
        .note(format!("{what}, {n} commands, loopback"))
    };
    Ok(vec![
        row(
            "latency_stat_p50",
            &cw_stat,
            &d_stat,
            0.50,
            "STAT (answered by the client proxy)",
        ),
        row("latency_stat_p99", &cw_stat, &d_stat, 0.99, "STAT"),
        row(
            "latency_retr4k_p50",
            &cw_retr,
            &d_retr,
            0.50,
            "RETR of a 4 KiB message (streamed ahead: answered from the proxy's mirror)",
        ),
        row("latency_retr4k_p99", &cw_retr, &d_retr, 0.99, "RETR 4 KiB"),
        row(
            "latency_retr4k_fetched_p50",
            &fetched_retr,
            &d_retr,
            0.50,
            "RETR of a 4 KiB message, streaming ahead off (the edge fetches it from the server)",
        ),
        row(
            "latency_retr4k_fetched_p99",
            &fetched_retr,
            &d_retr,
            0.99,
            "RETR 4 KiB, streaming ahead off",
        ),
    ])
}
