use super::*;

const MIXED: &[u8] = b"From: a@b\r\nMime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nworld\r\n--XX  \r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--XX--\r\nepilogue\r\n";

#[test]
fn a_multipart_with_a_message_inside() {
    let t = parse(MIXED);
    let Kind::Multi(parts) = &t.kind else {
        panic!("{t:?}")
    };
    assert_eq!(parts.len(), 2);
    assert_eq!(&MIXED[parts[0].body.clone()], b"hello\r\nworld");
    assert!(parts[0].content.is("text", "plain"));
    assert_eq!(
        &MIXED[parts[0].header.clone()],
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    let Kind::Message(inner) = &parts[1].kind else {
        panic!("{:?}", parts[1])
    };
    assert_eq!(&MIXED[inner.header.clone()], b"Subject: inner\r\n\r\n");
    assert_eq!(&MIXED[inner.body.clone()], b"inner body");
    assert_eq!(lines(&MIXED[parts[0].body.clone()]), 1);
}

#[test]
fn a_closed_multipart_keeps_the_line_break_before_the_next_boundary() {
    // As Dovecot counts: part 1 (a multipart that was closed) ends with
    // the line break before `--o`, part 1.1 (a leaf) without it.
    let m = b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nleaf\r\n--i--\r\n--o--\r\n";
    let t = parse(m);
    let Kind::Multi(parts) = &t.kind else {
        panic!("{t:?}")
    };
    assert_eq!(&m[parts[0].body.clone()], b"--i\r\n\r\nleaf\r\n--i--\r\n");
    let Kind::Multi(inner) = &parts[0].kind else {
        panic!()
    };
    assert_eq!(&m[inner[0].body.clone()], b"leaf");
}

#[test]
fn folded_values_keep_their_breaks_until_unfolded() {
    let f = header_fields(b"Subject:  a\r\n  b\r\nX: y\r\n\r\n");
    assert_eq!(f[0], (&b"Subject"[..], b"a\r\n  b".to_vec()));
    assert_eq!(unfold(&f[0].1), b"a  b");
    assert_eq!(f[1], (&b"X"[..], b"y".to_vec()));
}

#[test]
fn digest_parts_default_to_messages_and_an_unclosed_multipart_ends_with_the_message() {
    let m = b"Mime-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nbody";
    let t = parse(m);
    let Kind::Multi(parts) = &t.kind else {
        panic!("{t:?}")
    };
    assert!(parts[0].content.is("message", "rfc822"));
    assert!(matches!(parts[0].kind, Kind::Message(_)));
    assert_eq!(parts[0].body.end, m.len());
}

#[test]
fn deep_nesting_is_cut_off_and_parts_are_bounded() {
    let mut m = b"Mime-Version: 1.0\r\n".to_vec();
    for _ in 0..10_000 {
        m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\nMime-Version: 1.0\r\n");
    }
    let mut depth = 0;
    let t = parse(&m);
    let mut p = &t;
    while let Kind::Message(inner) = &p.kind {
        p = inner;
        depth += 1;
    }
    assert_eq!(depth, MAX_DEPTH);
    let mut many =
        b"Mime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..(MAX_PARTS * 2) {
        many.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    let t = parse(&many);
    let Kind::Multi(parts) = &t.kind else {
        panic!()
    };
    // The message itself counts as one.
    assert_eq!(parts.len(), MAX_PARTS - 1);
}
