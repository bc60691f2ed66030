//! Logging in: `LOGIN`, or `AUTHENTICATE PLAIN` where the server offers
//! it, chosen from the server's capabilities ([`command::Login::choose`]).
//! Apart from the other commands because `AUTHENTICATE` is a dialogue
//! (a continuation request, the response, then the answer) with events of
//! its own in imap-next.

use imap_next::State;
use imap_next::client::Event;
use imap_types::command::CommandBody;
use imap_types::response::StatusKind;

use super::{ImapClient, ImapError, Said, refused, status_body};
use crate::command;
use causeway_net::{Env, Stream};

impl<E: Env, S: Stream> ImapClient<E, S> {
    /// `LOGIN`. A refusal is [`ImapError::Refused`]; see
    /// [`ImapError::is_authentication`].
    pub async fn login(&mut self, user: &str, password: &[u8]) -> Result<(), ImapError> {
        let cmd = command::login(user, password)?;
        self.capabilities_fresh = false;
        self.run(cmd, "LOGIN").await.map(drop)
    }

    /// Logs in the way the server offers ([`command::Login::choose`]):
    /// `AUTHENTICATE PLAIN` where it lists `AUTH=PLAIN` (SASL-IR: one round
    /// trip, as LOGIN; else two), `LOGIN` otherwise, and
    /// [`ImapError::NoLogin`] when it lists `LOGINDISABLED` without
    /// `AUTH=PLAIN` (nothing is sent then). Asks `CAPABILITY` first unless
    /// the greeting listed them.
    pub async fn log_in(&mut self, user: &str, password: &[u8]) -> Result<(), ImapError> {
        match command::Login::choose(self.capabilities().await?) {
            command::Login::Plain { initial_response } => {
                self.authenticate_plain(user, password, initial_response)
                    .await
            }
            command::Login::Login => self.login(user, password).await,
            command::Login::None => Err(ImapError::NoLogin),
        }
    }

    /// `AUTHENTICATE PLAIN` (RFC 4616): the response is the empty
    /// authorisation identity, the user and the password, sent with the
    /// command (`initial_response`, RFC 4959) or after the server's
    /// continuation request.
    async fn authenticate_plain(
        &mut self,
        user: &str,
        password: &[u8],
        initial_response: bool,
    ) -> Result<(), ImapError> {
        if self.broken {
            return Err(ImapError::Broken);
        }
        let response = command::plain_response(user, password)?;
        self.capabilities_fresh = false;
        let r = self.authenticate_inner(response, initial_response).await;
        match r {
            Err(ImapError::Refused { .. }) => r,
            r => self.poison_on_err(r),
        }
    }

    async fn authenticate_inner(
        &mut self,
        response: Vec<u8>,
        initial_response: bool,
    ) -> Result<(), ImapError> {
        use imap_types::auth::{AuthMechanism, AuthenticateData};
        use imap_types::secret::Secret;
        const WHAT: &str = "AUTHENTICATE";
        let secret = |r: &[u8]| Secret::new(std::borrow::Cow::Owned(r.to_vec()));
        let body = CommandBody::Authenticate {
            mechanism: AuthMechanism::Plain,
            initial_response: initial_response.then(|| secret(&response)),
        };
        // AUTHENTICATE's answer comes as its own event: none other is
        // awaited.
        self.enqueue(vec![body], WHAT);
        let none = std::collections::VecDeque::new();
        let mut sent = initial_response;
        loop {
            match self.client.next() {
                Ok(Event::AuthenticateStarted { .. }) => {}
                Ok(Event::AuthenticateContinuationRequestReceived { .. }) => {
                    // Once only: a second request means the server did not
                    // take the response; cancelling gets its tagged answer.
                    let data = if sent {
                        AuthenticateData::Cancel
                    } else {
                        AuthenticateData::Continue(secret(&response))
                    };
                    sent = true;
                    if self.client.set_authenticate_data(data).is_err() {
                        return Err(ImapError::Protocol(
                            "a continuation request outside AUTHENTICATE".into(),
                        ));
                    }
                }
                Ok(Event::AuthenticateStatusReceived { status, .. }) => {
                    let body = status_body(status);
                    if let Some(code) = &body.code {
                        self.take_code(code);
                    }
                    return match body.kind {
                        StatusKind::Ok => Ok(()),
                        _ => Err(refused(WHAT, body)),
                    };
                }
                Ok(Event::DataReceived { data }) => self.take_data(&data)?,
                Ok(Event::StatusReceived { status }) => match self.status(status, &none)? {
                    Said::Bye(text) => return Err(ImapError::Bye(text)),
                    Said::Untagged | Said::Answer(_) => {}
                },
                Ok(other) => {
                    return Err(ImapError::Protocol(format!(
                        "unexpected {other:?} while authenticating"
                    )));
                }
                Err(i) => self.interrupted(i, WHAT, self.timeouts.command).await?,
            }
        }
    }
}
