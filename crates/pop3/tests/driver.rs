//! The async client driver against scripted fake servers: under turmoil
//! (simulated time, so timeouts are exact and fast) and over
//! `tokio::io::duplex` with the real `TokioEnv`.

use std::time::Duration;

use causeway_net::script::{Step, serve_script};
use causeway_net::{Env, Listener, SimEnv, TokioEnv};
use causeway_pop3::client::{ClientError, Pop3Client, Timeouts};
use causeway_pop3::{Command, RespCode, Status};

use Step::*;

const TIMEOUTS: Timeouts = Timeouts {
    greeting: Duration::from_secs(5),
    command: Duration::from_secs(10),
};

/// Runs `client` against a turmoil host that plays `script` once.
fn sim<F, Fut>(script: Vec<Step>, max_message: usize, client: F)
where
    F: FnOnce(
            Result<
                (
                    Pop3Client<SimEnv, <SimEnv as Env>::Stream>,
                    causeway_pop3::StatusLine,
                ),
                ClientError,
            >,
        ) -> Fut
        + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(3600))
        .build();
    sim.host("pop", move || {
        let script = script.clone();
        async move {
            let env = SimEnv::new(7, "pop", 0);
            let mut l = env.bind("0.0.0.0:110").await?;
            let (s, _) = l.accept().await?;
            serve_script(s, &script).await?;
            Ok(())
        }
    });
    sim.client("client", async move {
        let env = SimEnv::new(7, "client", 0);
        let stream = env.connect("pop:110").await?;
        client(Pop3Client::start(env, stream, TIMEOUTS, max_message).await).await;
        Ok(())
    });
    sim.run().unwrap();
}

#[test]
fn a_whole_session() {
    let script = vec![
        Send(b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
        Expect("CAPA"),
        Send(b"+OK\r\nTOP\r\nUIDL\r\n.\r\n"),
        Expect("USER alice"),
        Send(b"+OK\r\n"),
        Expect("PASS s3cret word"),
        Send(b"+OK Logged in.\r\n"),
        Expect("STAT"),
        Send(b"+OK 2 320\r\n"),
        Expect("LIST"),
        Send(b"+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"),
        Expect("UIDL"),
        Send(b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"),
        Expect("LIST 2"),
        Send(b"+OK 2 200\r\n"),
        Expect("UIDL 2"),
        Send(b"+OK 2 QhdPYR:00WBw1Ph7x7\r\n"),
        Expect("RETR 1"),
        Send(b"+OK 120 octets\r\nSubject: x\r\n\r\n..dot\r\n.\r\n"),
        Expect("TOP 1 0"),
        Send(b"+OK\r\nSubject: x\r\n\r\n.\r\n"),
        Expect("DELE 1"),
        Send(b"+OK\r\n"),
        Expect("RSET"),
        Send(b"+OK\r\n"),
        Expect("NOOP"),
        Send(b"+OK\r\n"),
        Expect("DELE 9"),
        Send(b"-ERR no such message\r\n"),
        Expect("QUIT"),
        Send(b"+OK bye\r\n"),
        Close,
    ];
    sim(script, 1 << 20, |r| async move {
        let (mut c, greeting) = r.unwrap();
        assert_eq!(
            greeting.text,
            b"POP3 ready <1896.697170952@dbc.mtview.ca.us>"
        );
        assert_eq!(
            c.capa().await.unwrap(),
            vec![b"TOP".to_vec(), b"UIDL".to_vec()]
        );
        c.login(b"alice", b"s3cret word").await.unwrap();
        assert_eq!(c.stat().await.unwrap(), (2, 320));
        assert_eq!(c.list().await.unwrap(), vec![(1, 120), (2, 200)]);
        let uidl = c.uidl().await.unwrap();
        assert_eq!(uidl[1], (2, "QhdPYR:00WBw1Ph7x7".to_string()));
        assert_eq!(c.list_one(2).await.unwrap(), (2, 200));
        assert_eq!(c.uidl_one(2).await.unwrap(), uidl[1]);
        assert_eq!(c.retr(1).await.unwrap(), b"Subject: x\r\n\r\n.dot\r\n");
        assert_eq!(c.top(1, 0).await.unwrap(), b"Subject: x\r\n\r\n");
        c.dele(1).await.unwrap();
        c.rset().await.unwrap();
        c.noop().await.unwrap();
        match c.dele(9).await {
            Err(ClientError::Refused(s)) => assert_eq!(s.text, b"no such message"),
            other => panic!("{other:?}"),
        }
        // A refusal is not a broken connection.
        assert_eq!(c.quit().await.unwrap().text, b"bye");
    });
}

#[test]
fn pipelined_commands() {
    let script = vec![
        Send(b"+OK hi\r\n"),
        Expect("STAT"),
        Expect("RETR 1"),
        Expect("RETR 2"),
        Expect("NOOP"),
        Send(b"+OK 2 20\r\n+OK\r\none\r\n.\r\n-ERR [SYS/TEMP] later\r\n"),
        Sleep(50),
        Send(b"+OK\r\n"),
    ];
    sim(script, 1000, |r| async move {
        let (mut c, _) = r.unwrap();
        let cmds = [
            Command::Stat,
            Command::Retr(1),
            Command::Retr(2),
            Command::Noop,
        ];
        let r = c.pipeline(&cmds).await.unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].status.text, b"2 20");
        assert_eq!(r[1].body.as_deref(), Some(&b"one\r\n"[..]));
        assert_eq!(r[2].status.code, Some(RespCode::SysTemp));
        assert!(r[3].status.is_ok());
    });
}

