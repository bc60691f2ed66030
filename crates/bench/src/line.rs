//! Figures 1-3: what downloading a mailbox costs on the client's line.
//!
//! The mail client's session is `USER`/`PASS`, `STAT`, `UIDL`, `RETR` of
//! every message, `DELE` of every message, `QUIT`. Through Causeway, the bytes
//! counted are everything the line between client proxy and edge carries
//! (Noise handshake, records, frames, compressed messages, close frames);
//! direct, everything between the mail client and the server. The direct
//! transcript is also compressed whole, one stream per direction, with
//! deflate and zstd: what an ideal compressing tunnel (`ssh -C`, without its
//! own handshake and packet overhead) would carry.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use causeway_net::TokioEnv;
use causeway_wire::ChannelConfig;
use tokio::net::TcpStream;

use crate::mail::{self, Messages};
use crate::nodes::{Chain, ChainSpec, DIRECT_USER, USER, mail_client, mail_client_on};
use crate::ssh::{SshTunnel, TunnelCpu};
use crate::tls::TlsForward;
use crate::{Figure, Options, progress};
use causeway_net::tap::{TapLog, Tapped};
use causeway_tests::Pace;

/// What one session cost on its line.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineCost {
    pub up: u64,
    pub down: u64,
    /// Request/response turns the client waited for (the TCP handshake not
    /// included). Direct: counted by the forward (traffic turning from
    /// client->server to server->client, each one a wait for POP3's
    /// lock-step). Causeway: counted by the client proxy, which knows when
    /// it waits (handshake, Hello, each request, ping and Quit); the body
    /// stream's window credits turn the traffic without anyone waiting.
    pub turns: u64,
    /// Times the traffic changed direction on the line.
    pub direction_changes: u64,
    /// Wall time of the mail client's session (connect to QUIT's answer).
    pub seconds: f64,
}

impl LineCost {
    pub fn bytes(&self) -> u64 {
        self.up + self.down
    }
}

/// Line profiles for figure 3: (name, bits per second, round-trip time in s).
pub const PROFILES: &[(&str, f64, f64)] = &[
    ("gprs", 40e3, 0.600),
    ("3g", 1e6, 0.150),
    ("satellite", 10e6, 0.700),
];

/// Modelled time for a session: one round trip for the TCP handshake, one per
/// turn, and every byte at the line's rate (one direction at a time, no slow
/// start, no TCP/IP headers).
pub fn model_seconds(bytes: u64, turns: u64, bps: f64, rtt: f64) -> f64 {
    (turns + 1) as f64 * rtt + bytes as f64 * 8.0 / bps
}

/// The dictionary for the dictionary figures: trained on `train.lst` (or
/// `--train-list`) for a corpus, on other generated mail otherwise. `None`
/// (with a note on stderr) if a corpus has no training list.
pub fn dictionary(opts: &Options) -> Result<Option<Arc<Vec<u8>>>, String> {
    let samples = match &opts.corpus {
        Some(dir) => {
            let list = opts.train_list.clone().or_else(|| {
                let l = opts.list.as_ref()?.with_file_name("train.lst");
                l.exists().then_some(l)
            });
            let Some(list) = list else {
                progress("no training list (--train-list): dictionary figures skipped");
                return Ok(None);
            };
            mail::load(dir, Some(&list))?
        }
        // A different seed: never train on the mail that is measured.
        None => mail::generated(2, 2000, opts.message_size),
    };
    let t = Instant::now();
    let dict = causeway_wire::dictionary::train(&samples, opts.dict_size)
        .map_err(|e| format!("training the dictionary: {e}"))?;
    progress(&format!(
        "dictionary: {} bytes from {} samples in {:.1} s",
        dict.len(),
        samples.len(),
        t.elapsed().as_secs_f64()
    ));
    Ok(Some(Arc::new(dict)))
}

