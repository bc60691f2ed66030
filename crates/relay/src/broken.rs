//! A deliberately broken relay, for proving that the fault simulation
//! catches it. It acts only in a build with the `broken-variants` feature;
//! elsewhere `RelayConfig::broken` is constant `false`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// End a lost link's server session with a plain QUIT, committing what
    /// the edge sent, as the relay once did: a delete the mail client undid
    /// with RSET is committed if the RSET never crossed.
    CommitOnLinkLoss,
}

impl Broken {
    pub const ALL: [Broken; 1] = [Broken::CommitOnLinkLoss];

    pub fn name(self) -> &'static str {
        match self {
            Broken::CommitOnLinkLoss => "relay-commits-on-link-loss",
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
