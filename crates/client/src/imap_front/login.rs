//! Logging in at the IMAP front: LOGIN and AUTHENTICATE PLAIN become the
//! POP3 session's USER and PASS (the local check, then the edge session),
//! and the listing that numbers the folder.

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_next::types::CommandAuthenticate;
use causeway_imap::imap_types::auth::{AuthMechanism, AuthenticateData};
use causeway_imap::imap_types::core::Tag;
use causeway_imap::imap_types::response::{CommandContinuationRequest, Status};
use causeway_net::Env;

use super::commands::{Flow, Front, State};
use super::recheck::Unlisted;
use super::replies::{bad, capability_code, code, no, ok, refusal};

impl<E: Env> Front<E> {
    pub(super) async fn login(
        &mut self,
        tag: Tag<'static>,
        user: &[u8],
        password: &[u8],
    ) -> Result<Status<'static>, (Status<'static>, bool)> {
        // A POP3 command line cannot carry these; no local user has them.
        if [user, password]
            .iter()
            .any(|b| b.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0)))
        {
            return Err((
                no(
                    tag,
                    Some(code("AUTHENTICATIONFAILED")),
                    "invalid user name or password",
                ),
                false,
            ));
        }
        let logged_in = match self.maildrop() {
            Ok(m) => m.login(user, password).await,
            Err(e) => Err(e),
        };
        if let Err(e) = logged_in {
            let (c, t, over) = refusal(&e);
            return Err((no(tag, c, t), over));
        }
        match self.list_folder().await {
            Ok(listed) => self.show(listed),
            Err(Unlisted::Session(e)) => {
                let (c, t, over) = refusal(&e);
                return Err((no(tag, c, t), over));
            }
            Err(Unlisted::Book) => {
                let text = "cannot keep this folder's UIDs now; try again later";
                return Err((no(tag, Some(code("UNAVAILABLE")), text), true));
            }
        }
        self.state = State::Authed;
        Ok(ok(tag, Some(capability_code(true)), "logged in"))
    }

    pub(super) fn logged_in(
        &mut self,
        server: &mut Server,
        status: Result<Status<'static>, (Status<'static>, bool)>,
    ) -> Flow {
        match status {
            Ok(s) => {
                server.enqueue_status(s);
                Flow::Go
            }
            Err((s, over)) => {
                server.enqueue_status(s);
                if over {
                    self.maildrop = None;
                    return Flow::Close("the login failed for good");
                }
                Flow::Go
            }
        }
    }

    pub async fn authenticate(&mut self, server: &mut Server, a: CommandAuthenticate) {
        if self.state != State::Greeted {
            let _ = server.authenticate_finish(bad(a.tag, "already logged in"));
            return;
        }
        if a.mechanism != AuthMechanism::Plain {
            let _ = server.authenticate_finish(no(
                a.tag,
                Some(code("CANNOT")),
                "only AUTHENTICATE PLAIN is served",
            ));
            return;
        }
        match a.initial_response {
            Some(data) => self.plain(server, a.tag, data.declassify()).await,
            None => {
                self.authenticating = Some(a.tag);
                let _ = server
                    .authenticate_continue(CommandContinuationRequest::base64(b"".as_slice()));
            }
        }
    }

    pub async fn authenticate_data(
        &mut self,
        server: &mut Server,
        data: AuthenticateData<'static>,
    ) {
        let Some(tag) = self.authenticating.take() else {
            return;
        };
        match data {
            AuthenticateData::Continue(d) => self.plain(server, tag, d.declassify()).await,
            AuthenticateData::Cancel => {
                let _ = server.authenticate_finish(bad(tag, "AUTHENTICATE cancelled"));
            }
        }
    }

    /// SASL PLAIN (RFC 4616): `authzid NUL authcid NUL password`; an
    /// authorisation identity other than the user is refused.
    async fn plain(&mut self, server: &mut Server, tag: Tag<'static>, data: &[u8]) {
        let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
        let status = match parts.as_slice() {
            [authz, user, password] if authz.is_empty() || authz == user => {
                self.login(tag, user, password).await
            }
            _ => Err((
                no(
                    tag,
                    Some(code("AUTHENTICATIONFAILED")),
                    "invalid PLAIN credentials",
                ),
                false,
            )),
        };
        let (s, over) = match status {
            Ok(s) => (s, false),
            Err(e) => e,
        };
        let _ = server.authenticate_finish(s);
        if over {
            self.maildrop = None;
        }
    }
}
