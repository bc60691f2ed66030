//! The same seed gives the same run: UIDLs, faults, and the whole report.

mod common;

use std::time::Duration;

use causeway_mailserver::{Faults, ServerConfig, generate};
use causeway_net::{Env, EnvRng, derive_seed};
use common::{Conn, MAIL, client_env, sim_with_server, store};

/// A busy run: generated mail, random faults, several sessions, some
/// deliveries mid-session. Returns the UIDLs and the report.
fn run(seed: u64) -> (Vec<String>, String) {
    let st = store(seed);
    let rng = EnvRng::from_seed(derive_seed(seed, &[b"mail"]));
    for i in 0..5 {
        st.deliver("alice", generate::message(&rng, i, 3000))
            .unwrap();
    }
    let config = ServerConfig {
        faults: Faults {
            reply_delay_min: Duration::from_millis(5),
            reply_delay_max: Duration::from_millis(200),
            drop_mid_response_probability: 0.1,
            ..Faults::default()
        },
        ..ServerConfig::default()
    };
    let mut sim = sim_with_server(seed, &st, config);
    let s = st.clone();
    sim.client("c", async move {
        let env = client_env(seed, "c");
        for round in 0..6u64 {
            let Ok((mut c, _)) = Conn::open(&env, MAIL).await else {
                continue;
            };
            let _ = async {
                c.login("alice", "secret").await?;
                s.deliver_at(
                    "alice",
                    generate::message(env.rng(), 100 + round, 2000),
                    env.unix_millis(),
                )
                .unwrap();
                c.multi("RETR 1").await?;
                c.cmd("DELE 1").await?;
                c.cmd("QUIT").await?;
                std::io::Result::Ok(())
            }
            .await;
        }
        Ok(())
    });
    sim.run().unwrap();
    let uidls = st
        .messages("alice")
        .into_iter()
        .map(|m| m.uidl.to_string())
        .collect();
    (uidls, st.report())
}

#[test]
fn same_seed_same_uidls_and_report() {
    let (u1, r1) = run(42);
    let (u2, r2) = run(42);
    assert_eq!(u1, u2);
    assert_eq!(r1, r2);
    assert!(r1.contains("quit"), "{r1}");
    let (u3, _) = run(43);
    assert_ne!(u1, u3, "another seed should draw another UIDVALIDITY");
}
