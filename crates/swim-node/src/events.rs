//! The events of one node, between the driver that produces them and the
//! application that reads them, bounded without losing a member's state.
//!
//! Membership events (`MemberJoined`, `MemberUpdated`, `MemberLeft`,
//! `MemberFailed`) are never dropped: while one about a member is still
//! unread, a newer one about the same member takes its place, so a reader
//! that falls behind reads every member's latest state and the queue holds
//! at most one such event per member. Probe notices (`ProbeAcked`) coalesce
//! the same way, apart: a slow reader reads each member's latest round
//! trip. Completions a caller waits for (`BroadcastFinished`, and the
//! completions of the handle's own commands) are never dropped; one comes
//! per command. Everything else (user messages, remote state, name
//! conflicts) is kept up to a count and a number of payload bytes; beyond
//! them it is dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use event_listener::{EventListener, Listener};
use futures_util::Stream;
use swim_core::Event;

/// Events that replace an unread one of the same slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    /// A member's membership events.
    Member(Arc<str>),
    /// The probe notices about a member.
    Probe(Arc<str>),
}

/// What the queue holds, in order.
#[derive(Debug)]
enum Pending {
    /// The latest unread event of this slot (in `latest`).
    Latest(Slot),
    /// A completion: never dropped, not counted against the bounds.
    Kept(Event),
    Other(Event),
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Pending>,
    latest: HashMap<Slot, Event>,
    /// Items that are not membership events, and their payload bytes.
    others: usize,
    other_bytes: usize,
    dropped: u64,
    closed: bool,
}

/// The queue the driver pushes to and [`Events`] reads from.
#[derive(Debug)]
pub(crate) struct EventQueue {
    inner: Mutex<Inner>,
    ready: event_listener::Event,
    max_others: usize,
    max_other_bytes: usize,
}

/// The slot an event replaces an unread one in, if any.
fn slot_of(event: &Event) -> Option<Slot> {
    match event {
        Event::MemberJoined(m)
        | Event::MemberUpdated(m)
        | Event::MemberLeft(m)
        | Event::MemberFailed(m) => Some(Slot::Member(m.name.clone())),
        Event::ProbeAcked { node, .. } => Some(Slot::Probe(node.clone())),
        _ => None,
    }
}

/// Whether a caller may wait for `event`: then it is never dropped.
fn is_completion(event: &Event) -> bool {
    matches!(
        event,
        Event::BroadcastFinished { .. }
            | Event::JoinCompleted { .. }
            | Event::LeaveCompleted { .. }
            | Event::PingCompleted { .. }
            | Event::PingFailed { .. }
    )
}

/// Payload bytes an event holds.
fn payload_bytes(event: &Event) -> usize {
    match event {
        Event::UserMessage { payload, .. } | Event::ProbeAcked { payload, .. } => payload.len(),
        Event::PingCompleted { payload, .. } => payload.len(),
        Event::RemoteState { state, .. } => state.len(),
        _ => 0,
    }
}

