//! Logs on stderr, as text or JSON lines, filtered by `RUST_LOG` when set
//! and by `agent.log` otherwise; SIGHUP swaps in a changed `agent.log`.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::settings::{log_filter, AgentOptions, LogFormat};

/// The installed logger's filter, to change on a reload.
#[derive(Debug)]
pub struct Log {
    handle: reload::Handle<EnvFilter, Registry>,
    /// Whether `RUST_LOG` chose the filter (then `agent.log` is not used).
    from_env: bool,
}

impl Log {
    /// Uses `filter` (an `agent.log` value) from now on; an error says why
    /// not, and the old filter stays.
    pub fn set(&self, filter: &str) -> Result<(), String> {
        if self.from_env {
            return Err("RUST_LOG is set and wins over agent.log".into());
        }
        let filter = EnvFilter::try_new(log_filter(filter)?).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())
    }
}

/// Installs the logger `options` describe.
pub fn init(options: &AgentOptions) -> Result<Log, String> {
    let (filter, from_env) = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => (
            EnvFilter::try_new(&env).map_err(|e| format!("environment variable RUST_LOG: {e}"))?,
            true,
        ),
        _ => (
            EnvFilter::try_new(log_filter(&options.log).map_err(|e| format!("agent.log: {e}"))?)
                .map_err(|e| format!("agent.log: {e}"))?,
            false,
        ),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let json = options.log_format == LogFormat::Json;
    let text_layer = (!json).then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            // Colour for people at a terminal; plain text for journald and files.
            .with_ansi(std::io::stderr().is_terminal())
    });
    let json_layer = json.then(|| {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(text_layer)
        .with(json_layer)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(Log { handle, from_env })
}
