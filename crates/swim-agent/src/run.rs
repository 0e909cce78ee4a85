//! One node from start to exit: start it on the chosen runtime, join
//! (trying again as `node.join_retries` says, and counting the attempts),
//! read its events, take commands (lines mode), reload on SIGHUP, and stop
//! on `quit` (shut down) or on a stop signal (leave, then shut down).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::{self, Either};
use metrics_exporter_prometheus::PrometheusHandle;
use swim_node::{Error, Events, JoinRetries, Node, NodeConfig, Seed};
use tracing::{error, info, warn};

use crate::http::Server;
use crate::lines::{self, Next};
use crate::logging::Log;
use crate::settings::{
    read_keys_file, AgentConfig, AgentOptions, Loaded, Mode, RuntimeKind, Sources,
};
use crate::signals::{Request, StopSignal};
use crate::view::{JoinState, Lifecycle, Observed, Observer, Phase};

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
    /// A stop signal: leave first (unless `leave_on_stop` is off).
    Signal(StopSignal),
}

/// How the agent joins: the node's retry settings, applied here so that
/// every attempt is counted and one answered only by this node itself is
/// not taken for a join.
#[derive(Debug, Clone)]
struct JoinPlan {
    seeds: Vec<Seed>,
    retries: JoinRetries,
    delay: Duration,
    max_delay: Duration,
}

/// What the agent runs with, and what a reload compares against.
struct Session {
    options: AgentOptions,
    config: AgentConfig,
    keys: Vec<String>,
    sources: Sources,
    log: Log,
    lifecycle: Arc<Lifecycle>,
    observer: Option<Observer>,
}

impl Session {
    fn note(&self, text: String) {
        if let Some(observer) = &self.observer {
            observer.send(Observed::Agent(text));
        }
    }
}

/// Runs the node until it stops; an error means it could not start.
pub fn run(
    loaded: Loaded,
    sources: Sources,
    signals: async_channel::Receiver<Request>,
    http: Option<Http>,
    log: Log,
) -> Result<(), String> {
    let bind_origin = loaded.origin("node.bind");
    let keys = keys_of(&loaded.config).unwrap_or_default();
    let Loaded {
        config,
        node: mut node_config,
        seeds,
        ..
    } = loaded;
    let plan = JoinPlan {
        seeds,
        retries: node_config.join_retries,
        delay: node_config.join_retry_delay,
        max_delay: node_config.join_retry_max_delay,
    };
    // One pass over the seeds per call: the retries are the agent's.
    node_config.join_retries = JoinRetries::Times(0);
    let bind = node_config.bind;
    let cannot_start = move |e: swim_node::StartError| match e {
        // The node names its own setting; an operator sets ours.
        swim_node::StartError::Advertise(why) => {
            format!("{bind_origin}: node.bind: {why} (here: --advertise or node.advertise)")
        }
        e => format!("{bind_origin}: node.bind: cannot start the node on {bind}: {e}"),
    };
    let session = Session {
        options: config.agent.clone(),
        config,
        keys,
        sources,
        log,
        lifecycle: Arc::new(Lifecycle::default()),
        observer: None,
    };
    match session.options.runtime {
        RuntimeKind::Tokio => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start tokio: {e}"))?;
            runtime.block_on(async {
                let (node, events) = start_tokio(node_config).await.map_err(cannot_start)?;
                serve(node, events, session, plan, signals, http).await
            })
        }
        RuntimeKind::AsyncStd => async_std::task::block_on(async {
            let (node, events) = swim_async_std::start(node_config)
                .await
                .map_err(cannot_start)?;
            serve(node, events, session, plan, signals, http).await
        }),
    }
}

async fn start_tokio(config: NodeConfig) -> Result<(Node, Events), swim_node::StartError> {
    swim_tokio::start(config).await
}

async fn serve(
    node: Node,
    events: Events,
    mut session: Session,
    plan: JoinPlan,
    signals: async_channel::Receiver<Request>,
    http: Option<Http>,
) -> Result<(), String> {
    if let Some(Http { server, prometheus }) = http {
        session.observer = Some(
            server
                .start(node.clone(), session.lifecycle.clone(), prometheus)
                .map_err(|e| format!("agent.http: cannot start the listener: {e}"))?,
        );
    }
    let local = node.local_node();
    let lines_mode = session.options.mode == Mode::Lines;
    if lines_mode {
        lines::print(lines::ready(&local));
    }
    info!(node = %local.name, addr = %local.addr, mode = ?session.options.mode, "agent ready");
    session.note(format!("started at {}", local.addr));
    if !session.options.state.is_empty() {
        let _ = node.set_local_state(session.options.state.as_bytes()).await;
    }
    // Closed when the agent stops, which ends a join still retrying.
    let (stopping, stopped) = async_channel::bounded::<()>(1);
    let observer = session.observer.clone();
    let lifecycle = session.lifecycle.clone();

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
        let join = join(&node, &plan, lines_mode, &observer, &lifecycle);
        let cancelled = stopped.recv();
        future::select(std::pin::pin!(join), std::pin::pin!(cancelled)).await;
    };
    let control = async {
        let stop = if lines_mode {
            take_commands(&node, &signals, &mut session).await
        } else {
            next_stop(&node, &signals, &mut session).await
        };
        drop(stopping);
        match stop {
            Stop::Quit => info!("quit: shutting down without leaving"),
            Stop::Signal(signal) => {
                session.lifecycle.set(Phase::Leaving);
                session.note(format!("{}: stopping", signal.name));
                leave(&node, &session.options, signal).await;
                session.lifecycle.set(Phase::Stopping);
            }
        }
        node.shutdown().await;
        info!("node shut down; exiting");
    };
    future::join3(reader, joiner, control).await;
    Ok(())
}

