//! Figure 4: CPU per megabyte of mail in the edge, the relay and the client
//! proxy, against a plain TCP forward of the same bytes, in the same run.
//!
//! Each component runs on its own thread ([`crate::nodes::Node`]), so its
//! CPU time is read with `getrusage(RUSAGE_THREAD)` on that thread before and
//! after. The mail client downloads the mailbox (STAT, RETR all, QUIT) as
//! many times as it takes to carry `--cpu-mb` megabytes: once through
//! proxy -> edge -> relay -> server, once through the plain forward.

use std::time::{Duration, Instant};

use causeway_net::TokioEnv;

use causeway_wire::ChannelConfig;

use crate::mail::{self, Messages};
use crate::nodes::{Chain, ChainSpec, DIRECT_USER, USER, mail_client};
use crate::ssh::{SshTunnel, TunnelCpu};
use crate::tls::TlsForward;
use crate::{Figure, Options, sys};

async fn passes(
    env: &TokioEnv,
    addr: &str,
    causeway: bool,
    n: usize,
    count: u32,
) -> Result<(), String> {
    let e = |e: causeway_pop3::ClientError| e.to_string();
    for _ in 0..n {
        let mut c = mail_client(env, addr, causeway).await?;
        let (have, _) = c.stat().await.map_err(e)?;
        if have != count {
            return Err(format!("STAT says {have} messages, expected {count}"));
        }
        for i in 1..=count {
            c.retr(i).await.map_err(e)?;
        }
        c.quit().await.map_err(e)?;
    }
    Ok(())
}

struct Cpu {
    edge: Duration,
    relay: Duration,
    proxy: Duration,
    line: Duration,
    forward: Duration,
    server: Duration,
    process: Duration,
}

async fn cpu(chain: &Chain) -> Cpu {
    Cpu {
        edge: chain.edge_node.cpu().await,
        relay: chain.relay_node.cpu().await,
        proxy: chain.proxy_node.cpu().await,
        line: chain.line_node.cpu().await,
        forward: chain.forward_node.cpu().await,
        server: chain.server_node.cpu().await,
        process: sys::process_cpu(),
    }
}

fn since(a: &Cpu, b: &Cpu) -> Cpu {
    Cpu {
        edge: b.edge - a.edge,
        relay: b.relay - a.relay,
        proxy: b.proxy - a.proxy,
        line: b.line - a.line,
        forward: b.forward - a.forward,
        server: b.server - a.server,
        process: b.process - a.process,
    }
}

/// The edge's CPU for `n` downloads with every frame at zstd `level`
/// (both the fast and the bulk level), through a chain of its own.
async fn edge_cpu_at(level: i32, messages: &Messages, n: usize) -> Result<Duration, String> {
    let chain = Chain::start(ChainSpec {
        via_relay: true,
        channel: ChannelConfig {
            zstd_level: level,
            bulk_level: level,
            ..ChannelConfig::default()
        },
        ..ChainSpec::default()
    })
    .await;
    for m in messages {
        chain.store.deliver(USER, m).map_err(|e| e.to_string())?;
    }
    let before = chain.edge_node.cpu().await;
    passes(&chain.env, &chain.proxy, true, n, messages.len() as u32).await?;
    chain.settle().await?;
    Ok(chain.edge_node.cpu().await - before)
}