#[test]
fn refused_login_keeps_the_response_code() {
    let script = vec![
        Send(b"+OK hi\r\n"),
        Expect("USER bob"),
        Send(b"+OK\r\n"),
        Expect("PASS pw"),
        Send(b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"),
    ];
    sim(script, 1000, |r| async move {
        let (mut c, _) = r.unwrap();
        let e = c.login(b"bob", b"pw").await.unwrap_err();
        assert!(e.is_transient());
        match e {
            ClientError::Refused(s) => {
                assert_eq!(s.status, Status::Err);
                assert_eq!(s.code, Some(RespCode::InUse));
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn silent_server_times_out_on_the_greeting() {
    sim(vec![Sleep(3_600_000)], 1000, |r| async move {
        match r {
            Err(ClientError::Timeout { what, after }) => {
                assert_eq!(what, "the POP3 greeting");
                assert_eq!(after, TIMEOUTS.greeting);
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn silent_server_times_out_on_a_command_and_the_client_is_then_broken() {
    let script = vec![Send(b"+OK hi\r\n"), Expect("STAT"), Sleep(3_600_000)];
    sim(script, 1000, |r| async move {
        let (mut c, _) = r.unwrap();
        let e = c.stat().await.unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Timeout {
                    what: "the reply to STAT",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("the reply to STAT"), "{e}");
        assert!(matches!(c.noop().await, Err(ClientError::Broken)));
    });
}

#[test]
fn a_trickling_body_arrives_however_long_it_takes() {
    // One byte every 5 s: 200 bytes take 1,000 s, a hundred times the 10 s
    // `command` bound, but something arrives within every 10 s.
    let script = vec![
        Send(b"+OK hi\r\n"),
        Expect("RETR 1"),
        Send(b"+OK\r\n"),
        Stream {
            byte: b'a',
            n: 200,
            chunk: 1,
            delay_ms: 5_000,
        },
        Send(b"\r\n.\r\n"),
    ];
    sim(script, 1 << 20, |r| async move {
        let (mut c, _) = r.unwrap();
        let clock = SimEnv::new(7, "clock", 0);
        let t0 = clock.now();
        let body = c.retr(1).await.unwrap();
        assert_eq!(body.len(), 202);
        assert!(clock.now() - t0 > Duration::from_secs(900));
    });
}

#[test]
fn a_big_body_on_a_slow_line_arrives() {
    // 3 MiB in 48 writes 5 s apart: 240 s, far past the 10 s `command`
    // bound, which only ever applies to a silence.
    let script = vec![
        Send(b"+OK hi\r\n"),
        Expect("RETR 1"),
        Send(b"+OK\r\n"),
        Stream {
            byte: b'b',
            n: 3 << 20,
            chunk: 64 << 10,
            delay_ms: 5_000,
        },
        Send(b"\r\n.\r\n"),
    ];
    sim(script, 8 << 20, |r| async move {
        let (mut c, _) = r.unwrap();
        let body = c.retr(1).await;
        assert_eq!(body.unwrap().len(), (3 << 20) + 2);
    });
}

#[test]
fn a_body_that_stops_times_out() {
    // Half a body, then silence: the reply fails `command` after the last
    // byte, not after a budget for its size.
    let script = vec![
        Send(b"+OK hi\r\n"),
        Expect("RETR 1"),
        Send(b"+OK\r\n"),
        Stream {
            byte: b'c',
            n: 4096,
            chunk: 1024,
            delay_ms: 3_000,
        },
        Sleep(600_000),
    ];
    sim(script, 1 << 20, |r| async move {
        let (mut c, _) = r.unwrap();
        let e = c.retr(1).await.unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Timeout {
                    what: "the reply to RETR",
                    ..
                }
            ),
            "{e}"
        );
    });
}

#[test]
fn eof_mid_body_is_an_error() {
    let script = vec![
        Send(b"+OK hi\r\n"),
        Expect("RETR 1"),
        Send(b"+OK\r\nSubject: half\r\n\r\nand then"),
        Close,
    ];
    sim(script, 1000, |r| async move {
        let (mut c, _) = r.unwrap();
        match c.retr(1).await {
            Err(ClientError::Eof { during }) => assert_eq!(during, "the reply to RETR"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn eof_before_the_greeting_is_an_error() {
    sim(vec![Close], 1000, |r| async move {
        assert!(
            matches!(
                r,
                Err(ClientError::Eof {
                    during: "the POP3 greeting"
                })
            ),
            "{r:?}"
        );
    });
}

#[test]
fn err_greeting_is_refused() {
    sim(
        vec![Send(b"-ERR [SYS/TEMP] maintenance\r\n")],
        1000,
        |r| async move {
            match r {
                Err(ClientError::Refused(s)) => assert_eq!(s.code, Some(RespCode::SysTemp)),
                other => panic!("{other:?}"),
            }
        },
    );
}

#[test]
fn garbage_greeting_is_a_protocol_error() {
    sim(
        vec![Send(b"* OK IMAP4rev1 ready\r\n")],
        1000,
        |r| async move {
            assert!(matches!(r, Err(ClientError::Protocol(_))), "{r:?}");
        },
    );
}

#[test]
fn oversized_body_fails_without_buffering_it() {
    // The server would send 64 MiB and never terminate; the client gives up
    // after the first 4 KiB or so and never holds more than its cap.
    let script = vec![
        Send(b"+OK hi\r\n"),
        Expect("RETR 1"),
        Send(b"+OK\r\n"),
        Stream {
            byte: b'z',
            n: 64 << 20,
            chunk: 16 << 10,
            delay_ms: 1,
        },
    ];
    sim(script, 4096, |r| async move {
        let (mut c, _) = r.unwrap();
        match c.retr(1).await {
            Err(ClientError::MessageTooLarge { max }) => assert_eq!(max, 4096),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn endless_status_line_is_refused() {
    let script = vec![Stream {
        byte: b'+',
        n: 1 << 20,
        chunk: 1000,
        delay_ms: 1,
    }];
    sim(script, 4096, |r| async move {
        assert!(matches!(r, Err(ClientError::LineTooLong)), "{r:?}");
    });
}

/// The same driver over an in-memory duplex pipe with the production env.
#[tokio::test]
async fn works_over_tokio_duplex_with_tokio_env() {
    let (client, server) = tokio::io::duplex(64);
    let script = vec![
        Send(b"+OK ready\r\n"),
        Expect("USER u"),
        Send(b"+OK\r\n"),
        Expect("PASS p"),
        Send(b"+OK\r\n"),
        Expect("RETR 1"),
        Send(b"+OK\r\n"),
        Send(b"line one\r\n...two\r\n.\r\n"),
        Expect("QUIT"),
        Send(b"+OK\r\n"),
        Close,
    ];
    let srv = tokio::spawn(async move { serve_script(server, &script).await });
    let (mut c, _) = Pop3Client::start(TokioEnv::new(), client, TIMEOUTS, 1000)
        .await
        .unwrap();
    c.login(b"u", b"p").await.unwrap();
    assert_eq!(c.retr(1).await.unwrap(), b"line one\r\n..two\r\n");
    assert!(c.quit().await.unwrap().is_ok());
    srv.await.unwrap().unwrap();
}

#[tokio::test]
async fn duplex_eof_mid_body() {
    let (client, server) = tokio::io::duplex(64);
    let script = vec![
        Send(b"+OK ready\r\n"),
        Expect("TOP 1 5"),
        Send(b"+OK\r\nSubject: x\r\n"),
        Close,
    ];
    let srv = tokio::spawn(async move { serve_script(server, &script).await });
    let (mut c, _) = Pop3Client::start(TokioEnv::new(), client, TIMEOUTS, 1000)
        .await
        .unwrap();
    assert!(matches!(
        c.top(1, 5).await,
        Err(ClientError::Eof {
            during: "the reply to TOP"
        })
    ));
    srv.await.unwrap().unwrap();
}
