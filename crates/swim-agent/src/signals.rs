//! Every catchable signal that would otherwise end the process, and what
//! it means to the agent: a stop (leave, shut down, exit 0), a reload, or
//! nothing — never a silent death that peers take for a crash.
//!
//! * SIGTERM, SIGINT, SIGQUIT, SIGPWR, SIGXCPU: stop gracefully; a second
//!   stop signal while that runs exits at once (128 + its number).
//! * SIGHUP: reload what can change at run time (see `run::reload`).
//! * SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGXFSZ,
//!   SIGSTKFLT and the real-time signals: logged and ignored.
//!
//! Signals are read on a thread of their own (signal-hook), so requests
//! reach either runtime as messages on a channel.

use signal_hook::consts::signal::*;
use signal_hook::iterator::Signals;
use tracing::{error, info, warn};

/// A stop asked for by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal {
    /// `SIGTERM`, `SIGINT`…
    pub name: &'static str,
}

/// What a signal asks of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Leave and shut down.
    Stop(StopSignal),
    /// Reload the configuration (SIGHUP).
    Reload,
}

/// The signals that stop the agent gracefully.
const STOP: [(i32, &str); 5] = [
    (SIGTERM, "SIGTERM"),
    (SIGINT, "SIGINT"),
    (SIGQUIT, "SIGQUIT"),
    (libc::SIGPWR, "SIGPWR"),
    (SIGXCPU, "SIGXCPU"),
];

/// The signals whose default action would kill the process and that mean
/// nothing to the agent.
const IGNORED: [(i32, &str); 8] = [
    (SIGUSR1, "SIGUSR1"),
    (SIGUSR2, "SIGUSR2"),
    (SIGALRM, "SIGALRM"),
    (SIGVTALRM, "SIGVTALRM"),
    (SIGPROF, "SIGPROF"),
    (SIGIO, "SIGIO"),
    (SIGXFSZ, "SIGXFSZ"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
];

/// Installs the handlers and returns where requests arrive. From the second
/// stop signal on, the process exits with status 128 + the signal's number,
/// as a shell reports a process killed by it.
pub fn watch() -> std::io::Result<async_channel::Receiver<Request>> {
    let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
    let mut all: Vec<i32> = STOP.iter().chain(&IGNORED).map(|(n, _)| *n).collect();
    all.push(SIGHUP);
    all.extend(realtime.clone());
    let mut signals = Signals::new(all)?;
    let (tx, rx) = async_channel::unbounded();
    std::thread::Builder::new()
        .name("swim-agent-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                if let Some((_, name)) = STOP.iter().find(|(n, _)| *n == signal) {
                    if stopping {
                        error!(signal = name, "second signal: exiting at once");
                        std::process::exit(128 + signal);
                    }
                    stopping = true;
                    info!(signal = name, "stop requested");
                    let _ = tx.try_send(Request::Stop(StopSignal { name }));
                } else if signal == SIGHUP {
                    info!(signal = "SIGHUP", "reload requested");
                    let _ = tx.try_send(Request::Reload);
                } else {
                    let name = IGNORED
                        .iter()
                        .find(|(n, _)| *n == signal)
                        .map(|(_, name)| name.to_string())
                        .unwrap_or_else(|| format!("SIGRTMIN+{}", signal - realtime.start()));
                    warn!(signal = %name, "signal ignored (SIGTERM stops, SIGHUP reloads)");
                }
            }
        })?;
    Ok(rx)
}
