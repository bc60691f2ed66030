//! The configuration files end to end: text in, settings or problems (with
//! their lines) out.

use std::path::Path;
use std::time::Duration;

use super::*;

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

#[test]
fn durations() {
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert!(parse_duration("10").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("5 min").is_err());
}

#[test]
fn missing_role_is_explained() {
    let e = parse("listen = \"1.2.3.4:5\"\n", Path::new(".")).unwrap_err();
    assert!(e[0].message.contains("role"), "{e:?}");
}

#[test]
fn dictionary_and_ca_file_are_loaded_or_reported_with_their_line() {
    let dir = std::env::temp_dir().join(format!("cw-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mail.dict"), b"a dictionary").unwrap();
    let ok = format!(
        "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nallowed_edges = [\"{KEY}\"]\nallowed_servers = [\"mail:110\"]\n[channel]\ndictionary = \"mail.dict\"\n"
    );
    let Settings::Relay(r) = parse(&ok, &dir).unwrap() else {
        panic!("not a relay")
    };
    assert_eq!(
        r.config.channel.dictionary.as_deref().map(Vec::as_slice),
        Some(&b"a dictionary"[..])
    );
    let bad = format!(
        "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nallowed_edges = [\"{KEY}\"]\nallowed_servers = [\"mail:110\"]\nca_file = \"missing.pem\"\n[channel]\ndictionary = \"missing.dict\"\n"
    );
    let e = parse(&bad, &dir).unwrap_err();
    let lines: Vec<_> = e.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![Some(6), Some(8)], "{e:#?}");
    assert!(e[0].message.contains("ca_file"), "{e:#?}");
    assert!(e[1].message.contains("channel.dictionary"), "{e:#?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_unknown_key_and_bad_key_has_its_line() {
    let text = format!(
        "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nallowed_edges = [\"nope\"]\nallowd_servers = [\"a:1\"]\nallowed_servers = [\"mail:0\"]\ncolour = 1\n"
    );
    let e = parse(&text, Path::new(".")).unwrap_err();
    let lines: Vec<_> = e.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![Some(4), Some(5), Some(6), Some(7)], "{e:#?}");
    assert!(e[1].message.contains("allowd_servers"), "{e:#?}");
}

#[test]
fn an_edge_needs_a_journal_or_says_it_runs_without() {
    let edge = |journal: &str| {
        format!(
            "role = \"edge\"\nlisten = \"0.0.0.0:7000\"\nprivate_key = \"{KEY}\"\nallowed_clients = [\"{KEY}\"]\nallowed_servers = [\"mail:110\"]\n{journal}"
        )
    };
    let tmp = std::env::temp_dir();
    let e = parse(&edge(""), Path::new(".")).unwrap_err();
    assert!(e[0].message.starts_with("journal: missing"), "{e:#?}");
    let Settings::Edge(s) = parse(&edge("journal = \"memory\"\n"), Path::new(".")).unwrap() else {
        panic!("not an edge")
    };
    assert_eq!(s.journal, None);
    let Settings::Edge(s) = parse(&edge("journal = \"edge.redb\"\n"), &tmp).unwrap() else {
        panic!("not an edge")
    };
    assert_eq!(s.journal, Some(tmp.join("edge.redb")));
}

