//! The configuration files: TOML, one file per node, mapped onto the node
//! crates' config structs.
//!
//! A file says which node it configures with a top-level `role = "edge"`,
//! `"relay"` or `"client"`. Every table refuses keys it does not know.
//! Secrets (private key, pre-shared key, passwords) come from exactly one of
//! `NAME = "..."`, `NAME_file = "/path"` (relative paths are relative to the
//! configuration file; one trailing line end is removed) or
//! `NAME_env = "VARIABLE"`.
//!
//! Loading collects every problem it can find, each with the line of the
//! offending key, so `causeway check-config` can list them all at once.
//! See `docs/configuration.md` for the schema, field by field.
//!
//! Layout: `common` holds what every role shares (problems with their
//! lines, durations, addresses, keys, secrets, the `[channel]` table); `edge`,
//! `relay` and `client` each own one role's file shape, defaults and checks.

mod client;
mod common;
mod edge;
pub mod fuzzing;
mod relay;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

pub use client::ClientSettings;
pub use common::{DEFAULT_SHUTDOWN_DEADLINE, Problem, Problems, parse_duration};
pub use edge::EdgeSettings;
pub use relay::RelaySettings;

use client::ClientFile;
use common::Cx;
use edge::EdgeFile;
use relay::RelayFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Edge,
    Relay,
    Client,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Edge => "edge",
            Role::Relay => "relay",
            Role::Client => "client",
        })
    }
}

#[derive(Debug)]
pub enum Settings {
    Edge(EdgeSettings),
    Relay(RelaySettings),
    Client(ClientSettings),
}

impl Settings {
    pub fn role(&self) -> Role {
        match self {
            Settings::Edge(_) => Role::Edge,
            Settings::Relay(_) => Role::Relay,
            Settings::Client(_) => Role::Client,
        }
    }
}

#[derive(Deserialize)]
struct RoleOnly {
    role: Option<Spanned<toml::Value>>,
}

/// Reads and checks `path`; every problem found, or the settings.
pub fn load(path: &Path) -> Result<Settings, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| Problems {
        path: path.to_owned(),
        list: vec![Problem {
            line: None,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    let base = path.parent().map(Path::to_owned).unwrap_or_default();
    parse(&text, &base).map_err(|list| Problems {
        path: path.to_owned(),
        list,
    })
}

/// Parses configuration `text`; `base` is where relative `*_file` paths start.
pub fn parse(text: &str, base: &Path) -> Result<Settings, Vec<Problem>> {
    let mut cx = Cx::new(text, base);
    let role = match toml::from_str::<RoleOnly>(text) {
        Err(e) => {
            cx.toml_error(&e);
            return Err(cx.problems);
        }
        Ok(RoleOnly { role: None }) => {
            cx.problems.push(Problem {
                line: None,
                message: "no `role`: the file must say which node it configures, with a \
                          top-level `role = \"edge\"`, `role = \"relay\"` or `role = \"client\"`"
                    .into(),
            });
            return Err(cx.problems);
        }
        Ok(RoleOnly { role: Some(r) }) => match r.get_ref().as_str() {
            Some("edge") => Role::Edge,
            Some("relay") => Role::Relay,
            Some("client") => Role::Client,
            _ => {
                cx.at(
                    r.span(),
                    format!(
                        "role is {}; it must be \"edge\", \"relay\" or \"client\"",
                        r.get_ref()
                    ),
                );
                return Err(cx.problems);
            }
        },
    };
    let settings = match role {
        Role::Edge => cx
            .deserialize::<EdgeFile>()
            .and_then(|f| cx.edge(f).map(Settings::Edge)),
        Role::Relay => cx
            .deserialize::<RelayFile>()
            .and_then(|f| cx.relay(f).map(Settings::Relay)),
        Role::Client => cx
            .deserialize::<ClientFile>()
            .and_then(|f| cx.client(f).map(Settings::Client)),
    };
    match settings {
        Some(s) if cx.problems.is_empty() => Ok(s),
        _ => {
            if cx.problems.is_empty() {
                cx.problems.push(Problem {
                    line: None,
                    message: "the configuration is invalid".into(),
                });
            }
            cx.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(cx.problems)
        }
    }
}
