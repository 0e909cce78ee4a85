//! swim-agent: one memberlist-compatible cluster node, as a service or as
//! a JSON-lines driver for tests and scripts.
//!
//! * Configuration: a TOML file (`--config-file`), overridden by
//!   `SWIM_NODE_*` / `SWIM_AGENT_*` environment variables, overridden by
//!   flags; `--print-config` shows the result with keys masked
//!   ([`settings`]).
//! * Signals: SIGTERM, SIGINT (and SIGQUIT, SIGPWR, SIGXCPU) leave the
//!   cluster, shut the node down and exit 0; a second one exits at once;
//!   SIGHUP reloads the log level and the keys file; other signals are
//!   ignored ([`signals`], [`run`]).
//! * Health: `/v1/health` answers 200 only once the node joined another
//!   and sees `agent.min_members` alive ([`view`]).
//! * Watching: `--http HOST:PORT` serves a page of the cluster, Prometheus
//!   metrics under memberlist's names, and JSON ([`http`], [`view`]).
//! * Lines mode (the default when stdin is a pipe, file or terminal; a
//!   service when it is /dev/null) speaks `interop/AGENT-PROTOCOL.md` on
//!   stdin/stdout ([`lines`]); logs go to stderr.
//!
//! * `swim-agent serf agent [Go serf agent flags]`: a drop-in for Go's
//!   `serf agent`, driven by Go's `serf` CLI over its RPC ([`serf`]).
//!
//! Exit status: 0 after a stop; 2 for a command line that cannot be parsed
//! or a required setting given nowhere; 1 for an invalid setting or a node
//! that cannot start; 128 + N after a second signal N.

#[cfg(not(unix))]
compile_error!("swim-agent needs a unix platform (signals); the library crates run anywhere");

mod check;
mod cli;
mod http;
mod lines;
mod logging;
mod run;
mod serf;
mod settings;
mod signals;
mod view;

use std::process::ExitCode;

use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::settings::{Sources, AGENT_ENV_PREFIX, NODE_ENV_PREFIX};

fn main() -> ExitCode {
    // `swim-agent serf agent …`: Go's `serf agent`, its own command line.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("serf") {
        return serf::main(&argv[2..]);
    }
    let args = cli::Args::parse();
    let flags = match args.command_line() {
        Ok(flags) => flags,
        Err(e) => return exit(2, &e),
    };
    let env = match environment() {
        Ok(env) => env,
        Err(e) => return exit(1, &e),
    };
    let sources = Sources {
        file: args.config_file.clone(),
        env,
        flags,
    };
    let mut loaded = match sources.load() {
        Ok(loaded) => loaded,
        Err(e) => return exit(if e.is_missing() { 2 } else { 1 }, &e.to_string()),
    };
    loaded.resolve_mode();
    if args.print_config {
        print!("{}", loaded.effective_toml());
        return ExitCode::SUCCESS;
    }
    if args.check {
        return match check::bindable(&loaded) {
            Ok(()) => {
                println!("configuration OK ({})", loaded.layers.join(" < "));
                ExitCode::SUCCESS
            }
            Err(e) => exit(1, &e),
        };
    }
    let log = match logging::init(&loaded.config.agent) {
        Ok(log) => log,
        Err(e) => return exit(1, &e),
    };
    let signals = match signals::watch() {
        Ok(signals) => signals,
        Err(e) => return exit(1, &format!("cannot watch for signals: {e}")),
    };
    let http = match loaded.config.agent.http {
        Some(addr) => {
            let server = match http::Server::bind(addr, http::Limits::of(&loaded.config.agent)) {
                Ok(server) => server,
                Err(e) => {
                    let origin = loaded.origin("agent.http");
                    return exit(
                        1,
                        &format!("{origin}: agent.http: cannot listen on {addr}: {e}"),
                    );
                }
            };
            // Installed before the node starts, so its first metrics land.
            let prometheus = match PrometheusBuilder::new()
                .with_recommended_naming(true)
                .install_recorder()
            {
                Ok(handle) => handle,
                Err(e) => return exit(1, &format!("cannot install the metrics exporter: {e}")),
            };
            view::describe_metrics();
            Some(run::Http { server, prometheus })
        }
        None => None,
    };
    match run::run(loaded, sources, signals, http, log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit(1, &e),
    }
}

fn exit(code: u8, message: &str) -> ExitCode {
    eprintln!("swim-agent: {message}");
    ExitCode::from(code)
}

/// The process's environment; a `SWIM_NODE_*` or `SWIM_AGENT_*` variable
/// that is not UTF-8 is an error, other such variables are not ours.
fn environment() -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(NODE_ENV_PREFIX) || name.starts_with(AGENT_ENV_PREFIX)) {
            continue;
        }
        let value = value
            .into_string()
            .map_err(|_| format!("environment variable {name}: not UTF-8"))?;
        vars.push((name.to_string(), value));
    }
    Ok(vars)
}