/// Downloads `messages` through Causeway once; checks every body and that
/// the deletes were committed.
pub async fn causeway_session(chain: &Chain, messages: &Messages) -> Result<LineCost, String> {
    for m in messages {
        chain.store.deliver(USER, m).map_err(|e| e.to_string())?;
    }
    let (u0, d0, t0, w0) = (
        chain.line.bytes(causeway_tests::Dir::Up),
        chain.line.bytes(causeway_tests::Dir::Down),
        chain.line.round_trips(),
        chain.client.line_waits(),
    );
    let started = Instant::now();
    let c = mail_client(&chain.env, &chain.proxy, true).await?;
    download(c, messages).await?;
    let seconds = started.elapsed().as_secs_f64();
    let direction_changes = chain.line.round_trips() - t0;
    let turns = chain.client.line_waits() - w0;
    chain.settle().await?;
    if !chain.store.present_uidls(USER).is_empty() {
        return Err("the deletes through Causeway were not committed".into());
    }
    Ok(LineCost {
        up: chain.line.bytes(causeway_tests::Dir::Up) - u0,
        down: chain.line.bytes(causeway_tests::Dir::Down) - d0,
        turns,
        direction_changes,
        seconds,
    })
}

/// What a direct session sent each way: `up` written by the mail client,
/// `down` read by it (compressed whole afterwards, for the alternatives).
#[derive(Default, Debug)]
pub struct Transcript {
    pub up: Vec<u8>,
    pub down: Vec<u8>,
}

/// The same download spoken directly to the server (through the plain
/// forward, which counts turns); returns its transcript too.
pub async fn direct_session(
    chain: &Chain,
    messages: &Messages,
) -> Result<(LineCost, Transcript), String> {
    // The forward lives as long as the chain: count from now. It counts a
    // turn when traffic turns from client->server to server->client; the
    // greeting, which the client waits for after connecting, has nothing
    // before it. It costs a round trip all the same.
    let from = Counts::of(&chain.forward);
    let (mut cost, transcript) =
        counted_session(chain, messages, &chain.forward.addr(), &chain.forward, from).await?;
    cost.turns += 1;
    cost.direction_changes = cost.turns;
    Ok((cost, transcript))
}

/// The same download through `ssh -C -L` (OpenSSH, sshd on loopback started
/// for it); its bytes and turns include ssh's own handshake and login, its
/// time the tunnel's setup. Then the tunnel ends, and the CPU each of its
/// ends used is returned too. `None` where OpenSSH is not installed.
pub async fn ssh_session(
    chain: &Chain,
    messages: &Messages,
    pace: Option<Pace>,
) -> Result<Option<(LineCost, TunnelCpu)>, String> {
    if !crate::ssh::available() {
        return Ok(None);
    }
    let tunnel = SshTunnel::start(&chain.server_addr, pace).await?;
    let (cost, _) =
        counted_session(chain, messages, &tunnel.local, &tunnel.line, Counts::ZERO).await?;
    let cost = LineCost {
        seconds: cost.seconds + tunnel.setup_seconds,
        ..cost
    };
    Ok(Some((cost, tunnel.stop().await?)))
}

/// The same download through a stunnel-style TLS forward to the server
/// (its TLS handshake is the mail client's connection's).
pub async fn tls_session(
    chain: &Chain,
    messages: &Messages,
    pace: Option<Pace>,
) -> Result<LineCost, String> {
    let forward = TlsForward::start(&chain.server_addr, pace).await?;
    let (cost, _) =
        counted_session(chain, messages, &forward.local, &forward.line, Counts::ZERO).await?;
    Ok(cost)
}

/// What a counting line had carried at an instant.
#[derive(Clone, Copy)]
struct Counts {
    up: u64,
    down: u64,
    turns: u64,
}

impl Counts {
    /// A line that began with the session's tunnel: everything it carried.
    const ZERO: Counts = Counts {
        up: 0,
        down: 0,
        turns: 0,
    };

    fn of(line: &causeway_tests::Forwarder) -> Counts {
        Counts {
            up: line.bytes(causeway_tests::Dir::Up),
            down: line.bytes(causeway_tests::Dir::Down),
            turns: line.round_trips(),
        }
    }
}

