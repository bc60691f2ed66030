//! Every message of the catalogue survives the wire encoding unchanged, and
//! the encoding's limits hold for our types: arbitrary bytes never decode
//! into more than the limit allows, and never panic.

use causeway_proto::relay::{EdgeToRelay, RelayToEdge};
use causeway_proto::session::{
    ClientToEdge, DeleteOp, EdgeToClient, ListEntry, ListingState, MessageId, Op, PlacedDelete,
    Reply, ServerFlags, ServerListing, ServerOutcome, ServerWants, WantedAt,
};
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode, UserInfo};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION, Secret};
use causeway_wire::Message;
use causeway_wire::codec::{decode_message, encode};
use causeway_wire::history::Mark;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

const LIMIT: usize = 1 << 20;

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

fn err_code() -> impl Strategy<Value = Option<ErrCode>> {
    prop::option::of(prop_oneof![
        Just(ErrCode::InUse),
        Just(ErrCode::LoginDelay),
        Just(ErrCode::Auth),
        Just(ErrCode::SysTemp),
        Just(ErrCode::SysPerm),
    ])
}

fn op_error() -> impl Strategy<Value = OpError> {
    (err_code(), text()).prop_map(|(code, text)| OpError { code, text })
}

fn server_spec() -> impl Strategy<Value = ServerSpec> {
    (
        text(),
        text(),
        any::<u16>(),
        prop_oneof![
            Just(TlsMode::None),
            Just(TlsMode::Implicit),
            Just(TlsMode::Starttls)
        ],
        text(),
        bytes(),
        prop::option::of(text()),
    )
        .prop_map(|(name, host, port, tls, user, pw, relay)| ServerSpec {
            name,
            protocol: Protocol::Pop3,
            host,
            port,
            tls,
            user,
            password: Secret::new(pw),
            route: relay.map_or(Route::Direct, Route::Relay),
            folder: causeway_proto::user::INBOX.into(),
        })
}

fn msg() -> impl Strategy<Value = MessageId> {
    (text(), any::<u64>()).prop_map(|(uidl, size)| MessageId { uidl, size })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        msg().prop_map(|msg| Op::Retr { msg }),
        (msg(), any::<u32>()).prop_map(|(msg, lines)| Op::Top { msg, lines }),
        msg().prop_map(|msg| Op::Dele { msg }),
        Just(Op::Rset),
        (prop::collection::vec(text(), 0..3), any::<u64>())
            .prop_map(|(flags, size)| Op::Append { flags, size }),
        (msg(), any::<bool>(), prop::collection::vec(text(), 0..3))
            .prop_map(|(msg, add, flags)| Op::Store { msg, add, flags }),
    ]
}

fn client_to_edge() -> impl Strategy<Value = ClientToEdge> {
    prop_oneof![
        (
            any::<u16>(),
            prop::collection::vec(server_spec(), 0..4),
            prop::collection::vec(text(), 0..3),
            prop::collection::vec(delete_op(), 0..3),
            text(),
        )
            .prop_map(|(version, servers, supersedes, carried, nonce)| {
                ClientToEdge::Hello {
                    version,
                    nonce,
                    user: UserInfo { servers },
                    supersedes,
                    oldest: u64::from(version) << 40,
                    carried,
                    restarted: version % 2 == 0,
                    resumes: version % 3 == 0,
                }
            }),
        prop::collection::vec(
            (any::<u64>(), text(), any::<u32>()).prop_map(|(seq, server, at)| PlacedDelete {
                seq,
                server,
                at
            }),
            0..4
        )
        .prop_map(|ops| ClientToEdge::Deletes { ops }),
        (any::<u64>(), text(), op()).prop_map(|(id, server, op)| ClientToEdge::Request {
            id,
            server,
            op
        }),
        (text(), prop::collection::vec(any::<u32>(), 0..4))
            .prop_map(|(server, at)| ClientToEdge::Delivered { server, at }),
        (
            text(),
            prop::collection::vec(
                (any::<u32>(), any::<u64>()).prop_map(|(at, from)| WantedAt { at, from }),
                0..4
            )
        )
            .prop_map(|(server, bodies)| ClientToEdge::Want { server, bodies }),
        any::<u64>().prop_map(|received| ClientToEdge::Window { received }),
        (any::<u64>(), any::<u64>(), bytes()).prop_map(|(id, offset, data)| ClientToEdge::Upload {
            id,
            offset,
            data
        }),
        any::<u64>().prop_map(|nonce| ClientToEdge::Ping { nonce }),
        Just(ClientToEdge::Quit),
        (
            (any::<u16>(), text(), bytes(), any::<u64>()),
            prop::collection::vec(
                (text(), prop::collection::vec(any::<(u32, u64)>(), 0..3)),
                0..3
            ),
            prop::option::of(any::<(u64, u64, u32, [u8; 32])>())
        )
            .prop_map(|((version, session, proof, received), wants, history)| {
                ClientToEdge::Resume {
                    version,
                    session,
                    proof,
                    received,
                    wants: wants
                        .into_iter()
                        .map(|(server, bodies)| ServerWants {
                            server,
                            bodies: bodies
                                .into_iter()
                                .map(|(at, from)| WantedAt { at, from })
                                .collect(),
                        })
                        .collect(),
                    history: history.map(|(frame, fed, len, digest)| Mark {
                        frame,
                        fed,
                        len,
                        digest,
                    }),
                }
            }),
    ]
}

