//! Nodes as tasks in this process: the configuration file is parsed as the
//! binary parses it, and the node runs on the given [`Env`] (the client
//! proxy on an env of its own, so the demo can record what the mail client
//! sees), each task placed by a [`Spawn`] (the benchmarks give every node an
//! OS thread of its own, to read each one's CPU time).

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use causeway_client::{ClientState, run_client_counted};
use causeway_edge::{EdgeState, run_edge};
use causeway_net::{Env, Listener};
use causeway_relay::{RelayState, run_relay};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::Launcher;
use crate::config::{self, Role, Settings};

/// A node's whole life, as a task.
pub type NodeTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where a node's task runs.
pub trait Spawn {
    fn spawn(&self, role: Role, task: NodeTask) -> JoinHandle<()>;
}

/// On the current tokio runtime.
pub struct TokioSpawn;

impl Spawn for TokioSpawn {
    fn spawn(&self, _role: Role, task: NodeTask) -> JoinHandle<()> {
        tokio::spawn(task)
    }
}

pub struct InProcess<E: Env, C: Env = E, S: Spawn = TokioSpawn> {
    env: E,
    client_env: C,
    spawn: S,
    stop: watch::Sender<bool>,
    /// The edge's and relay's live counts, for settling and checks, and
    /// the client proxy's.
    pub edge: EdgeState,
    pub relay: RelayState,
    pub client: ClientState,
    tasks: Vec<JoinHandle<()>>,
}

impl<E: Env> InProcess<E> {
    /// Every node on `env`, spawned on the current runtime.
    pub fn new(env: E) -> Self {
        Self::with(env.clone(), env, TokioSpawn)
    }
}

impl<E: Env, C: Env, S: Spawn> InProcess<E, C, S> {
    pub fn with(env: E, client_env: C, spawn: S) -> Self {
        InProcess {
            env,
            client_env,
            spawn,
            stop: watch::channel(false).0,
            edge: EdgeState::new(),
            client: ClientState::new(),
            relay: RelayState::new(),
            tasks: Vec::new(),
        }
    }

    /// Asks every node to shut down as on SIGTERM (the edge commits what it
    /// acknowledged and QUITs its servers).
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until every node's task has ended.
    pub async fn finished(&mut self) {
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    /// True once some node stopped on its own (an error, or shut down).
    pub fn any_stopped(&self) -> bool {
        self.tasks.iter().any(|t| t.is_finished())
    }
}

impl<E: Env, C: Env, S: Spawn> Drop for InProcess<E, C, S> {
    fn drop(&mut self) {
        self.shutdown();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds `listen` on `env`, says where, then runs `node` on the listener.
fn node<Env2, F, Fut>(
    env: Env2,
    listen: String,
    also: Option<String>,
    bound: oneshot::Sender<io::Result<String>>,
    node: F,
) -> NodeTask
where
    Env2: Env,
    F: FnOnce(Env2, Env2::Listener, Option<Env2::Listener>) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    Box::pin(async move {
        // Both listeners are bound before the node counts as listening.
        let mut listeners = Vec::new();
        for address in std::iter::once(&listen).chain(also.as_ref()) {
            match env.bind(address).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    let _ = bound.send(Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {address}: {e}"),
                    )));
                    return;
                }
            }
        }
        let also = if listeners.len() > 1 {
            listeners.pop()
        } else {
            None
        };
        let listener = listeners.pop().expect("bound above");
        let _ = bound.send(listener.local_addr().map(|a| a.to_string()));
        if let Err(e) = node(env, listener, also).await {
            tracing::error!(error = %e, "node stopped");
        }
    })
}

impl<E: Env, C: Env, S: Spawn> Launcher for InProcess<E, C, S> {
    async fn start(&mut self, role: Role, file: &Path) -> io::Result<String> {
        let settings = config::load(file)
            .map_err(|p| io::Error::new(io::ErrorKind::InvalidInput, p.to_string()))?;
        if settings.role() != role {
            return Err(io::Error::other(format!(
                "{} configures a {}, not a {role}",
                file.display(),
                settings.role()
            )));
        }
        let (bound, listening) = oneshot::channel();
        let stop = self.stop.subscribe();
        let task = match settings {
            Settings::Relay(s) => {
                let (state, config) = (self.relay.clone(), Arc::new(s.config));
                node(self.env.clone(), s.listen, None, bound, move |env, l, _| {
                    run_relay(env, l, config, state, stop)
                })
            }
            Settings::Edge(s) => {
                let listen = s.listen.clone();
                let config = Arc::new(crate::run::edge_config(s)?);
                let state = self.edge.clone();
                node(self.env.clone(), listen, None, bound, move |env, l, _| {
                    run_edge(env, l, config, state, stop)
                })
            }
            Settings::Client(s) => {
                let (listen, imap) = (s.config.listen.clone(), s.config.imap_listen.clone());
                let config = Arc::new(crate::run::client_config(s)?);
                let state = self.client.clone();
                node(
                    self.client_env.clone(),
                    listen,
                    imap,
                    bound,
                    move |env, l, imap| run_client_counted(env, l, imap, config, state, stop),
                )
            }
        };
        self.tasks.push(self.spawn.spawn(role, task));
        listening
            .await
            .map_err(|_| io::Error::other(format!("the {role}'s task ended before it listened")))?
    }
}
