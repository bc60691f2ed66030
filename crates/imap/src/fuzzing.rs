//! Fuzz target bodies, as plain functions: `fuzz/fuzz_targets/imap_*.rs`
//! call them, and `tests/fuzz_bodies.rs` runs them under proptest, so they
//! compile and run in every `cargo test`.

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