fn delete_op() -> impl Strategy<Value = DeleteOp> {
    (any::<u64>(), text(), msg(), prop::option::of(msg())).prop_map(
        |(seq, server, msg, witness)| DeleteOp {
            seq,
            server,
            msg,
            witness,
        },
    )
}

fn listing() -> impl Strategy<Value = ServerListing> {
    let state = prop_oneof![
        prop::collection::vec((text(), any::<u64>(), any::<Option<u8>>()), 0..8).prop_map(|m| {
            ListingState::Ready {
                messages: m
                    .into_iter()
                    .map(|(uidl, size, flags)| ListEntry {
                        uidl,
                        size,
                        flags: flags.map(ServerFlags),
                    })
                    .collect(),
            }
        }),
        op_error().prop_map(|error| ListingState::Unavailable { error }),
    ];
    (text(), state).prop_map(|(name, state)| ServerListing { name, state })
}

fn edge_to_client() -> impl Strategy<Value = EdgeToClient> {
    let reply = prop_oneof![
        bytes().prop_map(Reply::Body),
        any::<u64>().prop_map(|total| Reply::Streamed { total }),
        Just(Reply::Done),
        prop::option::of(text()).prop_map(|uidl| Reply::Stored { uidl })
    ];
    prop_oneof![
        (text(), prop::collection::vec(listing(), 0..4))
            .prop_map(|(session, servers)| EdgeToClient::Welcome { session, servers }),
        op_error().prop_map(|error| EdgeToClient::Refused { error }),
        (
            any::<u64>(),
            prop_oneof![reply.prop_map(Ok), op_error().prop_map(Err)]
        )
            .prop_map(|(id, result)| EdgeToClient::Response { id, result }),
        any::<u64>().prop_map(|nonce| EdgeToClient::Pong { nonce }),
        prop::collection::vec(any::<u64>(), 0..4).prop_map(|seqs| EdgeToClient::Held { seqs }),
        (
            text(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            bytes()
        )
            .prop_map(
                |(server, at, offset, total, lf, data)| EdgeToClient::Chunk {
                    server,
                    at,
                    offset,
                    total,
                    lf,
                    data
                }
            ),
        prop::collection::vec(
            (text(), prop::option::of(op_error())).prop_map(|(name, e)| ServerOutcome {
                name,
                result: e.map_or(Ok(()), Err)
            }),
            0..4
        )
        .prop_map(|servers| EdgeToClient::Bye { servers }),
        bytes().prop_map(|secret| EdgeToClient::Ticket { secret }),
        (
            bytes(),
            any::<u64>(),
            any::<bool>(),
            prop::option::of(any::<(u64, u64)>())
        )
            .prop_map(|(secret, marks, primed, uploaded)| {
                EdgeToClient::Resumed {
                    secret,
                    marks,
                    primed,
                    uploaded,
                }
            }),
        Just(EdgeToClient::Finishing),
        Just(EdgeToClient::Opening),
    ]
}

fn edge_to_relay() -> impl Strategy<Value = EdgeToRelay> {
    prop_oneof![
        (any::<u16>(), server_spec())
            .prop_map(|(version, server)| EdgeToRelay::Open { version, server }),
        (any::<u64>(), bytes()).prop_map(|(id, line)| EdgeToRelay::Command { id, line }),
        any::<u64>().prop_map(|nonce| EdgeToRelay::Ping { nonce }),
        Just(EdgeToRelay::Quit),
    ]
}

fn relay_to_edge() -> impl Strategy<Value = RelayToEdge> {
    prop_oneof![
        bytes().prop_map(|greeting| RelayToEdge::Opened { greeting }),
        op_error().prop_map(|error| RelayToEdge::Refused { error }),
        (any::<u64>(), bytes(), prop::option::of(bytes()))
            .prop_map(|(id, status, body)| RelayToEdge::Reply { id, status, body }),
        (any::<u64>(), op_error()).prop_map(|(id, error)| RelayToEdge::Failed { id, error }),
        any::<u64>().prop_map(|nonce| RelayToEdge::Pong { nonce }),
        prop_oneof![bytes().prop_map(Ok), op_error().prop_map(Err)]
            .prop_map(|result| RelayToEdge::QuitDone { result }),
    ]
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(m: &T) {
    let bytes = encode(m).unwrap();
    let back: T = decode_message(&bytes, LIMIT).unwrap();
    assert_eq!(&back, m);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn client_to_edge_round_trips(m in client_to_edge()) { round_trip(&m) }

    #[test]
    fn edge_to_client_round_trips(m in edge_to_client()) { round_trip(&m) }

    #[test]
    fn edge_to_relay_round_trips(m in edge_to_relay()) { round_trip(&m) }

    #[test]
    fn relay_to_edge_round_trips(m in relay_to_edge()) { round_trip(&m) }

    /// Garbage never panics, and whatever decodes re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(m) = decode_message::<ClientToEdge>(&b, LIMIT) { prop_assert_eq!(encode(&m).unwrap(), b.clone()); }
        causeway_proto::fuzzing::messages(&b);
    }

    /// The fuzz target's body on encoded messages with bytes flipped, which
    /// reach far deeper than random bytes do.
    #[test]
    fn damaged_messages_never_panic(
        m in client_to_edge(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut b = encode(&m).unwrap();
        for (at, x) in flips {
            let i = at.index(b.len());
            b[i] ^= x;
        }
        causeway_proto::fuzzing::messages(&b);
    }
}

#[test]
fn a_hostile_length_prefix_cannot_allocate_past_the_limit() {
    // Response{id: 1, Ok(Body(<claims 2^40 bytes>))}: variant indexes, then a
    // varint length of 2^40 with no bytes behind it.
    let mut b = encode(&EdgeToClient::Response {
        id: 1,
        result: Ok(Reply::Body(Vec::new())),
    })
    .unwrap();
    b.pop(); // the empty body's length (0)
    b.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 1, 0, 0]); // u64 varint 2^40
    let err = decode_message::<EdgeToClient>(&b, LIMIT).unwrap_err();
    assert!(
        err.to_string().contains("larger than this channel accepts")
            || err.to_string().contains("decode"),
        "{err}"
    );
}

