//! Fuzz target bodies, as plain functions: `fuzz/fuzz_targets/imap_*.rs`
//! and `mime_message.rs` call them, and `tests/fuzz_bodies.rs` runs them
//! under proptest, so they compile and run in every `cargo test`.

use imap_next::client::{Client, Error, Event, Options};
use imap_next::{Interrupt, Io, State};
use imap_types::command::Command;
use imap_types::core::Tag;
use imap_types::fetch::MessageDataItem;
use imap_types::response::Data;

use crate::command;
use crate::folder::Folder;

/// The cap the target runs with: small, so that the fuzzer reaches it.
const MAX_RESPONSE: u32 = 4096;

/// What a server may send to the edge's client: `data[0]` picks the size of
/// the pieces the rest arrives in; the rest is a greeting and responses to
/// a listing and a body fetch. Must not panic; no body larger than the cap
/// is handed out; the folder map stays within its cap. Returns how many
/// data responses were read and the body bytes among them.
pub fn server_responses(data: &[u8]) -> (usize, usize) {
    let mut read = (0, 0);
    let Some((&seed, rest)) = data.split_first() else {
        return read;
    };
    let piece = usize::from(seed % 64) + 1;
    let mut options = Options::default();
    options.max_response_size = MAX_RESPONSE;
    let mut client = Client::new(options);
    for (n, body) in [command::listing(), command::body(std::num::NonZeroU32::MIN)]
        .into_iter()
        .enumerate()
    {
        client.enqueue_command(Command {
            tag: Tag::try_from(format!("C{n}")).expect("a valid tag"),
            body,
        });
    }
    let mut folder = Folder::default();
    let mut pieces = rest.chunks(piece);
    // Every turn consumes input or ends; the bound only guards the test.
    for _ in 0..100_000 {
        match client.next() {
            Ok(Event::DataReceived { data }) => {
                read.0 += 1;
                let _ = folder.apply(&data);
                assert!(folder.exists() <= crate::folder::MAX_MESSAGES);
                if let Data::Fetch { items, .. } = &data {
                    for item in items.as_ref() {
                        if let MessageDataItem::BodyExt { data, .. } = item {
                            let len = data.0.as_ref().map_or(0, |s| s.as_ref().len());
                            assert!(len <= MAX_RESPONSE as usize);
                            read.1 += len;
                        }
                    }
                }
            }
            Ok(Event::StatusReceived { status }) => {
                if let imap_types::response::Status::Untagged(b)
                | imap_types::response::Status::Tagged(imap_types::response::Tagged {
                    body: b,
                    ..
                }) = &status
                    && let Some(code) = &b.code
                {
                    folder.apply_code(code);
                }
            }
            Ok(_) => {}
            Err(Interrupt::Io(Io::Output(_))) => {}
            Err(Interrupt::Io(Io::NeedMoreInput)) => match pieces.next() {
                Some(p) => client.enqueue_input(p),
                None => return read,
            },
            Err(Interrupt::Error(
                Error::MalformedMessage { .. }
                | Error::ExpectedCrlfGotLf { .. }
                | Error::ResponseTooLong { .. },
            )) => {}
        }
    }
    read
}

/// The message the `client_commands` target cuts sections from.
const MESSAGE: &[u8] = b"From: a@example.org\r\nSubject: fuzz\r\n  folded\r\n\r\nbody\r\n";

