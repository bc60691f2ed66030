//! POP3 to a mail server: one logged-in session ([`Pop3Session`]) and the
//! numbering of its messages by UIDL ([`Numbering`]).

mod numbering;
mod session;

pub use numbering::{Numbering, Resolved};
pub use session::{Pop3Session, err_code, refusal};