impl EventQueue {
    /// A queue keeping at most `max_others` events besides membership ones,
    /// holding at most `max_other_bytes` of payload.
    pub(crate) fn new(max_others: usize, max_other_bytes: usize) -> Arc<EventQueue> {
        Arc::new(EventQueue {
            inner: Mutex::new(Inner::default()),
            ready: event_listener::Event::new(),
            max_others,
            max_other_bytes,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update is completed before the lock is released, so a panic
        // elsewhere cannot leave the queue half-written.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event`; false if it was dropped because the reader is too
    /// far behind (membership events never are).
    pub(crate) fn push(&self, event: Event) -> bool {
        let mut q = self.lock();
        if q.closed {
            return true; // nobody reads: nothing to count
        }
        if let Some(slot) = slot_of(&event) {
            if let Some(pending) = q.latest.get_mut(&slot) {
                *pending = event;
            } else {
                q.items.push_back(Pending::Latest(slot.clone()));
                q.latest.insert(slot, event);
            }
        } else if is_completion(&event) {
            q.items.push_back(Pending::Kept(event));
        } else {
            let bytes = payload_bytes(&event);
            if q.others >= self.max_others || q.other_bytes + bytes > self.max_other_bytes {
                q.dropped += 1;
                return false;
            }
            q.others += 1;
            q.other_bytes += bytes;
            q.items.push_back(Pending::Other(event));
        }
        drop(q);
        self.ready.notify(1);
        true
    }

    /// The next event, if one is queued.
    fn pop(&self) -> Option<Event> {
        let mut q = self.lock();
        let next = q.items.pop_front()?;
        Some(match next {
            Pending::Latest(slot) => q
                .latest
                .remove(&slot)
                .expect("a pending slot has its event"),
            Pending::Kept(event) => event,
            Pending::Other(event) => {
                q.others -= 1;
                q.other_bytes -= payload_bytes(&event);
                event
            }
        })
    }

    /// No more events will come; readers get what is queued, then `None`.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify(usize::MAX);
    }

    /// Events dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Events waiting to be read.
    fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// The next event, or `None` when the queue is closed and empty; else a
    /// listener to wait on before asking again.
    fn poll(&self) -> Result<Option<Event>, EventListener> {
        if let Some(event) = self.pop() {
            return Ok(Some(event));
        }
        let listener = self.ready.listen();
        // Something may have come between the pop and the listen.
        match self.pop() {
            Some(event) => Ok(Some(event)),
            None if self.lock().closed => Ok(None),
            None => Err(listener),
        }
    }
}

/// The events of one node, in order: a [`Stream`], or read without async
/// through [`try_recv`](Events::try_recv) and [`recv_blocking`](Events::recv_blocking).
///
/// What a reader that falls behind can and cannot miss:
///
/// * It never misses a member's latest state. Membership events
///   ([`MemberJoined`](Event::MemberJoined), [`MemberUpdated`](Event::MemberUpdated),
///   [`MemberLeft`](Event::MemberLeft), [`MemberFailed`](Event::MemberFailed))
///   are never dropped: while one about a member is unread, a newer one
///   about the same member replaces it. So a slow reader may see a member
///   fail without having seen it join, but the last event it reads about
///   each member says what that member is now, and [`Node::members`](crate::Node::members)
///   agrees with it. These take at most one slot per member.
/// * Probe notices ([`ProbeAcked`](Event::ProbeAcked)) coalesce the same
///   way, in a slot per member of their own: they never crowd out user
///   messages, and a slow reader reads each member's latest round trip.
/// * It never misses a completion it may wait for:
///   [`BroadcastFinished`](Event::BroadcastFinished) (one per broadcast),
///   [`JoinCompleted`](Event::JoinCompleted),
///   [`LeaveCompleted`](Event::LeaveCompleted),
///   [`PingCompleted`](Event::PingCompleted), [`PingFailed`](Event::PingFailed).
/// * It can miss other events — user messages, remote state, name
///   conflicts: beyond [`NodeConfig::event_capacity`](crate::NodeConfig::event_capacity)
///   of them, or [`NodeConfig::event_bytes`](crate::NodeConfig::event_bytes)
///   of payload, new ones are dropped and counted: [`Events::dropped`]
///   (also in [`NodeStats::events_dropped`](crate::NodeStats::events_dropped)).
///   A reliable message over `event_bytes` could never be queued: the
///   sender's [`Node::send_reliable`](crate::Node::send_reliable) refuses it.
///
/// Dropping `Events` stops their delivery.
#[derive(Debug)]
pub struct Events {
    pub(crate) queue: Arc<EventQueue>,
    listener: Option<EventListener>,
}

impl Events {
    pub(crate) fn new(queue: Arc<EventQueue>) -> Events {
        Events {
            queue,
            listener: None,
        }
    }

    /// The next event; `None` once the node has shut down and every event
    /// was read.
    pub async fn recv(&self) -> Option<Event> {
        loop {
            match self.queue.poll() {
                Ok(event) => return event,
                Err(listener) => listener.await,
            }
        }
    }

    /// Events dropped so far because this reader was behind (user
    /// messages, remote state, name conflicts; see [`Events`]). Compare two
    /// readings to learn whether you missed any in between.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Events waiting to be read: how far behind the reader is.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next event if one is ready.
    pub fn try_recv(&self) -> Option<Event> {
        self.queue.pop()
    }

    /// Blocks the thread until the next event (for code outside async).
    /// Do not call it from inside an async task.
    pub fn recv_blocking(&self) -> Option<Event> {
        loop {
            match self.queue.poll() {
                Ok(event) => return event,
                Err(listener) => listener.wait(),
            }
        }
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            if let Some(listener) = &mut self.listener {
                std::task::ready!(Pin::new(listener).poll(cx));
                self.listener = None;
            }
            match self.queue.poll() {
                Ok(event) => return Poll::Ready(event),
                Err(listener) => self.listener = Some(listener),
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.queue.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_core::{Member, MemberState};

    fn member(name: &str, incarnation: u32, state: MemberState) -> Member {
        Member {
            name: name.into(),
            addr: "10.0.0.1:7946".parse().unwrap(),
            meta: Arc::from(&b""[..]),
            incarnation,
            state,
            vsn: [1, 5, 2, 0, 0, 0],
        }
    }

    fn message(len: usize) -> Event {
        Event::UserMessage {
            from: "10.0.0.1:7946".parse().unwrap(),
            node: None,
            payload: vec![0; len],
        }
    }

    fn acked(node: &str, ms: u64) -> Event {
        Event::ProbeAcked {
            node: node.into(),
            rtt: std::time::Duration::from_millis(ms),
            payload: Vec::new(),
        }
    }

    #[test]
    fn probe_notices_coalesce_and_completions_are_never_dropped() {
        let q = EventQueue::new(1, 100);
        let events = Events::new(q.clone());
        assert!(q.push(message(1)));
        // A flood of probe notices takes one slot per member and leaves
        // the bounded queue alone.
        for ms in 0..100 {
            assert!(q.push(acked(["a", "b"][ms as usize % 2], ms)));
        }
        assert_eq!(q.len(), 3);
        let finished = Event::BroadcastFinished {
            id: swim_core::BroadcastId(7),
            outcome: swim_core::BroadcastOutcome::Sent,
        };
        assert!(
            q.push(finished.clone()),
            "a completion gets in past the bound"
        );
        assert!(!q.push(message(1)), "the bound holds for user messages");
        assert_eq!(events.dropped(), 1);
        assert_eq!(events.try_recv(), Some(message(1)));
        assert_eq!(events.try_recv(), Some(acked("a", 98)));
        assert_eq!(events.try_recv(), Some(acked("b", 99)));
        assert_eq!(events.try_recv(), Some(finished));
        assert_eq!(events.try_recv(), None);
    }

    #[test]
    fn unread_membership_events_keep_only_each_members_latest() {
        let q = EventQueue::new(2, 100);
        let events = Events::new(q.clone());
        q.push(Event::MemberJoined(member("a", 1, MemberState::Alive)));
        q.push(Event::MemberJoined(member("b", 1, MemberState::Alive)));
        q.push(Event::MemberFailed(member("a", 1, MemberState::Dead)));
        q.push(Event::MemberJoined(member("a", 2, MemberState::Alive)));
        assert_eq!(q.len(), 2, "one slot per member");
        assert_eq!(
            events.try_recv(),
            Some(Event::MemberJoined(member("a", 2, MemberState::Alive)))
        );
        // Read: a new one about `a` queues behind `b`.
        q.push(Event::MemberLeft(member("a", 3, MemberState::Left)));
        assert_eq!(
            events.try_recv(),
            Some(Event::MemberJoined(member("b", 1, MemberState::Alive)))
        );
        assert_eq!(
            events.try_recv(),
            Some(Event::MemberLeft(member("a", 3, MemberState::Left)))
        );
        assert_eq!(events.try_recv(), None);
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn other_events_are_bounded_by_count_and_bytes_and_counted() {
        let q = EventQueue::new(3, 100);
        let events = Events::new(q.clone());
        assert!(q.push(message(60)));
        assert!(!q.push(message(60)), "over the byte bound");
        assert!(q.push(message(40)));
        assert!(q.push(Event::RemoteState {
            join: false,
            state: Vec::new()
        }));
        assert!(!q.push(message(0)), "over the count bound");
        // Membership events still get in.
        assert!(q.push(Event::MemberJoined(member("a", 1, MemberState::Alive))));
        assert_eq!(q.dropped(), 2);
        assert_eq!(events.try_recv(), Some(message(60)));
        assert!(q.push(message(60)), "room again once read");
    }

    #[test]
    fn readers_wake_and_end_after_close() {
        let q = EventQueue::new(8, 100);
        let events = Events::new(q.clone());
        let writer = {
            let q = q.clone();
            std::thread::spawn(move || {
                q.push(Event::LeaveCompleted { timed_out: true });
                q.close();
            })
        };
        assert_eq!(
            events.recv_blocking(),
            Some(Event::LeaveCompleted { timed_out: true })
        );
        assert_eq!(events.recv_blocking(), None);
        writer.join().unwrap();
        q.push(message(1));
        assert_eq!(q.len(), 0, "a closed queue takes nothing");
        assert_eq!(q.dropped(), 0, "and counts nothing: nobody reads");
    }
}
