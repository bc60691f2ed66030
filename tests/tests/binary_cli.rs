//! The demo, `check-config` and the example configuration files.

use std::path::Path;

use causeway::config::{Settings, parse};
use causeway_net::TokioEnv;
use causeway_proto::user::{Protocol, TlsMode};
use causeway_tests::interop::{require, temp_dir};
use causeway_tests::process::{Proc, causeway_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_a_curl_line_serves_mail_and_stops_on_sigint() {
    if !require("curl", &["--version"], "curl") {
        return;
    }
    let env = TokioEnv::new();
    let mut demo = Proc::causeway(
        "demo",
        &["demo", "--pop3-port", "0", "--messages", "5"],
        &[],
    );
    let out = demo.wait_for(&env, "Press Ctrl-C").await;
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("curl "))
        .expect("a curl line")
        .trim()
        .to_owned();
    assert!(
        url.starts_with("pop3://demo:") && url.ends_with('/'),
        "{url}"
    );

    let list = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "60", &url])
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "curl list: {}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listing = String::from_utf8_lossy(&list.stdout);
    assert_eq!(
        listing.lines().count(),
        10,
        "two servers, five messages each: {listing}"
    );

    let one = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "60", &format!("{url}1")])
        .output()
        .unwrap();
    assert!(
        one.status.success(),
        "curl retr: {}",
        String::from_utf8_lossy(&one.stderr)
    );
    let body = String::from_utf8_lossy(&one.stdout);
    assert!(
        body.contains("Subject:") && body.contains("From:"),
        "{body}"
    );

    demo.signal("INT");
    let code = demo.exit_code(&env).await;
    let out = demo.output();
    assert_eq!(code, 0, "demo exit code; output:\n{out}");
    assert!(out.contains("no mail lost"), "{out}");
    assert!(out.contains("seen:     1"), "{out}");
}

#[test]
fn check_config_reports_an_unknown_key_and_a_bad_key_with_their_lines() {
    let dir = temp_dir("check");
    let file = dir
        .write(
            "edge.toml",
            "role = \"edge\"\n\
         listen = \"0.0.0.0:7000\"\n\
         private_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n\
         allowed_clients = [\"not-a-key\"]\n\
         allowed_servers = [\"mail.example.org:110\"]\n\
         max_sesions = 10\n\
         journal = \"memory\"\n",
        )
        .unwrap();
    let out = std::process::Command::new(causeway_bin())
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    assert!(
        err.contains(&format!("{f}:4: allowed_clients: invalid public key")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:6: unknown field `max_sesions`")),
        "{err}"
    );
    assert!(err.contains("2 problem(s)"), "{err}");

    let ok = dir.write(
        "relay.toml",
        "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key_env = \"CW_TEST_KEY\"\n\
         allowed_edges = [\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\nallowed_servers = [\"127.0.0.1:110\"]\n",
    ).unwrap();
    let out = std::process::Command::new(causeway_bin())
        .arg("check-config")
        .arg(&ok)
        .env(
            "CW_TEST_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (relay"));
}

/// Each documented example parses, once its secrets exist.
#[test]
fn the_examples_parse() {
    let dir = temp_dir("examples");
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for f in ["edge.key", "relay.key", "client.key"] {
        dir.write(f, &format!("{key}\n")).unwrap();
    }
    dir.write("host1.password", "secret\n").unwrap();
    // SAFETY: set before any thread of this test reads the environment.
    unsafe {
        std::env::set_var("CAUSEWAY_LOCAL_PASSWORD", "local");
        std::env::set_var("CAUSEWAY_WORK_PASSWORD", "work");
        std::env::set_var("CAUSEWAY_MOBILE_PASSWORD", "mobile");
    }
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    for (name, role) in [("edge", "edge"), ("relay", "relay"), ("client", "client")] {
        let text = std::fs::read_to_string(examples.join(format!("{name}.toml"))).unwrap();
        let text = text
            .replace("/etc/causeway/", "")
            .replace("/var/lib/causeway-edge/", "");
        let s = parse(&text, dir.path()).unwrap_or_else(|e| panic!("{name}.toml: {e:#?}"));
        assert_eq!(s.role().to_string(), role);
        if let Settings::Client(c) = &s {
            assert_eq!(c.config.servers.len(), 4);
            assert_eq!(c.config.servers[0].password.expose(), b"secret");
            let imap = &c.config.servers[2];
            assert_eq!(
                (imap.protocol, imap.port, imap.tls, imap.folder.as_str()),
                (Protocol::Imap, 993, TlsMode::Implicit, "INBOX")
            );
            assert_eq!(c.config.servers[3].folder, "Lists");
        }
    }
}

/// `causeway owed` opens the journal an edge's file names, with the key
/// derived from its private key, and says what is owed; it refuses a file
/// that is not an edge's.
#[test]
fn owed_lists_an_edge_journal_and_refuses_other_roles() {
    let dir = temp_dir("owed");
    dir.write("edge.key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
        .unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    let text = std::fs::read_to_string(examples.join("edge.toml"))
        .unwrap()
        .replace("/etc/causeway/", "")
        .replace("/var/lib/causeway-edge/", "");
    dir.write("edge.toml", &text).unwrap();
    let run = |file: &str| {
        std::process::Command::new(causeway_bin())
            .args(["owed", "--config"])
            .arg(dir.path().join(file))
            .output()
            .unwrap()
    };
    let out = run("edge.toml");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing owed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(dir.path().join("journal.redb").exists());
    // Dropping something that is not there drops nothing and fails.
    let out = std::process::Command::new(causeway_bin())
        .args(["owed", "--drop", "0000000000000001", "--config"])
        .arg(dir.path().join("edge.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no owed work named"));

    let relay = std::fs::read_to_string(examples.join("relay.toml"))
        .unwrap()
        .replace("/etc/causeway/", "");
    dir.write(
        "relay.key",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    dir.write("relay.toml", &relay).unwrap();
    let out = run("relay.toml");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an edge"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
