//! One node from start to exit: start it on the chosen runtime, join (the
//! node retries as configured), read its events, take commands (lines
//! mode), and stop on `quit` (shut down) or on a signal (leave, then shut
//! down).

use std::sync::Arc;

use futures_util::future::{self, Either};
use metrics_exporter_prometheus::PrometheusHandle;
use swim_node::{Error, Events, Node, Seed};
use tracing::{error, info, warn};

use crate::http::Server;
use crate::lines::{self, Next};
use crate::settings::{AgentOptions, Loaded, Mode, RuntimeKind};
use crate::signals::StopSignal;
use crate::view::{Lifecycle, Observed, Observer, Phase};

/// The HTTP listener to start once the node runs, with its metrics.
#[derive(Debug)]
pub struct Http {
    /// The bound listener.
    pub server: Server,
    /// The installed Prometheus recorder.
    pub prometheus: PrometheusHandle,
}

/// Why the agent stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `quit` or the end of stdin: shut down without leaving.
    Quit,
    /// SIGTERM or SIGINT: leave first (unless `leave_on_stop` is off).
    Signal(StopSignal),
}

/// Runs the node until it stops; an error means it could not start.
pub fn run(
    loaded: Loaded,
    signals: async_channel::Receiver<StopSignal>,
    http: Option<Http>,
) -> Result<(), String> {
    let Loaded {
        config,
        node: node_config,
        seeds,
        ..
    } = loaded;
    let options = config.agent;
    match options.runtime {
        RuntimeKind::Tokio => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start tokio: {e}"))?;
            runtime.block_on(async {
                let (node, events) = swim_tokio::start(node_config)
                    .await
                    .map_err(|e| e.to_string())?;
                session(node, events, options, seeds, signals, http).await
            })
        }
        RuntimeKind::AsyncStd => async_std::task::block_on(async {
            let (node, events) = swim_async_std::start(node_config)
                .await
                .map_err(|e| e.to_string())?;
            session(node, events, options, seeds, signals, http).await
        }),
    }
}

async fn session(
    node: Node,
    events: Events,
    options: AgentOptions,
    seeds: Vec<Seed>,
    signals: async_channel::Receiver<StopSignal>,
    http: Option<Http>,
) -> Result<(), String> {
    let lifecycle = Arc::new(Lifecycle::default());
    let observer = match http {
        Some(Http { server, prometheus }) => Some(
            server
                .start(node.clone(), lifecycle.clone(), prometheus)
                .map_err(|e| format!("agent.http: cannot start the listener: {e}"))?,
        ),
        None => None,
    };
    let note = |text: String| {
        if let Some(observer) = &observer {
            observer.send(Observed::Agent(text));
        }
    };
    let local = node.local_node();
    let lines_mode = options.mode == Mode::Lines;
    if lines_mode {
        lines::print(lines::ready(&local));
    }
    info!(node = %local.name, addr = %local.addr, mode = ?options.mode, "agent ready");
    note(format!("started at {}", local.addr));
    if !options.state.is_empty() {
        let _ = node.set_local_state(options.state.as_bytes()).await;
    }
    // Closed when the agent stops, which ends a join still retrying.
    let (stopping, stopped) = async_channel::bounded::<()>(1);

    let reader = async {
        while let Some(event) = events.recv().await {
            if let (Some(observer), Some(observed)) = (&observer, Observed::of(&event)) {
                observer.send(observed);
            }
            if lines_mode {
                if let Some(line) = lines::event_json(&event) {
                    lines::print(line);
                }
            }
        }
    };
    let joiner = async {
        let join = join(&node, &seeds, lines_mode, &observer);
        let cancelled = stopped.recv();
        future::select(std::pin::pin!(join), std::pin::pin!(cancelled)).await;
    };
    let control = async {
        let stop = if lines_mode {
            take_commands(&node, &signals).await
        } else {
            match signals.recv().await {
                Ok(signal) => Stop::Signal(signal),
                // No signal can arrive: run until killed.
                Err(_) => future::pending().await,
            }
        };
        drop(stopping);
        match stop {
            Stop::Quit => info!("quit: shutting down without leaving"),
            Stop::Signal(signal) => {
                lifecycle.set(Phase::Leaving);
                note(format!("{}: stopping", signal.name));
                leave(&node, &options, signal).await;
                lifecycle.set(Phase::Stopping);
            }
        }
        node.shutdown().await;
        info!("node shut down; exiting");
    };
    future::join3(reader, joiner, control).await;
    Ok(())
}

/// Reads commands until `quit`, the end of input, or a signal.
async fn take_commands(node: &Node, signals: &async_channel::Receiver<StopSignal>) -> Stop {
    let commands = lines::read_commands();
    let mut signals_open = true;
    loop {
        let command = std::pin::pin!(commands.recv());
        if !signals_open {
            match command.await {
                Ok(line) if lines::execute(node, line.trim()).await == Next::Continue => continue,
                _ => return Stop::Quit,
            }
        }
        match future::select(command, std::pin::pin!(signals.recv())).await {
            Either::Left((Ok(line), _)) => {
                if lines::execute(node, line.trim()).await == Next::Quit {
                    return Stop::Quit;
                }
            }
            Either::Left((Err(_), _)) => return Stop::Quit,
            Either::Right((Ok(signal), _)) => return Stop::Signal(signal),
            Either::Right((Err(_), _)) => signals_open = false,
        }
    }
}

/// Leaves the cluster for a stop asked by `signal`, unless told not to.
async fn leave(node: &Node, options: &AgentOptions, signal: StopSignal) {
    if !options.leave_on_stop {
        warn!(
            signal = signal.name,
            "stopping without leaving (agent.leave_on_stop = false): peers will see a failure"
        );
        return;
    }
    let timeout = options.leave_timeout;
    info!(signal = signal.name, ?timeout, "leaving the cluster");
    match node.leave(timeout).await {
        Ok(()) => info!("left the cluster"),
        Err(Error::LeaveTimedOut) => warn!(
            ?timeout,
            "the leave did not finish spreading in time; shutting down anyway"
        ),
        Err(e) => warn!(error = %e, "leave failed; shutting down anyway"),
    }
}

/// Joins through `seeds` (the node retries as `node.join_retries` and the
/// delays after it say); reports the outcome on stdout in lines mode, in
/// the log otherwise.
async fn join(node: &Node, seeds: &[Seed], lines_mode: bool, observer: &Option<Observer>) {
    if seeds.is_empty() {
        return;
    }
    let note = |text: String| {
        if let Some(observer) = observer {
            observer.send(Observed::Agent(text));
        }
    };
    match node.join(seeds).await {
        Ok(count) => {
            info!(count, "joined the cluster");
            note(format!("joined through {count} seed address(es)"));
            if lines_mode {
                lines::print(lines::joined(count));
            }
        }
        Err(Error::Shutdown) => {}
        Err(e) => {
            note(format!("join failed: {e}"));
            if lines_mode {
                lines::report("join", &e.to_string());
            } else {
                error!(error = %e, "join failed; running alone");
            }
        }
    }
}