#[test]
fn only_the_credential_messages_say_so() {
    let hello = ClientToEdge::Hello {
        version: PROTOCOL_VERSION,
        nonce: String::new(),
        user: UserInfo { servers: vec![] },
        supersedes: vec![],
        carried: vec![],
        oldest: 0,
        restarted: false,
        resumes: true,
    };
    assert!(hello.carries_credentials());
    assert!(!ClientToEdge::Quit.carries_credentials());
    assert!(
        !ClientToEdge::Delivered {
            server: "a".into(),
            at: vec![]
        }
        .carries_credentials()
    );
    let open = EdgeToRelay::Open {
        version: PROTOCOL_VERSION,
        server: ServerSpec {
            name: "H".into(),
            protocol: Protocol::Pop3,
            host: "h".into(),
            port: 110,
            tls: TlsMode::None,
            user: "u".into(),
            password: Secret::new(b"p".to_vec()),
            route: Route::Direct,
            folder: causeway_proto::user::INBOX.into(),
        },
    };
    assert!(open.carries_credentials());
    assert!(!EdgeToRelay::Quit.carries_credentials());
    assert!(!EdgeToClient::Pong { nonce: 1 }.carries_credentials());
    assert!(!RelayToEdge::Pong { nonce: 1 }.carries_credentials());
}

#[test]
fn bodies_are_encoded_as_bytes_not_as_a_sequence() {
    // serde_bytes: a 1000-byte body costs its length prefix plus 1000 bytes.
    let m = EdgeToClient::Response {
        id: 1,
        result: Ok(Reply::Body(vec![0xff; 1000])),
    };
    let n = encode(&m).unwrap().len();
    assert!(n <= 1000 + 8, "{n}");
}
