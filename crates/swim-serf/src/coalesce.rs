//! Event coalescing (Go's `coalesce.go`, `coalesce_member.go`,
//! `coalesce_user.go`): member events, and user events sent with
//! `coalesce`, are held and merged until `period` passed since the first
//! or `quiescent` since the last, then let out — against flapping.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use swim_core::Instant;

use crate::clock::LamportTime;
use crate::serf::SerfEvent;

/// The discriminant of a member event (Go's `EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum MemberEventType {
    Join,
    Leave,
    Failed,
    Update,
    Reap,
}

/// One coalescing window (Go's `coalesceLoop` timers).
#[derive(Debug, Clone)]
struct Window {
    period: Duration,
    quiescent: Duration,
    /// When the window opened plus `period` (Go's quantum).
    quantum: Option<Instant>,
    /// The last event plus `quiescent`.
    quiet: Option<Instant>,
}

impl Window {
    fn new(period: Duration, quiescent: Duration) -> Option<Window> {
        (!period.is_zero() && !quiescent.is_zero()).then_some(Window {
            period,
            quiescent,
            quantum: None,
            quiet: None,
        })
    }

    fn hold(&mut self, now: Instant) {
        self.quantum.get_or_insert(now + self.period);
        self.quiet = Some(now + self.quiescent);
    }

    fn deadline(&self) -> Option<Instant> {
        self.quantum.into_iter().chain(self.quiet).min()
    }

    /// Whether it is time to flush.
    fn is_due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| d <= now)
    }

    /// Flushed: the next event opens a new window.
    fn close(&mut self) {
        self.quantum = None;
        self.quiet = None;
    }
}

/// Go's `memberEventCoalescer`.
#[derive(Debug, Clone)]
struct Members {
    window: Window,
    /// The type last let out per member.
    last: HashMap<String, MemberEventType>,
    /// The latest event per member. Go 0.9.4 never clears it, so a member
    /// whose latest event is an update is let out again at every flush;
    /// kept, for the same output.
    latest: BTreeMap<String, (MemberEventType, SerfEvent)>,
}

/// Go's `userEventCoalescer`: per event name, the events of the newest
/// Lamport time.
#[derive(Debug, Clone)]
struct Users {
    window: Window,
    latest: BTreeMap<String, (LamportTime, Vec<SerfEvent>)>,
}

/// The coalescers Serf's events pass through (Go chains them on its event
/// channel); off unless both durations of one are set.
#[derive(Debug, Clone)]
pub(crate) struct Coalescer {
    members: Option<Members>,
    users: Option<Users>,
}

impl Coalescer {
    pub(crate) fn new(
        (period, quiescent): (Duration, Duration),
        (user_period, user_quiescent): (Duration, Duration),
    ) -> Coalescer {
        Coalescer {
            members: Window::new(period, quiescent).map(|window| Members {
                window,
                last: HashMap::new(),
                latest: BTreeMap::new(),
            }),
            users: Window::new(user_period, user_quiescent).map(|window| Users {
                window,
                latest: BTreeMap::new(),
            }),
        }
    }

    /// Takes `event` in; gives it back if no coalescer holds it.
    pub(crate) fn push(&mut self, now: Instant, event: SerfEvent) -> Option<SerfEvent> {
        let member = match &event {
            SerfEvent::MemberJoin(m) => Some((MemberEventType::Join, m.name.clone())),
            SerfEvent::MemberLeave(m) => Some((MemberEventType::Leave, m.name.clone())),
            SerfEvent::MemberFailed(m) => Some((MemberEventType::Failed, m.name.clone())),
            SerfEvent::MemberUpdate(m) => Some((MemberEventType::Update, m.name.clone())),
            SerfEvent::MemberReap(m) => Some((MemberEventType::Reap, m.name.clone())),
            _ => None,
        };
        match (member, &event, &mut self.members, &mut self.users) {
            (Some((ty, name)), _, Some(c), _) => {
                c.window.hold(now);
                c.latest.insert(name, (ty, event));
                None
            }
            (None, SerfEvent::User(u), _, Some(c)) if u.coalesce => {
                c.window.hold(now);
                let (ltime, name) = (u.ltime, u.name.clone());
                match c.latest.get_mut(&name) {
                    Some((t, events)) if *t == ltime => events.push(event),
                    Some((t, _)) if *t > ltime => {} // older than the newest: dropped
                    _ => {
                        c.latest.insert(name, (ltime, vec![event]));
                    }
                }
                None
            }
            _ => Some(event),
        }
    }

    /// When [`flush`](Self::flush) next has work.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let members = self.members.as_ref().and_then(|c| c.window.deadline());
        let users = self.users.as_ref().and_then(|c| c.window.deadline());
        members.into_iter().chain(users).min()
    }

    /// Lets out what windows that closed by `now` hold.
    pub(crate) fn flush(&mut self, now: Instant) -> Vec<SerfEvent> {
        let mut out = Vec::new();
        if let Some(c) = self.members.as_mut().filter(|c| c.window.is_due(now)) {
            c.window.close();
            // Grouped by type, as Go sends one event per type.
            let mut by_type: BTreeMap<MemberEventType, Vec<SerfEvent>> = BTreeMap::new();
            for (name, (ty, event)) in &c.latest {
                let previous = c.last.get(name);
                if previous == Some(ty) && *ty != MemberEventType::Update {
                    continue;
                }
                c.last.insert(name.clone(), *ty);
                by_type.entry(*ty).or_default().push(event.clone());
            }
            out.extend(by_type.into_values().flatten());
        }
        if let Some(c) = self.users.as_mut().filter(|c| c.window.is_due(now)) {
            c.window.close();
            for (_, events) in std::mem::take(&mut c.latest).into_values() {
                out.extend(events);
            }
        }
        out
    }
}
