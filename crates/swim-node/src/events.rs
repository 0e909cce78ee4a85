//! The events of one node, between the driver that produces them and the
//! application that reads them, bounded without losing a member's state.
//!
//! Membership events (`MemberJoined`, `MemberUpdated`, `MemberLeft`,
//! `MemberFailed`) are never dropped: while one about a member is still
//! unread, a newer one about the same member takes its place, so a reader
//! that falls behind reads every member's latest state and the queue holds
//! at most one such event per member. Everything else (user messages,
//! remote state, ping and broadcast notices…) is kept up to a count and a
//! number of payload bytes; beyond them it is dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use event_listener::{EventListener, Listener};
use futures_util::Stream;
use swim_core::Event;

/// What the queue holds, in order.
#[derive(Debug)]
enum Pending {
    /// The latest unread membership event of this member (in `latest`).
    Member(Arc<str>),
    Other(Event),
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Pending>,
    latest: HashMap<Arc<str>, Event>,
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

/// The member a membership event is about.
fn member_of(event: &Event) -> Option<&Arc<str>> {
    match event {
        Event::MemberJoined(m)
        | Event::MemberUpdated(m)
        | Event::MemberLeft(m)
        | Event::MemberFailed(m) => Some(&m.name),
        _ => None,
    }
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
        if let Some(name) = member_of(&event) {
            let name = name.clone();
            if let Some(pending) = q.latest.get_mut(&name) {
                *pending = event;
            } else {
                q.items.push_back(Pending::Member(name.clone()));
                q.latest.insert(name, event);
            }
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
            Pending::Member(name) => q
                .latest
                .remove(&name)
                .expect("a pending member has its event"),
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
/// * It can miss other events: beyond [`NodeConfig::event_capacity`](crate::NodeConfig::event_capacity)
///   of them, or [`NodeConfig::event_bytes`](crate::NodeConfig::event_bytes)
///   of payload, new ones are dropped and counted in
///   [`NodeStats::events_dropped`](crate::NodeStats::events_dropped).
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
            payload: vec![0; len],
        }
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
        assert!(q.push(Event::LeaveCompleted { timed_out: false }));
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
