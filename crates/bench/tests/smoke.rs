//! Every figure on a tiny generated mailbox, in the debug profile: the
//! benchmark runs end to end and its numbers are sane. (The figures
//! themselves are for the release build; see docs/performance.md.)

use std::path::PathBuf;

use causeway_bench::{Figure, Options, run};

const MESSAGES: usize = 6;
const SESSIONS: usize = 20;

fn get<'a>(figures: &'a [Figure], name: &str) -> &'a Figure {
    figures
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no figure {name} in {figures:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_runs_on_a_tiny_mailbox() {
    let mut opts = Options::new(PathBuf::from(env!("CARGO_BIN_EXE_causeway-bench")));
    opts.messages = MESSAGES;
    opts.message_size = 2000;
    opts.dict_size = 4096;
    opts.cpu_mb = 0.05;
    opts.sessions = SESSIONS;
    opts.active = 5;
    opts.iterations = 20;
    opts.load_sessions = 4;
    opts.load_seconds = 3;
    let figures = run(&opts).await.expect("the benchmark runs");

    for f in &figures {
        assert!(
            f.causeway.is_finite() && f.causeway >= 0.0,
            "{}: {}",
            f.name,
            f.causeway
        );
        for (n, v) in &f.alternatives {
            assert!(v.is_finite() && *v >= 0.0, "{} / {n}: {v}", f.name);
        }
        let json = f.to_json();
        assert!(
            json.starts_with(&format!("{{\"name\":\"{}\"", f.name)) && json.contains("\"ratio\":"),
            "{json}"
        );
    }

    // 1: Causeway compresses; the dictionary is pinned and used.
    let bytes = get(&figures, "line_bytes");
    assert!(bytes.causeway > 0.0);
    let ratio = bytes.ratio.unwrap();
    assert!(ratio > 0.0 && ratio < 1.5, "bytes ratio {ratio}");
    assert!(get(&figures, "line_bytes_dict").causeway > 0.0);
    assert!(get(&figures, "mail_shrink").causeway > 1.0);

    // 2: direct POP3 is 2n+6 turns (greeting, USER, PASS, STAT, UIDL, 2n,
    // QUIT). The client proxy answers USER, PASS, STAT and UIDL locally,
    // RETR from the bodies streamed ahead (waiting for the stream, not for a
    // turn) and DELE from its delete journal; it waits for the Noise
    // handshake, Hello/Welcome and QUIT: 3, plus a request for a body the
    // stream did not bring within its quiet time (never on loopback, but
    // allowed for a loaded machine).
    let n = MESSAGES as f64;
    let turns = get(&figures, "round_trips");
    assert_eq!(turns.alternative("direct"), Some(2.0 * n + 6.0));
    assert!((3.0..=n + 3.0).contains(&turns.causeway), "{turns:?}");

    // 3: times follow from 1 and 2; the line emulator measured both paths.
    for p in ["time_gprs", "time_3g", "time_satellite", "time_measured_3g"] {
        let f = get(&figures, p);
        assert!(f.causeway > 0.0 && f.alternative("direct").unwrap() > 0.0);
    }

    // 4: CPU was used and measured on every node.
    for c in [
        "cpu_edge",
        "cpu_relay",
        "cpu_proxy",
        "cpu_process",
        "throughput_wall",
    ] {
        let f = get(&figures, c);
        assert!(f.causeway > 0.0 && f.alternatives[0].1 > 0.0, "{f:?}");
    }

    // 1-4 beside `ssh -C -L` (OpenSSH on loopback; under CI=true it must
    // be installed): the tunnel carried the same download and was measured.
    let alt = |figure: &str, name: &str| {
        let f = get(&figures, figure);
        let v = f
            .alternative(name)
            .unwrap_or_else(|| panic!("no {name} in {f:?}"));
        assert!(v > 0.0, "{f:?}");
        v
    };
    if causeway_bench::ssh::available() {
        let ssh = |figure: &str| alt(figure, "ssh_c");
        ssh("line_bytes");
        // POP3 through a tunnel is as lock-step as direct POP3, plus the
        // ssh handshake and login.
        assert!(ssh("round_trips") >= 2.0 * n + 6.0);
        ssh("time_measured_3g");
        ssh("time_gprs");
        ssh("throughput_wall");
        alt("cpu_edge", "sshd");
        alt("cpu_proxy", "ssh_client");
    }

    // ... and beside a stunnel-style TLS forward (in process, always): TLS
    // adds bytes to direct POP3 and one round trip (TLS 1.3).
    let tls = |figure: &str| alt(figure, "tls_forward");
    assert!(tls("line_bytes") > alt("line_bytes", "direct"));
    assert!(tls("round_trips") >= 2.0 * n + 7.0);
    tls("time_measured_3g");
    tls("throughput_wall");
    alt("cpu_edge", "tls_forward_server_end");
    alt("cpu_proxy", "tls_forward_client_end");

    // 5: every session held, none failed, on both paths.
    let held = get(&figures, "sessions_held");
    assert_eq!(held.causeway, SESSIONS as f64, "{held:?}");
    assert_eq!(held.alternative("errors"), Some(0.0), "{held:?}");
    assert_eq!(held.alternative("plain_forward_errors"), Some(0.0));
    assert!(get(&figures, "mem_idle_session").causeway > 0.0);
    assert!(get(&figures, "session_open_rate").causeway > 0.0);

    // 6: latencies measured.
    for l in ["latency_stat_p50", "latency_retr4k_p99"] {
        let f = get(&figures, l);
        assert!(f.causeway > 0.0 && f.alternative("direct").unwrap() > 0.0);
    }

    // 7: the folder synced over IMAP (every body checked, the expunge
    // committed on the server, or the figure is an error). Direct IMAP
    // pipelined waits 7 times, lock-step n+7; the client proxy's IMAP front
    // answers from its mirror, so its waits on the line do not grow with
    // the style: the handshake, Hello/Welcome and QUIT, plus a request for
    // a body the stream did not bring (as in 2).
    let turns = get(&figures, "imap_round_trips");
    assert_eq!(turns.alternative("direct"), Some(7.0), "{turns:?}");
    assert_eq!(turns.alternative("direct_lockstep"), Some(n + 7.0));
    for t in [
        turns.causeway,
        turns.alternative("causeway_lockstep").unwrap(),
    ] {
        assert!((3.0..=n + 3.0).contains(&t), "{turns:?}");
    }
    let bytes = get(&figures, "imap_line_bytes");
    let deflated = bytes.alternative("direct+compress_deflate").unwrap();
    assert!(bytes.causeway > 0.0 && deflated > 0.0, "{bytes:?}");
    assert!(deflated < bytes.alternative("direct").unwrap(), "{bytes:?}");
    assert!(get(&figures, "imap_time_gprs").causeway > 0.0);

    // 8: the load run: sessions done, no error before the SIGTERM, nothing
    // lost, every acknowledged delete done, every server session QUIT, and
    // the edge shut down cleanly (judged from the model server's record).
    assert!(get(&figures, "load_sessions").causeway > 0.0);
    for zero in [
        "load_errors",
        "load_lost",
        "load_deletes_not_done",
        "load_server_sessions_without_quit",
    ] {
        let f = get(&figures, zero);
        assert_eq!(f.causeway, 0.0, "{f:?}");
    }
    let shutdown = get(&figures, "load_shutdown");
    assert_eq!(shutdown.alternative("exit_code"), Some(0.0), "{shutdown:?}");
}
