//! The agent's log as Go's `serf agent` writes it, `2006/01/02 15:04:05
//! [INFO] agent: …` (UTC), to stdout at `-log-level` and to `monitor`
//! streams at theirs. The last [`BUFFERED`] lines are kept and replayed to
//! a new monitor, as Go's `logWriter` does; a monitor that falls
//! [`MONITOR_QUEUE`] lines behind loses lines (counted), never slows the
//! agent.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Lines kept for new monitors (Go: 512).
pub const BUFFERED: usize = 512;
/// Lines queued per monitor before they are dropped (Go: 512).
pub const MONITOR_QUEUE: usize = 512;

/// Go's log levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GoLevel {
    /// `TRACE`.
    Trace = 0,
    /// `DEBUG`.
    Debug = 1,
    /// `INFO`.
    Info = 2,
    /// `WARN`.
    Warn = 3,
    /// `ERR`.
    Err = 4,
}

impl GoLevel {
    /// A level as Go's `ValidateLevelFilter` takes it (any case).
    pub fn parse(s: &str) -> Option<GoLevel> {
        Some(match s.to_uppercase().as_str() {
            "TRACE" => GoLevel::Trace,
            "DEBUG" => GoLevel::Debug,
            "INFO" => GoLevel::Info,
            "WARN" => GoLevel::Warn,
            "ERR" => GoLevel::Err,
            _ => return None,
        })
    }

    fn of(level: &Level) -> GoLevel {
        match *level {
            Level::TRACE => GoLevel::Trace,
            Level::DEBUG => GoLevel::Debug,
            Level::INFO => GoLevel::Info,
            Level::WARN => GoLevel::Warn,
            _ => GoLevel::Err,
        }
    }

    fn from_u8(n: u8) -> GoLevel {
        match n {
            0 => GoLevel::Trace,
            1 => GoLevel::Debug,
            2 => GoLevel::Info,
            3 => GoLevel::Warn,
            _ => GoLevel::Err,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            GoLevel::Trace => "TRACE",
            GoLevel::Debug => "DEBUG",
            GoLevel::Info => "INFO",
            GoLevel::Warn => "WARN",
            GoLevel::Err => "ERR",
        }
    }
}

/// The valid levels, for Go's error message.
pub const LEVELS: &str = "[TRACE DEBUG INFO WARN ERR]";

struct Monitor {
    level: GoLevel,
    tx: async_channel::Sender<String>,
}

#[derive(Default)]
struct Shared {
    buffer: VecDeque<(GoLevel, String)>,
    monitors: Vec<Monitor>,
}

/// The log: the [`Layer`] to install, and monitors to subscribe.
#[derive(Clone)]
pub struct Logs {
    output_level: Arc<AtomicU8>,
    shared: Arc<Mutex<Shared>>,
    /// Lines a slow monitor lost.
    pub dropped: Arc<AtomicU64>,
}

impl Logs {
    /// Logs at `level` on stdout.
    pub fn new(level: GoLevel) -> Logs {
        Logs {
            output_level: Arc::new(AtomicU8::new(level as u8)),
            shared: Arc::default(),
            dropped: Arc::default(),
        }
    }

    /// Changes the stdout level (a reload).
    pub fn set_level(&self, level: GoLevel) {
        self.output_level.store(level as u8, Ordering::Relaxed);
    }

    /// A monitor at `level`: the buffered lines at that level first, then
    /// new ones. Dropping the receiver ends it.
    pub fn monitor(&self, level: GoLevel) -> async_channel::Receiver<String> {
        let (tx, rx) = async_channel::bounded(MONITOR_QUEUE);
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        for (l, line) in &shared.buffer {
            if *l >= level && tx.try_send(line.clone()).is_err() {
                break;
            }
        }
        shared.monitors.push(Monitor { level, tx });
        rx
    }

    /// Installs the log as the process's tracing subscriber.
    pub fn install(&self) -> Result<(), String> {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(self.clone())
            .try_init()
            .map_err(|e| format!("cannot install the logger: {e}"))
    }

    /// What monitors may read: the buffer keeps debug lines, so a monitor
    /// at DEBUG sees recent ones; TRACE only while someone asks for it.
    fn wanted(&self, level: GoLevel) -> bool {
        if level >= GoLevel::Debug {
            return true;
        }
        let output = GoLevel::from_u8(self.output_level.load(Ordering::Relaxed));
        if level >= output {
            return true;
        }
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.monitors.iter().any(|m| level >= m.level)
    }
}

/// `2026/12/07 05:31:12`, UTC.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Logs {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // Levels change at run time (reloads, monitors): ask every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        self.wanted(GoLevel::of(metadata.level()))
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let level = GoLevel::of(meta.level());
        let mut line = Line::default();
        event.record(&mut line);
        let text = format!(
            "{} [{}] {}: {}{}",
            timestamp(),
            level.tag(),
            meta.target(),
            line.message,
            line.fields
        );
        if level >= GoLevel::from_u8(self.output_level.load(Ordering::Relaxed)) {
            // Go's agent logs on stdout, indented as its UI's info lines.
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "    {text}");
        }
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if shared.buffer.len() == BUFFERED {
            shared.buffer.pop_front();
        }
        shared.buffer.push_back((level, text.clone()));
        let dropped = &self.dropped;
        shared.monitors.retain(|m| {
            if level < m.level {
                return !m.tx.is_closed();
            }
            match m.tx.try_send(text.clone()) {
                Ok(()) => true,
                Err(async_channel::TrySendError::Full(_)) => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(async_channel::TrySendError::Closed(_)) => false,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_in_any_case() {
        assert_eq!(GoLevel::parse("info"), Some(GoLevel::Info));
        assert_eq!(GoLevel::parse("ERR"), Some(GoLevel::Err));
        assert_eq!(GoLevel::parse("error"), None);
    }

    #[test]
    fn a_monitor_gets_buffered_then_new_lines_at_its_level() {
        let logs = Logs::new(GoLevel::Err);
        let subscriber = tracing_subscriber::layer::SubscriberExt::with(
            tracing_subscriber::registry(),
            logs.clone(),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "agent", "before");
            tracing::debug!(target: "agent", "hidden");
            let rx = logs.monitor(GoLevel::Info);
            tracing::warn!(target: "agent", n = 3, "after");
            let first = rx.try_recv().unwrap();
            assert!(first.ends_with(" [INFO] agent: before"), "{first}");
            assert!(rx.try_recv().unwrap().ends_with(" [WARN] agent: after n=3"));
            assert!(rx.try_recv().is_err());
        });
        assert_eq!(timestamp().len(), "2026/12/07 05:31:12".len());
    }
}
