//! The edge reading an IMAP server's INBOX as a POP3 maildrop
//! (`protocol = "imap"`), in the turmoil world against the model server's
//! IMAP side, judged on the model's record: the listing is the server's,
//! a fetch never marks read (the model marks on a non-peek `BODY[]`), read
//! marks and deletes reach the server only after `Delivered` and QUIT, an
//! RSET undoes, an acknowledged delete survives the client vanishing
//! (directly and through the relay), and every IMAP session ends with
//! LOGOUT.

use std::time::Duration;

use causeway_mailserver::ServerConfig;
use causeway_net::Env;
use causeway_proto::session::{ListingState, Op, Reply};
use causeway_proto::user::{Route, ServerSpec};
use causeway_tests::edge_world::*;

fn direct() -> ServerSpec {
    alice_imap(Route::Direct)
}

fn via_relay() -> ServerSpec {
    alice_imap(Route::Relay("R1".into()))
}

#[test]
fn reads_and_deletes_reach_the_imap_server_only_after_delivery_and_quit() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let l = c.welcome(vec![direct()]).await;
        let ListingState::Ready { messages } = &l[0].state else {
            panic!("{l:?}")
        };
        let want: Vec<_> = mail
            .messages("alice")
            .into_iter()
            .map(|m| (m.uidl.as_str().to_owned(), m.size as u64))
            .collect();
        let got: Vec<_> = messages.iter().map(|m| (m.uidl.clone(), m.size)).collect();
        assert_eq!(got, want, "Dovecot's UIDLs and the sizes, over IMAP");
        let u = uidls(&l[0]);
        let (id, body) = c.retr("HOST1", &u[0]).await;
        assert_eq!(body, mail.body("alice", &u[0]).unwrap());
        let (_, top) = c
            .request(
                "HOST1",
                Op::Top {
                    msg: c.msg("HOST1", &u[2]),
                    lines: 0,
                },
            )
            .await;
        assert!(matches!(top, Ok(Reply::Body(_))), "{top:?}");
        c.dele("HOST1", &u[1]).await;
        assert!(
            !mail.is_seen("alice", &u[0]),
            "marked before Delivered\n{}",
            mail.report()
        );
        c.delivered(id).await;
        assert!(mail.is_present("alice", &u[1]), "deleted before QUIT");
        let bye = c.quit().await;
        assert_eq!(bye[0].result, Ok(()));
        assert!(mail.is_seen("alice", &u[0]), "{}", mail.report());
        assert!(!mail.is_present("alice", &u[1]));
        assert!(!mail.is_seen("alice", &u[2]) && mail.is_present("alice", &u[2]));
        wait_until(&c.env, Duration::from_secs(10), "session end", || {
            edge.live_sessions() == 0
        })
        .await;
        all_quit_no_locks(&mail, c.env.unix_millis());
        assert_eq!(edge.pending_work(), 0);
        assert_eq!(edge.live_replicas(), 0);
        // Over IMAP, as the model's own log says.
        let commands: Vec<String> = mail
            .sessions()
            .into_iter()
            .flat_map(|s| s.commands)
            .collect();
        for c in ["SELECT", "UID FETCH", "UID STORE", "UID EXPUNGE", "LOGOUT"] {
            assert!(commands.iter().any(|x| x == c), "no {c} in {commands:?}");
        }
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn rset_undoes_and_a_cut_before_delivery_leaves_the_message_unread() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![direct()]).await[0]);
        c.dele("HOST1", &u[0]).await;
        let (_, rset) = c.request("HOST1", Op::Rset).await;
        assert_eq!(rset, Ok(Reply::Done));
        let _ = c.retr("HOST1", &u[1]).await;
        // The line goes silent: no Delivered, no Quit.
        turmoil::partition("client", "edge");
        wait_until(
            &c.env,
            Duration::from_secs(120),
            "the edge to see the cut",
            || edge.live_sessions() == 0 && edge.pending_work() == 0,
        )
        .await;
        for m in &u {
            assert!(mail.is_present("alice", m), "{}", mail.report());
            assert!(!mail.is_seen("alice", m), "{}", mail.report());
        }
        all_quit_no_locks(&mail, c.env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn an_acknowledged_delete_survives_the_client_vanishing() {
    delete_survives_the_client_vanishing(direct);
    delete_survives_the_client_vanishing(via_relay);
}

/// Two entries of one session read two folders of one account: INBOX
/// and `Archive`. Each lists its own folder's messages, a read mark and a
/// delete change exactly the folder's message named, and INBOX ends as it
/// began. An entry naming a folder the server does not have is a
/// permanent error that says so and names the folders there are, and its
/// session still ends with LOGOUT.
#[test]
fn an_entry_reads_the_folder_it_names_and_nothing_else() {
    use causeway_proto::ErrCode;
    let mut w = world(ServerConfig::default());
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    let archive = mail.add_folder("alice", "Archive");
    for i in 0..2 {
        mail.deliver(&archive, format!("Subject: filed {i}\r\n\r\nkept\r\n"))
            .unwrap();
    }
    let folder = |name: &str, folder: &str| ServerSpec {
        name: name.into(),
        folder: folder.into(),
        ..direct()
    };
    w.sim.client("client", async move {
        let inbox_before = mail.messages("alice");
        let mut c = Client::connect(&k, &ek).await?;
        let l = c
            .welcome(vec![
                direct(),
                folder("ARCH", "Archive"),
                folder("NOPE", "Nope"),
            ])
            .await;
        let listed = |i: usize| -> Vec<String> { uidls(&l[i]) };
        let held = |maildrop: &str| -> Vec<String> {
            mail.messages(maildrop)
                .into_iter()
                .map(|m| m.uidl.as_str().to_owned())
                .collect()
        };
        assert_eq!(listed(0), held("alice"));
        assert_eq!(listed(1), held(&archive));
        let ListingState::Unavailable { error } = &l[2].state else {
            panic!("a folder that does not exist listed: {l:?}")
        };
        assert_eq!(error.code, Some(ErrCode::SysPerm), "{error:?}");
        assert!(error.text.contains("NONEXISTENT"), "{error:?}");
        assert!(
            error
                .text
                .ends_with("the server's folders: \"Archive\", \"INBOX\" (the entry's `folder` must be one of them)"),
            "the folders there are: {error:?}"
        );
        let u = listed(1);
        let (id, body) = c.retr("ARCH", &u[0]).await;
        assert_eq!(body, mail.body(&archive, &u[0]).unwrap());
        c.dele("ARCH", &u[1]).await;
        c.delivered(id).await;
        let _ = c.quit().await;
        assert!(mail.is_seen(&archive, &u[0]), "{}", mail.report());
        assert!(!mail.is_present(&archive, &u[1]), "{}", mail.report());
        assert_eq!(mail.messages("alice"), inbox_before, "INBOX untouched");
        sessions_end_with_quit(&c.env, &mail).await;
        Ok(())
    });
    w.sim.run().unwrap();
}

/// The edge logs in as each kind of server lets it: `AUTHENTICATE PLAIN`
/// (with SASL-IR where offered, after a continuation request where not)
/// or `LOGIN`; a server with `LOGINDISABLED` and no `AUTH=PLAIN` gets no
/// password at all. Judged on the model server's command log. A refused
/// password is `[AUTH]` (the mail client's "wrong password"), whichever
/// way it went.
#[test]
fn logs_in_as_each_server_lets_it() {
    use causeway_mailserver::ImapLogins;
    use causeway_proto::ErrCode;
    for (logins, want) in [
        (ImapLogins::Both, "AUTHENTICATE PLAIN"),
        (ImapLogins::LoginOnly, "LOGIN"),
        (ImapLogins::PlainOnly, "AUTHENTICATE PLAIN"),
    ] {
        let mut w = world(ServerConfig {
            imap_logins: logins,
            ..ServerConfig::default()
        });
        let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
        w.sim.client("client", async move {
            let mut c = Client::connect(&k, &ek).await?;
            let l = c.welcome(vec![direct()]).await;
            assert!(
                matches!(l[0].state, ListingState::Ready { .. }),
                "{logins:?}: {l:?}"
            );
            assert_eq!(c.quit().await[0].result, Ok(()));
            let wrong = ServerSpec {
                password: causeway_proto::Secret::new("not the password"),
                ..direct()
            };
            let mut c = Client::connect(&k, &ek).await?;
            let l = c.welcome(vec![wrong]).await;
            let ListingState::Unavailable { error } = &l[0].state else {
                panic!("{logins:?}: a wrong password logged in: {l:?}")
            };
            assert_eq!(error.code, Some(ErrCode::Auth), "{logins:?}: {error:?}");
            let _ = c.quit().await;
            let logins_sent: Vec<String> = mail
                .sessions()
                .iter()
                .flat_map(|s| s.commands.iter())
                .filter(|c| c.starts_with("LOGIN") || c.starts_with("AUTHENTICATE"))
                .cloned()
                .collect();
            assert_eq!(logins_sent, vec![want; 2], "{logins:?}\n{}", mail.report());
            sessions_end_with_quit(&c.env, &mail).await;
            Ok(())
        });
        w.sim.run().unwrap();
    }
}
