//! The same generic node code runs over real sockets and over turmoil.

use std::time::Duration;

use causeway_net::{Env, Listener, SimEnv, TokioEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny generic echo server: reads one line-less chunk, writes it back upper-cased.
async fn serve_once<E: Env>(mut l: E::Listener) -> std::io::Result<()> {
    let (mut s, _) = l.accept().await?;
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await?;
    buf.make_ascii_uppercase();
    s.write_all(&buf).await?;
    Ok(())
}

async fn ask<E: Env>(env: &E, addr: &str) -> std::io::Result<Vec<u8>> {
    let mut s = env
        .timeout(Duration::from_secs(5), "connect", env.connect(addr))
        .await??;
    s.write_all(b"hello").await?;
    let mut buf = [0u8; 5];
    env.timeout(Duration::from_secs(5), "echo", s.read_exact(&mut buf))
        .await??;
    Ok(buf.to_vec())
}

#[tokio::test]
async fn tokio_loopback() {
    let env = TokioEnv::new();
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let server = tokio::spawn(serve_once::<TokioEnv>(l));
    assert_eq!(ask(&env, &addr).await.unwrap(), b"HELLO");
    server.await.unwrap().unwrap();
}

#[test]
fn turmoil_sim() {
    let mut sim = turmoil::Builder::new().build();
    sim.host("server", || async {
        let env = SimEnv::new(1, "server", 0);
        let l = env.bind("0.0.0.0:9000").await?;
        serve_once::<SimEnv>(l).await?;
        Ok(())
    });
    sim.client("client", async {
        let env = SimEnv::new(1, "client", 0);
        assert_eq!(ask(&env, "server:9000").await?, b"HELLO");
        Ok(())
    });
    sim.run().unwrap();
}

#[test]
fn timeout_names_what_it_waited_for() {
    let mut sim = turmoil::Builder::new().build();
    sim.client("client", async {
        let env = SimEnv::new(1, "client", 0);
        let err = env
            .timeout(
                Duration::from_millis(50),
                "the mail server's greeting",
                std::future::pending::<()>(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(
            err.to_string().contains("the mail server's greeting"),
            "{err}"
        );
        Ok(())
    });
    sim.run().unwrap();
}

#[test]
fn sim_clock_and_rng_are_deterministic() {
    fn run() -> (u64, u64) {
        let mut sim = turmoil::Builder::new().build();
        let out = std::rc::Rc::new(std::cell::Cell::new((0, 0)));
        let o = out.clone();
        sim.client("c", async move {
            let env = SimEnv::new(42, "c", 0);
            env.sleep(Duration::from_millis(1234)).await;
            o.set((env.unix_millis(), env.rng().next_u64()));
            Ok(())
        });
        sim.run().unwrap();
        out.get()
    }
    let a = run();
    assert_eq!(a, run());
    assert_eq!(a.0, 1_767_225_600_000 + 1234);
}
