//! SIGTERM and SIGINT: the first asks the agent to stop gracefully (leave,
//! shut down, exit 0); a second, while that runs, exits at once.
//!
//! Signals are read on a thread of their own (signal-hook), so the stop
//! request reaches either runtime as a message on a channel.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{error, info};

/// A stop asked for by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal {
    /// `SIGTERM` or `SIGINT`.
    pub name: &'static str,
}

/// Installs the handlers and returns where stop requests arrive. From the
/// second signal on, the process exits with status 128 + the signal's
/// number, as a shell reports a process killed by it.
pub fn watch() -> std::io::Result<async_channel::Receiver<StopSignal>> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let (tx, rx) = async_channel::bounded(1);
    std::thread::Builder::new()
        .name("swim-agent-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                if stopping {
                    error!(signal = name, "second signal: exiting at once");
                    std::process::exit(128 + signal);
                }
                stopping = true;
                info!(signal = name, "stop requested");
                // The receiver gone means the agent is already on its way out.
                let _ = tx.try_send(StopSignal { name });
            }
        })?;
    Ok(rx)
}
