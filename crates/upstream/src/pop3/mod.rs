//! POP3 to a mail server: one logged-in session ([`ServerSession`]) and the
//! numbering of its messages by UIDL ([`Numbering`]).

mod numbering;
mod session;

pub use numbering::{Numbering, Resolved};
pub use session::{ServerSession, ServerTimeouts, err_code, refusal};
