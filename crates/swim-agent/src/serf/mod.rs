//! `swim-agent serf agent`: a drop-in for Go's `serf agent`, on swim-serf.
//! It reads Go's flags and JSON config files ([`flags`], [`config`]),
//! serves Go's RPC on `-rpc-addr` so Go's `serf` CLI and RPC clients drive
//! it ([`rpc`]), runs event handler scripts as Go runs them
//! ([`handlers`]), logs as Go logs for `serf monitor` ([`logs`]), and
//! handles SIGINT, SIGTERM and SIGHUP as Go's agent does ([`signals`],
//! [`run`]).

pub mod agent;
pub mod config;
pub mod flags;
pub mod handlers;
pub mod logs;
pub mod msgpack;
pub mod rpc;
pub mod run;
pub mod signals;

use std::process::ExitCode;

/// Runs `swim-agent serf SUBCOMMAND ARGS`; only `agent` is implemented:
/// Go's `serf` CLI is the client for the rest.
pub fn main(args: &[String]) -> ExitCode {
    match args.split_first() {
        Some((cmd, rest)) if cmd == "agent" => run::run(rest),
        Some((cmd, _)) => {
            eprintln!(
                "swim-agent serf: only `agent` is implemented; run Go's `serf {cmd}` against the agent's -rpc-addr"
            );
            ExitCode::from(1)
        }
        None => {
            eprintln!("usage: swim-agent serf agent [options] (see `swim-agent serf agent -h`)");
            ExitCode::from(1)
        }
    }
}
