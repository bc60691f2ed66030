//! `causeway check-config FILE...`: every problem of every file, with line
//! numbers; given several files, whether they fit together.

use std::path::PathBuf;

use causeway_proto::user::{Route, TlsMode};

use crate::config::{self, Settings};

/// Checks `files`, printing a verdict per file on stdout and problems on
/// stderr; the exit code (0: all valid and consistent).
pub fn check(files: &[PathBuf]) -> i32 {
    let mut loaded = Vec::new();
    let mut bad = false;
    for f in files {
        match config::load(f) {
            Ok(s) => {
                println!(
                    "{}: ok ({}; public key {})",
                    f.display(),
                    s.role(),
                    public_key(&s)
                );
                for w in warnings(&s) {
                    eprintln!("{}: warning: {w}", f.display());
                }
                loaded.push((f.clone(), s));
            }
            Err(p) => {
                eprintln!("{p}");
                eprintln!("{}: {} problem(s)", f.display(), p.list.len());
                bad = true;
            }
        }
    }
    let mismatches = cross_check(&loaded);
    for m in &mismatches {
        eprintln!("{m}");
    }
    if bad || !mismatches.is_empty() { 1 } else { 0 }
}

/// What is valid but deserves a second look: a password sent in clear text
/// to a server that is not on this machine; a metrics endpoint (which has
/// no authentication) open beyond this machine.
pub fn warnings(s: &Settings) -> Vec<String> {
    let metrics = match s {
        Settings::Edge(e) => e.metrics_listen.as_deref(),
        Settings::Relay(r) => r.metrics_listen.as_deref(),
        Settings::Client(_) => None,
    };
    let open_metrics = metrics
        .filter(|m| {
            !m.parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
        })
        .map(|m| {
            format!(
                "metrics_listen {m:?} is not a loopback address: anyone who reaches it reads this \
                 node's counts (no users, keys or mail); keep it on a management network or \
                 firewall it to your Prometheus"
            )
        });
    let Settings::Client(c) = s else {
        return open_metrics.into_iter().collect();
    };
    c.config
        .servers
        .iter()
        .filter(|m| m.tls == TlsMode::None && !is_loopback(&m.host))
        .map(|m| {
            format!(
                "server {:?}: tls = \"none\" sends the password to {} in clear text; unless the \
                 path to it is trusted (a relay beside the server), use \"starttls\" or \"implicit\"",
                m.name,
                m.address()
            )
        })
        .collect()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

fn public_key(s: &Settings) -> String {
    match s {
        Settings::Edge(e) => e.config.keypair.public.to_string(),
        Settings::Relay(r) => r.config.keypair.public.to_string(),
        Settings::Client(c) => c.config.keypair.public.to_string(),
    }
}

/// What does not fit between the files given together: a client and its
/// edge, an edge and its relays.
pub fn cross_check(loaded: &[(PathBuf, Settings)]) -> Vec<String> {
    let mut out = Vec::new();
    let edges: Vec<_> = loaded
        .iter()
        .filter_map(|(p, s)| match s {
            Settings::Edge(e) => Some((p, e)),
            _ => None,
        })
        .collect();
    let relays: Vec<_> = loaded
        .iter()
        .filter_map(|(p, s)| match s {
            Settings::Relay(r) => Some((p, r)),
            _ => None,
        })
        .collect();
    for (cp, s) in loaded {
        let Settings::Client(c) = s else { continue };
        let c = &c.config;
        let cp = cp.display();
        for (ep, e) in &edges {
            let ep = ep.display();
            let e = &e.config;
            if c.edge_key != e.keypair.public {
                out.push(format!(
                    "{cp}: edge_public_key is not the key of {ep} ({})",
                    e.keypair.public
                ));
                continue;
            }
            if !e.allowed_clients.contains(&c.keypair.public) {
                out.push(format!(
                    "{ep}: allowed_clients lacks the client key of {cp} ({})",
                    c.keypair.public
                ));
            }
            if c.psk.is_some() != e.psk.is_some() || (c.psk.is_some() && c.psk != e.psk) {
                out.push(format!("{cp} and {ep} do not have the same psk"));
            }
            for srv in &c.servers {
                match &srv.route {
                    Route::Direct => {
                        if !e.allowed_servers.contains(&srv.address()) {
                            out.push(format!(
                                "{cp}: server {:?} ({}) is reached directly, but {ep}'s allowed_servers does not list it",
                                srv.name,
                                srv.address()
                            ));
                        }
                    }
                    Route::Relay(name) => match e.relays.iter().find(|r| &r.name == name) {
                        None => out.push(format!(
                            "{cp}: server {:?} names relay {name:?}, which {ep} does not define (its relays: {})",
                            srv.name,
                            e.relays.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
                        )),
                        Some(r) => {
                            for (rp, rs) in &relays {
                                if rs.config.keypair.public != r.public_key {
                                    continue;
                                }
                                if !rs.config.allowed_servers.contains(&srv.address()) {
                                    out.push(format!(
                                        "{cp}: server {:?} ({}) goes through relay {name:?}, but {}'s allowed_servers does not list it",
                                        srv.name,
                                        srv.address(),
                                        rp.display()
                                    ));
                                }
                            }
                        }
                    },
                }
            }
        }
    }
    for (ep, e) in &edges {
        for r in &e.config.relays {
            for (rp, rs) in &relays {
                if rs.config.keypair.public == r.public_key
                    && !rs.config.allowed_edges.contains(&e.config.keypair.public)
                {
                    out.push(format!(
                        "{}: allowed_edges lacks the key of {} ({}), which uses it as relay {:?}",
                        rp.display(),
                        ep.display(),
                        e.config.keypair.public,
                        r.name
                    ));
                }
            }
        }
    }
    out
}
