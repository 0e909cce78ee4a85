//! The signals Go's `serf agent` handles (`handleSignals`): SIGINT and
//! SIGTERM stop it (leaving first as `skip_leave_on_interrupt` and
//! `leave_on_terminate` say), SIGHUP reloads, SIGUSR1 dumps the agent's
//! figures to stderr (Go's telemetry dump). Others keep their default
//! action, as in Go.

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

/// A signal the agent acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    Hangup,
    /// SIGUSR1.
    Dump,
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "interrupt",
            Signal::Terminate => "terminated",
            Signal::Hangup => "hangup",
            Signal::Dump => "user defined signal 1",
        })
    }
}

/// Installs the handlers; signals arrive on the channel returned.
pub fn watch() -> std::io::Result<async_channel::Receiver<Signal>> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])?;
    let (tx, rx) = async_channel::unbounded();
    std::thread::Builder::new()
        .name("serf-agent-signals".into())
        .spawn(move || {
            for s in signals.forever() {
                let s = match s {
                    SIGINT => Signal::Interrupt,
                    SIGTERM => Signal::Terminate,
                    SIGUSR1 => Signal::Dump,
                    _ => Signal::Hangup,
                };
                if tx.try_send(s).is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}