/// A plain POP3 download of `messages` through whatever listens at `addr`
/// (the plain forward or a tunnel), costed by what `line` carried since
/// `from`; every body checked, the deletes checked committed.
async fn counted_session(
    chain: &Chain,
    messages: &Messages,
    addr: &str,
    line: &causeway_tests::Forwarder,
    from: Counts,
) -> Result<(LineCost, Transcript), String> {
    for m in messages {
        chain
            .store
            .deliver(DIRECT_USER, m)
            .map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let log = TapLog::new();
    let c = mail_client_on(&chain.env, Tapped::new(stream, log.clone()), false).await?;
    download(c, messages).await?;
    let seconds = started.elapsed().as_secs_f64();
    // After the settling, so that a tunnel's closing of its channel counts.
    chain.settle().await?;
    let now = Counts::of(line);
    if !chain.store.present_uidls(DIRECT_USER).is_empty() {
        return Err(format!("the deletes through {addr} were not committed"));
    }
    let turns = now.turns - from.turns;
    let cost = LineCost {
        up: now.up - from.up,
        down: now.down - from.down,
        turns,
        direction_changes: turns,
        seconds,
    };
    let transcript = Transcript {
        up: log.written_bytes(),
        down: log.read_bytes(),
    };
    Ok((cost, transcript))
}

/// STAT, UIDL, RETR all, DELE all, QUIT; every body checked.
async fn download<S: causeway_net::Stream>(
    mut c: causeway_pop3::Pop3Client<TokioEnv, S>,
    messages: &Messages,
) -> Result<(), String> {
    let e = |e: causeway_pop3::ClientError| e.to_string();
    let (n, _) = c.stat().await.map_err(e)?;
    if n as usize != messages.len() {
        return Err(format!(
            "STAT says {n} messages, {} delivered",
            messages.len()
        ));
    }
    c.uidl().await.map_err(e)?;
    for (i, m) in messages.iter().enumerate() {
        let body = c.retr(i as u32 + 1).await.map_err(e)?;
        if body != *m {
            return Err(format!("message {} came back altered", i + 1));
        }
    }
    for i in 0..messages.len() {
        c.dele(i as u32 + 1).await.map_err(e)?;
    }
    let bye = c.quit().await.map_err(e)?;
    if !bye.is_ok() {
        return Err(format!("QUIT refused: {bye}"));
    }
    Ok(())
}

fn deflate(data: &[u8]) -> u64 {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap().len() as u64
}

/// Messages through one zstd context flushed after each, as the channel
/// compresses them (without its framing, encryption and protocol): with or
/// without a dictionary, and with the window left to zstd or forced.
fn zstd_flushed(messages: &Messages, dict: Option<&[u8]>, window_log: Option<u32>) -> u64 {
    use zstd::stream::raw::{CParameter, Encoder, InBuffer, Operation, OutBuffer};
    let mut enc = match dict {
        Some(d) => Encoder::with_dictionary(3, d).unwrap(),
        None => Encoder::new(3).unwrap(),
    };
    if let Some(w) = window_log {
        enc.set_parameter(CParameter::WindowLog(w)).unwrap();
    }
    let mut scratch = vec![0u8; 1 << 16];
    let mut total = 0u64;
    for m in messages {
        let mut input = InBuffer::around(m);
        while input.pos() < m.len() {
            let mut o = OutBuffer::around(&mut scratch[..]);
            enc.run(&mut input, &mut o).unwrap();
            total += o.pos() as u64;
        }
        loop {
            let mut o = OutBuffer::around(&mut scratch[..]);
            let left = enc.flush(&mut o).unwrap();
            total += o.pos() as u64;
            if left == 0 {
                break;
            }
        }
    }
    total
}

fn zstd_stream(data: &[u8]) -> u64 {
    zstd::stream::encode_all(data, 3).unwrap().len() as u64
}

pub async fn figures(
    opts: &Options,
    messages: &Messages,
    dictionary: Option<Arc<Vec<u8>>>,
) -> Result<Vec<Figure>, String> {
    let chain = Chain::start(ChainSpec::default()).await;
    let cw = causeway_session(&chain, messages).await?;
    let (direct, transcript) = direct_session(&chain, messages).await?;
    let ssh = match ssh_session(&chain, messages, None).await? {
        Some((cost, cpu)) => {
            progress(&format!(
                "ssh -C: {} bytes, {} turns; CPU ssh {:.3} s, sshd {:.3} s",
                cost.bytes(),
                cost.turns,
                cpu.client.as_secs_f64(),
                cpu.server.as_secs_f64()
            ));
            Some(cost)
        }
        None => None,
    };
    let tls = tls_session(&chain, messages, None).await?;
    drop(chain);
    let with_dict = match &dictionary {
        Some(d) => {
            let spec = ChainSpec {
                channel: ChannelConfig {
                    dictionary: Some(d.clone()),
                    ..ChannelConfig::default()
                },
                ..ChainSpec::default()
            };
            let chain = Chain::start(spec).await;
            Some(causeway_session(&chain, messages).await?)
        }
        None => None,
    };

    // `compression = "per-message"`: the BREACH-safe mode's price.
    let per_message_session = if opts.wants(1) {
        let spec = ChainSpec {
            channel: ChannelConfig {
                per_message: true,
                ..ChannelConfig::default()
            },
            ..ChainSpec::default()
        };
        let chain = Chain::start(spec).await;
        Some(causeway_session(&chain, messages).await?)
    } else {
        None
    };

    let mail_bytes = mail::total(messages);
    let deflated = deflate(&transcript.up) + deflate(&transcript.down);
    let zstded = zstd_stream(&transcript.up) + zstd_stream(&transcript.down);
    let n = messages.len();
    let mut out = Vec::new();

    if opts.wants(1) {
        out.push(
            Figure::new(
                "line_bytes",
                "bytes",
                cw.bytes() as f64,
                [
                    ("direct", direct.bytes() as f64),
                    ("direct+deflate", deflated as f64),
                    ("direct+zstd3", zstded as f64),
                ]
                .into_iter()
                .chain(ssh.map(|s| ("ssh_c", s.bytes() as f64)))
                .chain([("tls_forward", tls.bytes() as f64)])
                .collect(),
            )
            .note(format!(
                "{n} messages, {mail_bytes} mail bytes, on loopback (the line keeps up: level 3); causeway up {} down {}; direct up {} down {}{}",
                cw.up,
                cw.down,
                direct.up,
                direct.down,
                ssh.map(|s| format!("; ssh -C (tunnel opened for the download, handshake and login included) up {} down {}", s.up, s.down))
                    .unwrap_or_default()
                    + &format!("; TLS forward (TLS 1.3, no compression) up {} down {}", tls.up, tls.down)
            )),
        );
        out.push(slow_line_bytes(messages, &direct, &cw).await?);
        if let Some(p) = &per_message_session {
            out.push(
                Figure::new(
                    "line_bytes_per_message",
                    "bytes",
                    p.bytes() as f64,
                    vec![
                        ("causeway_stream", cw.bytes() as f64),
                        ("direct", direct.bytes() as f64),
                    ],
                )
                .note(
                    "[channel] compression = \"per-message\": every message its own zstd frame at \
                     level 3 (no window shared between messages, no priming)",
                ),
            );
        }
        if let (Some(d), Some(dict)) = (&with_dict, &dictionary) {
            out.push(
                Figure::new(
                    "line_bytes_dict",
                    "bytes",
                    d.bytes() as f64,
                    vec![
                        ("direct", direct.bytes() as f64),
                        ("causeway_no_dict", cw.bytes() as f64),
                        ("direct+zstd3", zstded as f64),
                    ],
                )
                .note(format!(
                    "dictionary {} bytes pinned on both ends",
                    dict.len()
                )),
            );
        }
        // The shared README's figures: mail bytes over compressed bytes.
        let per_message: u64 = messages
            .iter()
            .map(|m| zstd::bulk::compress(m, 3).unwrap().len() as u64)
            .sum();
        let concat: Vec<u8> = messages.concat();
        let one_stream = zstd_stream(&concat);
        let mut alts = vec![
            ("zstd3_one_stream", mail_bytes as f64 / one_stream as f64),
            ("zstd3_per_message", mail_bytes as f64 / per_message as f64),
        ];
        if let Some(dict) = &dictionary {
            let mut c = zstd::bulk::Compressor::with_dictionary(3, dict).unwrap();
            let with: u64 = messages
                .iter()
                .map(|m| c.compress(m).unwrap().len() as u64)
                .sum();
            alts.push(("zstd3_dict_per_message", mail_bytes as f64 / with as f64));
        }
        let x = |bytes: u64| mail_bytes as f64 / bytes as f64;
        alts.push((
            "zstd3_flushed_per_message",
            x(zstd_flushed(messages, None, None)),
        ));
        if let Some(d) = &with_dict {
            alts.push(("causeway_dict", x(d.bytes())));
        }
        if let Some(dict) = &dictionary {
            alts.push((
                "zstd3_dict_flushed",
                x(zstd_flushed(messages, Some(dict), None)),
            ));
            alts.push((
                "zstd3_dict_flushed_window2m",
                x(zstd_flushed(messages, Some(dict), Some(21))),
            ));
        }
        out.push(
            Figure::new(
                "mail_shrink",
                "x smaller",
                mail_bytes as f64 / cw.bytes() as f64,
                alts,
            )
            .note("mail bytes (CRLF, as RETR carries them) / bytes carried; causeway counts its whole session; flushed = one context, flushed after each message, as the channel does"),
        );
    }
    if opts.wants(2) {
        let mut alts = vec![("direct", direct.turns as f64)];
        if let Some(d) = &with_dict {
            alts.push(("causeway_dict", d.turns as f64));
        }
        if let Some(s) = &ssh {
            alts.push(("ssh_c", s.turns as f64));
        }
        alts.push(("tls_forward", tls.turns as f64));
        out.push(
            Figure::new("round_trips", "turns", cw.turns as f64, alts).note(format!(
                "{n} messages; direct = 2n+6 (greeting, USER, PASS, STAT, UIDL, n RETR, n DELE, QUIT); causeway = waits of the client proxy: Noise XK, Hello/Welcome, QUIT, plus a request for each body the stream did not bring (DELE goes in batches from the proxy's journal); its traffic changed direction {} times (window credits, batches: no wait); TCP handshake not counted",
                cw.direction_changes
            )),
        );
    }
    if opts.wants(3) {
        for (name, bps, rtt) in PROFILES {
            let t = |bytes: u64, turns: u64| model_seconds(bytes, turns, *bps, *rtt);
            let mut alts = vec![
                ("direct", t(direct.bytes(), direct.turns)),
                ("direct+zstd3", t(zstded, direct.turns)),
            ];
            if let Some(d) = &with_dict {
                alts.push(("causeway_dict", t(d.bytes(), d.turns)));
            }
            if let Some(s) = &ssh {
                alts.push(("ssh_c", t(s.bytes(), s.turns)));
            }
            alts.push(("tls_forward", t(tls.bytes(), tls.turns)));
            out.push(
                Figure::new(
                    &format!("time_{name}"),
                    "s (model)",
                    t(cw.bytes(), cw.turns),
                    alts,
                )
                .note(format!(
                    "{} kbit/s, {} ms RTT: (turns+1) x RTT + bytes x 8 / rate",
                    bps / 1e3,
                    rtt * 1e3
                )),
            );
        }
        out.push(measured(messages).await?);
    }
    Ok(out)
}

/// Messages carried through the line emulator for the measured figure.
const MEASURED_SLICE: usize = 100;

/// The line the measured figure emulates: 3G (1 Mbit/s, 150 ms round trip).
const MEASURED_LINE: (&str, u64, u64) = ("3g", 125_000, 75);

fn measured_pace() -> causeway_tests::Pace {
    let (_, rate, delay_ms) = MEASURED_LINE;
    causeway_tests::Pace {
        bytes_per_sec: rate,
        delay: std::time::Duration::from_millis(delay_ms),
    }
}

/// The whole mailbox through Causeway over the line emulator: on a line
/// slower than its compressor the edge streams at the bulk level, which a
/// loopback run (where the line keeps up) never chooses.
async fn slow_line_bytes(
    messages: &Messages,
    direct: &LineCost,
    loopback: &LineCost,
) -> Result<Figure, String> {
    let (name, rate, delay_ms) = MEASURED_LINE;
    progress(&format!(
        "figure 1: {} messages through Causeway on a {name} line emulator",
        messages.len()
    ));
    let chain = Chain::start(ChainSpec {
        pace: Some(measured_pace()),
        ..ChainSpec::default()
    })
    .await;
    let cw = causeway_session(&chain, messages).await?;
    Ok(Figure::new(
        &format!("line_bytes_{name}"),
        "bytes",
        cw.bytes() as f64,
        vec![
            ("direct", direct.bytes() as f64),
            ("causeway_loopback", loopback.bytes() as f64),
        ],
    )
    .note(format!(
        "the same session through a line emulator ({} kbit/s each way, {} ms round trip): up {} down {}, {} waits, {:.1} s wall (direct's model: {:.0} s)",
        rate * 8 / 1000,
        2 * delay_ms,
        cw.up,
        cw.down,
        cw.turns,
        cw.seconds,
        model_seconds(direct.bytes(), direct.turns, rate as f64 * 8.0, 2.0 * delay_ms as f64 / 1e3)
    )))
}

/// The first [`MEASURED_SLICE`] messages through Causeway and direct POP3,
/// each line a serialising queue at the profile's rate with its delay each
/// way (`causeway_tests::Pace`); wall time of each mail client's session,
/// beside what the model of figure 3 predicts for the same bytes and turns.
async fn measured(messages: &Messages) -> Result<Figure, String> {
    let (name, rate, delay_ms) = MEASURED_LINE;
    let slice: Messages = messages.iter().take(MEASURED_SLICE).cloned().collect();
    progress(&format!(
        "figure 3: {} messages through a {name} line emulator",
        slice.len()
    ));
    let chain = Chain::start(ChainSpec {
        pace: Some(measured_pace()),
        ..ChainSpec::default()
    })
    .await;
    let cw = causeway_session(&chain, &slice).await?;
    let (direct, _) = direct_session(&chain, &slice).await?;
    let ssh = ssh_session(&chain, &slice, Some(measured_pace()))
        .await?
        .map(|(cost, _)| cost);
    let tls = tls_session(&chain, &slice, Some(measured_pace())).await?;
    let (bps, rtt) = (rate as f64 * 8.0, 2.0 * delay_ms as f64 / 1e3);
    let mut alts = vec![
        ("direct", direct.seconds),
        (
            "causeway_model",
            model_seconds(cw.bytes(), cw.turns, bps, rtt),
        ),
        (
            "direct_model",
            model_seconds(direct.bytes(), direct.turns, bps, rtt),
        ),
    ];
    if let Some(s) = &ssh {
        alts.push(("ssh_c", s.seconds));
        alts.push(("ssh_c_model", model_seconds(s.bytes(), s.turns, bps, rtt)));
    }
    alts.push(("tls_forward", tls.seconds));
    Ok(Figure::new(&format!("time_measured_{name}"), "s", cw.seconds, alts)
    .note(format!(
        "{} messages ({} bytes) through a line emulator: {} kbit/s each way, {} ms round trip, a serialising queue; wall time from connect to QUIT's answer (ssh -C: from starting ssh); causeway {} bytes {} waits, direct {} bytes {} turns{}, TLS forward {} bytes {} turns",
        slice.len(),
        mail::total(&slice),
        bps / 1e3,
        2 * delay_ms,
        cw.bytes(),
        cw.turns,
        direct.bytes(),
        direct.turns,
        ssh.map(|s| format!(", ssh -C {} bytes {} turns", s.bytes(), s.turns))
            .unwrap_or_default(),
        tls.bytes(),
        tls.turns
    )))
}
