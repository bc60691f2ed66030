//! Message numbers belong to one server session; a delete travels by UIDL.
//! New mail arriving, and another client deleting mail, while the mail
//! client sits in its session must never shift a delete onto the wrong
//! message, even when the edge has to open a fresh server session (where
//! every number differs) to carry the delete out.

use std::time::Duration;

use causeway_mailserver::{EndKind, LockPolicy, ServerConfig};
use causeway_net::Env;
use causeway_tests::rig::{LOCAL_PASSWORD, LOCAL_USER, PASSWORD, Rig, RigSpec, USER};
use causeway_tests::{Py, python};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_and_another_clients_delete_never_shift_a_delete() {
    if !python::available().await {
        return;
    }
    // Shared locking, so another client can work on the maildrop meanwhile;
    // a short idle timeout, so the server drops the edge's first session
    // while the mail client is idle and the delete needs a new one.
    let server_idle = Duration::from_secs(2);
    let rig = Rig::start(RigSpec {
        server_config: ServerConfig {
            lock: LockPolicy::Shared,
            idle_timeout: server_idle,
            ..ServerConfig::default()
        },
        ..RigSpec::default()
    })
    .await;
    let host = &rig.hosts[0];
    let m = host.deliver(rig.env.rng(), 3, 2000);

    let script = format!(
        r#"
p.user("{LOCAL_USER}")
p.pass_("{LOCAL_PASSWORD}")
out("uidl", ",".join(text(l) for l in p.uidl()[1]))
pause("listed")
out("dele", text(p.dele(2)))
out("uidl after", ",".join(text(l) for l in p.uidl()[1]))
out("quit", text(p.quit()))
"#
    );
    let mut py = Py::start(&rig.proxy, &script);
    let shown = py.expect("uidl").await;
    assert_eq!(
        shown,
        format!("1 HOST1:{},2 HOST1:{},3 HOST1:{}", m[0], m[1], m[2])
    );
    py.expect("pause").await;

    // Meanwhile: new mail arrives, and another client deletes message 1.
    let new = host.deliver(rig.env.rng(), 1, 2000).remove(0);
    let other = python::run(
        &host.addr,
        &format!("p.user(\"{USER}\")\np.pass_(\"{PASSWORD}\")\nout(\"dele\", text(p.dele(1)))\nout(\"quit\", text(p.quit()))\n"),
    )
    .await;
    assert_eq!(other.get("quit"), "+OK Logging out, messages deleted.");
    assert!(!host.store.is_present(USER, &m[0]));
    // On the server, m[1] is now number 1 and m[2] number 2: a delete by
    // number 2 would hit the wrong message.
    tokio::time::sleep(server_idle + Duration::from_millis(500)).await;

    py.resume().await;
    let out = py.finish().await;
    assert_eq!(out.get("dele"), "+OK Marked to be deleted.");
    assert_eq!(
        out.get("uidl after"),
        format!("1 HOST1:{},3 HOST1:{}", m[0], m[2]),
        "the mailbox is a snapshot"
    );
    assert_eq!(out.get("quit"), "+OK Logging out, messages deleted.");

    rig.settle().await;
    let store = &host.store;
    assert!(
        !store.is_present(USER, &m[1]),
        "the message the mail client deleted is still there\n{}",
        rig.report()
    );
    assert!(
        store.is_present(USER, &m[2]),
        "a delete shifted onto the next message\n{}",
        rig.report()
    );
    assert!(
        store.is_present(USER, &new),
        "a delete shifted onto the new mail\n{}",
        rig.report()
    );
    assert!(
        store
            .sessions()
            .iter()
            .any(|s| s.end_kind() == Some(EndKind::IdleTimeout)),
        "the server never dropped the edge's first session: the delete did not need a new one\n{}",
        rig.report()
    );
    let deleter = store.message(USER, &m[1]).unwrap().deleted_by.unwrap();
    let s = store.session(deleter).unwrap();
    assert_eq!(
        s.end_kind(),
        Some(EndKind::Quit),
        "the delete was committed by QUIT"
    );
    assert!(
        store
            .sessions()
            .iter()
            .all(|s| s.is_live()
                || matches!(s.end_kind(), Some(EndKind::Quit | EndKind::IdleTimeout))),
        "{}",
        rig.report()
    );
    assert!(store.locks_held(rig.env.unix_millis()).is_empty());
    assert_eq!(rig.edge.live_replicas(), 0);
}