/// What a mail client may send to the client proxy's IMAP front: `data[0]`
/// picks the size of the pieces the rest arrives in. Each command imap-next
/// parses is answered the way the front answers it from its sans-IO parts:
/// a FETCH resolves its set against a 50-message view and cuts its
/// sections from a message, a SEARCH searches, a STORE stores, a LIST
/// matches, an EXPUNGE expunges. Must not panic and stays bounded (the
/// command cap is small). Returns the commands parsed and the bytes cut.
pub fn client_commands(data: &[u8]) -> (usize, usize) {
    use imap_next::server::{Event as ServerEvent, Options as ServerOptions, Server};
    use imap_types::command::CommandBody;
    use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
    use imap_types::flag::StoreType;
    use imap_types::mailbox::ListMailbox;
    use imap_types::response::Greeting;

    use crate::serve::keywords::MAX_KEYWORDS;
    use crate::serve::view::{Message, View};
    use crate::serve::{list_matches, sections};
    use imap_types::search::SearchKey;

    let mut read = (0, 0);
    let Some((&seed, rest)) = data.split_first() else {
        return read;
    };
    let piece = usize::from(seed % 64) + 1;
    let mut options = ServerOptions::default();
    options.max_literal_size = 1024;
    options.max_command_size = 2048;
    let mut server = Server::new(options, Greeting::ok(None, "fuzz").expect("valid"));
    let validity = std::num::NonZeroU32::MIN;
    let mut view: View<u32> = View::numbered(validity, (1..=50).map(|k| (k, u64::from(k) * 10)));
    let mut pieces = rest.chunks(piece);
    for _ in 0..100_000 {
        match server.next() {
            Ok(ServerEvent::CommandReceived { command }) => {
                read.0 += 1;
                match command.body {
                    CommandBody::Fetch {
                        sequence_set,
                        macro_or_item_names,
                        uid,
                        ..
                    } => {
                        let found = view.resolve(&sequence_set, uid);
                        assert!(found.len() <= view.exists() as usize);
                        if let MacroOrMessageDataItemNames::MessageDataItemNames(names) =
                            macro_or_item_names
                        {
                            for n in names {
                                if let MessageDataItemName::BodyExt {
                                    section, partial, ..
                                } = n
                                {
                                    let cut = sections::cut(MESSAGE, section.as_ref());
                                    let part = match partial {
                                        Some((o, l)) => sections::partial(&cut, o, l.get()),
                                        None => &cut,
                                    };
                                    assert!(part.len() <= MESSAGE.len() + 2);
                                    read.1 += part.len();
                                }
                            }
                        }
                    }
                    CommandBody::Search { criteria, .. } => {
                        // Text criteria as the front judges them: each by
                        // an answer from elsewhere (here, by the key).
                        let text = |m: &Message<u32>, _: &SearchKey<'_>| Some(m.key % 2 == 0);
                        let _ = view.search(criteria.as_ref(), &text);
                    }
                    // A hostile STORE's keywords: kept within the table's
                    // bounds, or refused whole.
                    CommandBody::Store {
                        sequence_set,
                        kind,
                        flags,
                        uid,
                        ..
                    } if kind == StoreType::Remove || view.keywords.admit(&flags).is_ok() => {
                        let mask = view.keywords.mask(&flags);
                        for i in view.resolve(&sequence_set, uid) {
                            view.get_mut(i).flags.store(kind, &flags, mask);
                            let f = view.get(i).flags;
                            assert!(f.fetched(&view.keywords).len() <= 5 + MAX_KEYWORDS);
                        }
                    }
                    CommandBody::List {
                        mailbox_wildcard, ..
                    } => {
                        let pattern: &[u8] = match &mailbox_wildcard {
                            ListMailbox::Token(t) => t.as_ref(),
                            ListMailbox::String(s) => s.as_ref(),
                        };
                        let _ = list_matches(b"", pattern, "INBOX");
                    }
                    CommandBody::ExpungeUid { sequence_set } => {
                        let doomed = view.resolve(&sequence_set, true);
                        let reported = view.expunge(&doomed);
                        assert_eq!(reported.len(), doomed.len());
                    }
                    _ => {}
                }
            }
            Ok(ServerEvent::CommandAuthenticateReceived { .. }) => {
                let status = imap_types::response::Status::no(None, None, "no").expect("valid");
                let _ = server.authenticate_finish(status);
            }
            Ok(ServerEvent::IdleCommandReceived { tag }) => {
                let status =
                    imap_types::response::Status::no(Some(tag), None, "no").expect("valid");
                let _ = server.idle_reject(status);
            }
            Ok(_) => {}
            Err(Interrupt::Io(Io::Output(_))) => {}
            Err(Interrupt::Io(Io::NeedMoreInput)) => match pieces.next() {
                Some(p) => server.enqueue_input(p),
                None => return read,
            },
            Err(Interrupt::Error(_)) => {}
        }
    }
    read
}

/// A message from a mail server, as the IMAP front reads its structure:
/// must not panic; every part's header and body lie in order inside the
/// message; `BODYSTRUCTURE`, `BODY` and `ENVELOPE` encode to IMAP that
/// parses back to the same; every section cut is no longer than the
/// message. Returns how many parts the tree has.
pub fn mime_message(data: &[u8]) -> usize {
    use imap_codec::ResponseCodec;
    use imap_codec::decode::Decoder;
    use imap_codec::encode::Encoder;
    use imap_types::core::Vec1;
    use imap_types::fetch::{Part as PartPath, Section};
    use imap_types::response::Response;
    use std::num::NonZeroU32;

    use crate::serve::mime::{self, Kind, Part};
    use crate::serve::{envelope, sections, structure};

    fn check(p: &Part, len: usize) -> usize {
        assert!(p.header.start <= p.header.end && p.header.end <= p.body.start);
        assert!(p.body.start <= p.body.end && p.body.end <= len, "{p:?}");
        1 + match &p.kind {
            Kind::Single => 0,
            Kind::Multi(parts) => parts.iter().map(|c| check(c, len)).sum(),
            Kind::Message(inner) => check(inner, len),
        }
    }
    let tree = mime::parse(data);
    let parts = check(&tree, data.len());
    assert!(parts <= mime::MAX_PARTS);
    let header = &data[..sections::header_end(data)];
    let items = vec![
        MessageDataItem::BodyStructure(structure::structure(data, &tree, true)),
        MessageDataItem::Body(structure::structure(data, &tree, false)),
        MessageDataItem::Envelope(envelope::envelope(header)),
    ];
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: Vec1::try_from(items).expect("not empty"),
    });
    let codec = ResponseCodec::default();
    let bytes = codec.encode(&response).dump();
    let (rest, back) = codec.decode(&bytes).expect("our answer parses");
    assert!(rest.is_empty());
    assert_eq!(back, response);
    let n = |k: u32| NonZeroU32::new(k).expect("not zero");
    for path in [vec![1], vec![2], vec![1, 1], vec![2, 1], vec![1, 2, 1]] {
        let path = PartPath(
            Vec1::try_from(path.into_iter().map(n).collect::<Vec<_>>()).expect("not empty"),
        );
        for section in [
            Section::Part(path.clone()),
            Section::Mime(path.clone()),
            Section::Header(Some(path.clone())),
            Section::Text(Some(path)),
        ] {
            assert!(sections::cut(data, Some(&section)).len() <= data.len());
        }
    }
    parts
}