pub async fn figures(opts: &Options, messages: &Messages) -> Result<Vec<Figure>, String> {
    let chain = Chain::start(ChainSpec {
        via_relay: true,
        ..ChainSpec::default()
    })
    .await;
    for m in messages {
        chain.store.deliver(USER, m).map_err(|e| e.to_string())?;
        chain
            .store
            .deliver(DIRECT_USER, m)
            .map_err(|e| e.to_string())?;
    }
    let per_pass = mail::total(messages) as f64;
    let n = ((opts.cpu_mb * 1e6 / per_pass).ceil() as usize).max(1);
    let count = messages.len() as u32;
    let mb = per_pass * n as f64 / 1e6;

    let c0 = cpu(&chain).await;
    let t = Instant::now();
    passes(&chain.env, &chain.proxy, true, n, count).await?;
    chain.settle().await?;
    let cw_wall = t.elapsed().as_secs_f64();
    let c1 = cpu(&chain).await;
    let t = Instant::now();
    passes(&chain.env, &chain.forward.addr(), false, n, count).await?;
    chain.settle().await?;
    let fw_wall = t.elapsed().as_secs_f64();
    let c2 = cpu(&chain).await;
    let (cw, fw) = (since(&c0, &c1), since(&c1, &c2));
    let ssh = if crate::ssh::available() {
        let tunnel = SshTunnel::start(&chain.server_addr, None).await?;
        let t = Instant::now();
        passes(&chain.env, &tunnel.local, false, n, count).await?;
        let wall = t.elapsed().as_secs_f64();
        chain.settle().await?;
        Some((tunnel.stop().await?, wall))
    } else {
        None
    };
    let tls = TlsForward::start(&chain.server_addr, None).await?;
    let (client0, server0) = (tls.client_end.cpu().await, tls.server_end.cpu().await);
    let t = Instant::now();
    passes(&chain.env, &tls.local, false, n, count).await?;
    let tls_wall = t.elapsed().as_secs_f64();
    chain.settle().await?;
    let tls_cpu = TunnelCpu {
        client: tls.client_end.cpu().await - client0,
        server: tls.server_end.cpu().await - server0,
    };

    drop(chain);
    let per = |d: Duration| mb / d.as_secs_f64().max(1e-6);
    let base = format!("{mb:.1} MB of mail in {n} downloads of {count} messages");
    let mut levels = Vec::new();
    for level in [3, 9] {
        levels.push((level, edge_cpu_at(level, messages, n).await?));
    }
    let level_note = levels
        .iter()
        .map(|(l, d)| format!("level {l}: {:.2} CPU-s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(vec![
        Figure::new(
            "cpu_edge_level9",
            "MB/CPU-s",
            per(levels[1].1),
            vec![
                ("level3", per(levels[0].1)),
                ("plain_forward", per(fw.forward)),
            ],
        )
        .note(format!(
            "{base}, every frame at one level (what a slow line's stream uses: bulk_level 9; a fast line's: zstd_level 3); {level_note}"
        )),
        Figure::new(
            "cpu_edge",
            "MB/CPU-s",
            per(cw.edge),
            [("plain_forward", per(fw.forward))]
                .into_iter()
                .chain(ssh.map(|(c, _)| ("sshd", per(c.server))))
                .chain([("tls_forward_server_end", per(tls_cpu.server))])
                .collect(),
        )
        .note(format!(
            "{base}; edge {:.2} CPU-s, plain forward {:.3} CPU-s{}",
            cw.edge.as_secs_f64(),
            fw.forward.as_secs_f64(),
            ssh.map(|(c, _)| format!(
                "; ssh -C -L (tunnel set up once; chacha20-poly1305, zlib): sshd {:.2} CPU-s, ssh {:.2} CPU-s",
                c.server.as_secs_f64(),
                c.client.as_secs_f64()
            ))
            .unwrap_or_default()
                + &format!(
                    "; TLS forward (a TLS 1.3 connection per download, rustls): server end {:.2} CPU-s, client end {:.2} CPU-s",
                    tls_cpu.server.as_secs_f64(),
                    tls_cpu.client.as_secs_f64()
                )
        )),
        Figure::new(
            "cpu_relay",
            "MB/CPU-s",
            per(cw.relay),
            vec![("plain_forward", per(fw.forward))],
        )
        .note(format!("relay {:.2} CPU-s", cw.relay.as_secs_f64())),
        Figure::new(
            "cpu_proxy",
            "MB/CPU-s",
            per(cw.proxy),
            [("plain_forward", per(fw.forward))]
                .into_iter()
                .chain(ssh.map(|(c, _)| ("ssh_client", per(c.client))))
                .chain([("tls_forward_client_end", per(tls_cpu.client))])
                .collect(),
        )
        .note(format!(
            "client proxy {:.2} CPU-s (the user's machine)",
            cw.proxy.as_secs_f64()
        )),
        Figure::new(
            "cpu_process",
            "MB/CPU-s",
            per(cw.process),
            vec![("direct_via_forward", per(fw.process))],
        )
        .note(format!(
            "whole process (getrusage): {:.2} vs {:.2} CPU-s, mail server {:.2} vs {:.2}, line forwarder {:.2}",
            cw.process.as_secs_f64(),
            fw.process.as_secs_f64(),
            cw.server.as_secs_f64(),
            fw.server.as_secs_f64(),
            cw.line.as_secs_f64()
        )),
        Figure::new(
            "throughput_wall",
            "MB/s",
            mb / cw_wall,
            [("direct_via_forward", mb / fw_wall)]
                .into_iter()
                .chain(ssh.map(|(_, wall)| ("ssh_c", mb / wall)))
                .chain([("tls_forward", mb / tls_wall)])
                .collect(),
        )
        .note("one mail client at a time, loopback, 2 shared cores"),
    ])
}