#[test]
fn an_edge_reads_its_admission_and_login_limits_and_refuses_a_zero_rate() {
    let edge = |limits: &str| {
        format!(
            "role = \"edge\"\nlisten = \"0.0.0.0:7000\"\nprivate_key = \"{KEY}\"\nallowed_clients = [\"{KEY}\"]\nallowed_servers = [\"mail:110\"]\njournal = \"memory\"\n{limits}"
        )
    };
    let Settings::Edge(s) = parse(&edge(""), Path::new(".")).unwrap() else {
        panic!("not an edge")
    };
    assert_eq!(
        s.config.admission,
        causeway_edge::AdmissionLimits::default()
    );
    let text = edge(
        "max_handshakes = 64\nhandshake_failures_burst = 5\nhandshake_failures_per_minute = 120\n",
    );
    let Settings::Edge(s) = parse(&text, Path::new(".")).unwrap() else {
        panic!("not an edge")
    };
    assert_eq!(
        s.config.admission,
        causeway_edge::AdmissionLimits {
            max_handshakes: 64,
            failures_burst: 5,
            failures_per_minute: 120,
        }
    );
    let e = parse(&edge("handshake_failures_per_minute = 0\n"), Path::new(".")).unwrap_err();
    assert_eq!(e[0].line, Some(7), "{e:#?}");
    assert!(
        e[0].message.contains("handshake_failures_per_minute"),
        "{e:#?}"
    );
    assert_eq!(s.config.logins, causeway_edge::LoginLimits::default());
    let text = edge(
        "account_login_failures_burst = 3\naccount_login_failures_per_minute = 1\n\
         client_login_failures_burst = 9\nclient_login_failures_per_minute = 4\n",
    );
    let Settings::Edge(s) = parse(&text, Path::new(".")).unwrap() else {
        panic!("not an edge")
    };
    assert_eq!(
        s.config.logins,
        causeway_edge::LoginLimits {
            account_burst: 3,
            account_per_minute: 1,
            client_burst: 9,
            client_per_minute: 4,
        }
    );
    let e = parse(&edge("client_login_failures_burst = 0\n"), Path::new(".")).unwrap_err();
    assert!(
        e[0].message.contains("client_login_failures_burst"),
        "{e:#?}"
    );
}

#[test]
fn secrets_come_from_exactly_one_source() {
    let text = format!(
        "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nprivate_key_env = \"X\"\nallowed_edges = [\"{KEY}\"]\nallowed_servers = [\"m:110\"]\n"
    );
    let e = parse(&text, Path::new(".")).unwrap_err();
    assert_eq!(e[0].line, Some(4), "{e:#?}");
    assert!(e[0].message.contains("more than once"));
}

#[test]
fn server_problems_point_at_their_lines_and_never_show_passwords() {
    let text = format!(
        r#"role = "client"
listen = "127.0.0.1:1110"
user = "me"
password = "local-pw"
edge = "edge.example:7000"
edge_public_key = "{KEY}"
private_key = "{KEY}"

[[server]]
name = "A"
host = "mail.example"
port = 0
user = "alice"
password = "pw-one"

[[server]]
name = "A"
host = "mail.example"
user = "alice"
password = "pw-two"
relay = "R1"
"#
    );
    let e = parse(&text, Path::new(".")).unwrap_err();
    let shown = format!("{e:?}");
    assert!(
        !shown.contains("pw-one") && !shown.contains("local-pw"),
        "{shown}"
    );
    assert!(
        e.iter()
            .any(|p| p.line == Some(12) && p.message.contains("port")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|p| p.line == Some(17) && p.message.contains("twice")),
        "{e:#?}"
    );
}

/// A client file with one server, `extra` at its end.
fn client(extra: &str) -> String {
    format!(
        "role = \"client\"\nlisten = \"127.0.0.1:1110\"\nuser = \"me\"\npassword = \"pw\"\n\
         edge = \"edge.example:7000\"\nedge_public_key = \"{KEY}\"\nprivate_key = \"{KEY}\"\n\
         [[server]]\nname = \"A\"\nhost = \"mail.example.org\"\nuser = \"alice\"\npassword = \"p\"\n{extra}"
    )
}

#[test]
fn a_server_gets_tls_unless_the_file_says_none() {
    let server = |extra: &str| match parse(&client(extra), Path::new(".")).unwrap() {
        Settings::Client(c) => {
            let s = &c.config.servers[0];
            (s.tls, s.port)
        }
        _ => panic!("not a client"),
    };
    use causeway_proto::user::TlsMode;
    assert_eq!(server(""), (TlsMode::Starttls, 110));
    assert_eq!(server("port = 995\n"), (TlsMode::Implicit, 995));
    assert_eq!(server("tls = \"implicit\"\n"), (TlsMode::Implicit, 995));
    assert_eq!(server("port = 1110\n"), (TlsMode::Starttls, 1110));
    assert_eq!(server("tls = \"none\"\n"), (TlsMode::None, 110));
    // IMAP: its own ports, the same TLS rule.
    assert_eq!(server("protocol = \"imap\"\n"), (TlsMode::Starttls, 143));
    assert_eq!(
        server("protocol = \"imap\"\nport = 993\n"),
        (TlsMode::Implicit, 993)
    );
    assert_eq!(
        server("protocol = \"imap\"\ntls = \"implicit\"\n"),
        (TlsMode::Implicit, 993)
    );
    let e = parse(&client("protocol = \"smtp\"\n"), Path::new(".")).unwrap_err();
    assert!(
        e.iter().any(|p| p
            .message
            .contains("protocol \"smtp\": it must be \"pop3\" or \"imap\"")),
        "{e:?}"
    );
    // Clear text to a remote host is allowed but warned about.
    let s = parse(&client("tls = \"none\"\n"), Path::new(".")).unwrap();
    let w = crate::check::warnings(&s);
    assert!(
        w[0].contains("clear text") && w[0].contains("mail.example.org:110"),
        "{w:?}"
    );
    let local = client("tls = \"none\"\n").replace("mail.example.org", "127.0.0.1");
    assert!(crate::check::warnings(&parse(&local, Path::new(".")).unwrap()).is_empty());
}