/// Waits for a stop signal, reloading on every SIGHUP meanwhile.
async fn next_stop(
    node: &Node,
    signals: &async_channel::Receiver<Request>,
    session: &mut Session,
) -> Stop {
    loop {
        match signals.recv().await {
            Ok(Request::Stop(signal)) => return Stop::Signal(signal),
            Ok(Request::Reload) => reload(node, session).await,
            // No signal can arrive: run until killed.
            Err(_) => future::pending().await,
        }
    }
}

/// Reads commands until `quit`, the end of input, or a stop signal.
async fn take_commands(
    node: &Node,
    signals: &async_channel::Receiver<Request>,
    session: &mut Session,
) -> Stop {
    let commands = lines::read_commands();
    loop {
        let command = std::pin::pin!(commands.recv());
        let signal = std::pin::pin!(signals.recv());
        match future::select(command, signal).await {
            Either::Left((Ok(line), _)) => {
                if lines::execute(node, line.trim()).await == Next::Quit {
                    return Stop::Quit;
                }
            }
            Either::Left((Err(_), _)) => return Stop::Quit,
            Either::Right((Ok(Request::Stop(signal)), _)) => return Stop::Signal(signal),
            Either::Right((Ok(Request::Reload), _)) => reload(node, session).await,
            Either::Right((Err(_), command)) => {
                // No signal can arrive any more: commands only.
                return match command.await {
                    Ok(line) if lines::execute(node, line.trim()).await == Next::Continue => loop {
                        match commands.recv().await {
                            Ok(line)
                                if lines::execute(node, line.trim()).await == Next::Continue => {}
                            _ => break Stop::Quit,
                        }
                    },
                    _ => Stop::Quit,
                };
            }
        }
    }
}

/// The encryption keys `config` gives, primary first.
fn keys_of(config: &AgentConfig) -> Result<Vec<String>, String> {
    match &config.agent.keys_file {
        Some(path) => read_keys_file(path).map_err(|e| e.to_string()),
        None => Ok(config.node.keys.clone()),
    }
}

/// SIGHUP: reads the configuration again and applies what can change while
/// the node runs — the log filter and the encryption keys (installed,
/// made primary, removed on the live node) — and logs every other changed
/// setting as waiting for a restart. An invalid configuration changes
/// nothing.
async fn reload(node: &Node, session: &mut Session) {
    let mut loaded = match session.sources.load() {
        Ok(loaded) => loaded,
        Err(e) => {
            error!(error = %e, "reload: the configuration is invalid; nothing changed");
            session.note(format!("reload refused: {e}"));
            return;
        }
    };
    loaded.resolve_mode();
    let new = loaded.config;
    let mut applied = Vec::new();
    if new.agent.log != session.config.agent.log {
        match session.log.set(&new.agent.log) {
            Ok(()) => applied.push(format!("agent.log = {:?}", new.agent.log)),
            Err(e) => warn!(error = %e, "reload: agent.log not applied"),
        }
    }
    match keys_of(&new) {
        Ok(keys) if keys != session.keys => match rekey(node, &session.keys, &keys).await {
            Ok(()) => {
                applied.push(format!("{} encryption key(s)", keys.len()));
                session.keys = keys;
            }
            Err(e) => error!(error = %e, "reload: the keys could not all be changed"),
        },
        Ok(_) => {}
        Err(e) => error!(error = %e, "reload: the keys file cannot be read; keys unchanged"),
    }
    let later = changed_keys(&session.config, &new);
    if !later.is_empty() {
        warn!(
            settings = %later.join(", "),
            "reload: these settings changed but take effect only after a restart"
        );
    }
    info!(applied = %applied.join("; "), "configuration reloaded");
    session.note(format!(
        "reloaded: {}",
        if applied.is_empty() {
            "nothing to change at run time".to_string()
        } else {
            applied.join("; ")
        }
    ));
    session.config = new;
}