#[test]
fn an_imap_entry_names_its_folder_and_a_pop3_one_cannot() {
    let folder = |extra: &str| match parse(&client(extra), Path::new(".")).unwrap() {
        Settings::Client(c) => c.config.servers[0].folder.clone(),
        _ => panic!("not a client"),
    };
    assert_eq!(folder("protocol = \"imap\"\n"), "INBOX");
    assert_eq!(folder(""), "INBOX");
    assert_eq!(
        folder("protocol = \"imap\"\nfolder = \"Lists/rust\"\n"),
        "Lists/rust"
    );
    let e = parse(&client("folder = \"Sent\"\n"), Path::new(".")).unwrap_err();
    assert!(
        e.iter()
            .any(|p| p.line == Some(13) && p.message.contains("needs protocol \"imap\"")),
        "{e:#?}"
    );
}

#[test]
fn prefetch_has_defaults_and_can_be_turned_off() {
    let prefetch = |extra: &str| match parse(&client(extra), Path::new(".")).unwrap() {
        Settings::Client(c) => c.config.prefetch,
        _ => panic!("not a client"),
    };
    assert_eq!(prefetch(""), causeway_client::Prefetch::default());
    let p = prefetch("[prefetch]\nenabled = false\nbudget = 1000\nmax_message = 10\nkeep = 0\n");
    assert!(!p.enabled);
    assert_eq!((p.budget, p.max_message, p.keep), (1000, 10, 0));
    let e = parse(&client("[prefetch]\nbudget = -1\n"), Path::new(".")).unwrap_err();
    assert!(
        e.iter()
            .any(|p| p.line == Some(14) && p.message.contains("prefetch.budget")),
        "{e:#?}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// The fuzz target's body on a real client file with bytes changed,
    /// which reaches far deeper than random text does.
    #[test]
    fn damaged_files_never_panic(
        edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..6),
    ) {
        let mut text = format!(
            "role = \"client\"\nlisten = \"127.0.0.1:1110\"\nuser = \"me\"\npassword = \"pw\"\n\
             edge = \"edge.example:7000\"\nedge_public_key = \"{KEY}\"\nprivate_key = \"{KEY}\"\n\
             [[server]]\nname = \"A\"\nhost = \"mail.example\"\nport = 995\nuser = \"a\"\n\
             password = \"b\"\ntls = \"none\"\n[channel]\nzstd_level = 3\n"
        )
        .into_bytes();
        for (at, b) in edits {
            let i = at % text.len();
            text[i] = b;
        }
        crate::config::fuzzing::parse(&text);
    }
}

#[test]
fn compression_is_a_stream_unless_per_message_is_asked() {
    let relay = |channel: &str| {
        format!(
            "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nallowed_edges = [\"{KEY}\"]\nallowed_servers = [\"mail:110\"]\n[channel]\n{channel}"
        )
    };
    let per_message = |text: &str| match parse(text, Path::new(".")) {
        Ok(Settings::Relay(r)) => r.config.channel.per_message,
        other => panic!("{:?}", other.err()),
    };
    assert!(!per_message(&relay("")));
    assert!(!per_message(&relay("compression = \"stream\"\n")));
    assert!(per_message(&relay("compression = \"per-message\"\n")));
    let e = parse(&relay("compression = \"gzip\"\n"), Path::new(".")).unwrap_err();
    assert_eq!(e[0].line, Some(7), "{e:#?}");
    assert!(e[0].message.contains("per-message"), "{e:#?}");
}