/// Moves the live node's keyring from `old` to `new`: installs the new
/// keys, makes the new primary the one used, then removes the old keys.
async fn rekey(node: &Node, old: &[String], new: &[String]) -> Result<(), String> {
    let parse = |k: &String| swim_node::parse_key(k);
    for key in new.iter().filter(|k| !old.contains(k)) {
        node.add_key(parse(key)?)
            .await
            .map_err(|e| format!("key-add: {e}"))?;
    }
    if let Some(primary) = new.first() {
        if old.first() != Some(primary) {
            node.use_key(parse(primary)?)
                .await
                .map_err(|e| format!("key-use: {e}"))?;
        }
    }
    for key in old.iter().filter(|k| !new.contains(k)) {
        node.remove_key(parse(key)?)
            .await
            .map_err(|e| format!("key-remove: {e}"))?;
    }
    Ok(())
}

/// The settings that differ between `old` and `new` and that a reload
/// cannot apply (all but the log filter and the keys).
fn changed_keys(old: &AgentConfig, new: &AgentConfig) -> Vec<String> {
    let flat = |config: &AgentConfig| -> Vec<(String, serde_json::Value)> {
        let mut config = config.clone();
        if let Ok(node) = config.node.effective() {
            config.node = node;
        }
        let value = serde_json::to_value(&config).unwrap_or_default();
        let mut out = Vec::new();
        for (section, table) in value.as_object().into_iter().flatten() {
            for (key, v) in table.as_object().into_iter().flatten() {
                out.push((format!("{section}.{key}"), v.clone()));
            }
        }
        out
    };
    let before = flat(old);
    flat(new)
        .into_iter()
        .filter(|(key, _)| !["agent.log", "agent.keys_file", "node.keys"].contains(&key.as_str()))
        .filter(|(key, value)| before.iter().find(|(k, _)| k == key).map(|(_, v)| v) != Some(value))
        .map(|(key, _)| key)
        .collect()
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
        Err(e) => {
            warn!(error = %e, "leave failed; shutting down anyway");
            return;
        }
    }
    // Our departure went to a few peers; the others hear it from them
    // within a few gossip rounds. Answering probes meanwhile keeps a peer
    // the news has not reached from suspecting a node that went silent.
    let delay = options.leave_propagate_delay;
    if !delay.is_zero() {
        info!(?delay, "answering probes while the leave spreads");
        sleep(delay).await;
    }
}

/// Joins through the plan's seeds, one pass over them per attempt, pausing
/// between attempts as `node.join_retries` and its delays say. An attempt
/// that only this node answered (its own address among the seeds, a name
/// resolving to itself alone) is not a join. The outcome goes to stdout in
/// lines mode, to the log otherwise, and to `/v1/health` either way.
async fn join(
    node: &Node,
    plan: &JoinPlan,
    lines_mode: bool,
    observer: &Option<Observer>,
    lifecycle: &Lifecycle,
) {
    if plan.seeds.is_empty() {
        return;
    }
    let note = |text: String| {
        if let Some(observer) = observer {
            observer.send(Observed::Agent(text));
        }
    };
    let mut pause = plan.delay;
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        lifecycle.set_join(JoinState::Joining, attempt, None);
        let failure = match node.join(&plan.seeds).await {
            Ok(count) if node.members().len() > 1 => {
                info!(count, attempt, "joined the cluster");
                lifecycle.set_join(JoinState::Joined, attempt, None);
                note(format!(
                    "joined through {count} seed address(es), attempt {attempt}"
                ));
                if lines_mode {
                    lines::print(lines::joined(count));
                }
                return;
            }
            Ok(_) => "only this node itself answered: its own address is the only seed that \
                      answered, which is not a join"
                .to_string(),
            Err(Error::Shutdown) => return,
            Err(e) => e.to_string(),
        };
        let retries_left = match plan.retries {
            JoinRetries::Forever => true,
            JoinRetries::Times(n) => attempt <= u64::from(n),
        };
        if !retries_left {
            lifecycle.set_join(JoinState::Failed, attempt, Some(failure.clone()));
            note(format!("join failed after {attempt} attempt(s): {failure}"));
            if lines_mode {
                lines::report("join", &failure);
            } else {
                error!(
                    attempts = attempt,
                    error = %failure,
                    "join failed; running alone and not ready (see /v1/health)"
                );
            }
            return;
        }
        lifecycle.set_join(JoinState::Joining, attempt, Some(failure.clone()));
        let wait = jittered(pause);
        warn!(attempt, error = %failure, pause = ?wait, "join attempt failed; trying again");
        sleep(wait).await;
        pause = (pause * 2).min(plan.max_delay.max(plan.delay));
    }
}

/// `pause` give or take a tenth, so nodes started together spread out.
fn jittered(pause: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.9 + f64::from(nanos % 1000) / 5000.0;
    pause.mul_f64(factor)
}

/// A sleep that works on either runtime: a thread-free timer is not shared
/// between them, so the pause waits on a helper thread.
async fn sleep(pause: Duration) {
    let (tx, rx) = async_channel::bounded::<()>(1);
    std::thread::spawn(move || {
        std::thread::sleep(pause);
        let _ = tx.try_send(());
    });
    let _ = rx.recv().await;
}
