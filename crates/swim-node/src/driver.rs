//! The one task that owns the [`Swim`] value: it waits for a packet, a
//! connection, a finished stream, a command or the next deadline, feeds it
//! in, and carries out what the core asks.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};
use swim_core::wire::StreamRole;
use swim_core::{
    Delegate, Event, ExchangeError, ExchangeId, Instant, JoinId, Output, PingId, StreamId, Swim,
};
use tracing::{debug, info, warn};

use crate::events::EventQueue;
use crate::metrics::Metrics;
use crate::node::{hold, Command, Core, Counts, Error, JoinFailure, JoinFailureReason, Reply};
use crate::runtime::Runtime;
use crate::stream::{self, ReadError};
use crate::transport::Transport;
use crate::NodeStats;

/// A join in progress: who waits, and the seed each address came from.
type PendingJoin = (
    Reply<(usize, Vec<JoinFailure>)>,
    HashMap<SocketAddr, String>,
);

/// The delegate a running node asks: any, chosen when it starts.
pub(crate) type BoxDelegate = Box<dyn Delegate + Send>;

/// How long a name conflict reported once stays quiet: Go's seeds and the
/// claimant repeat it every few hundred milliseconds while it lasts.
const CONFLICT_QUIET: Duration = Duration::from_secs(60);

/// The largest datagram a peer can send.
const MAX_DATAGRAM: usize = 65_536;

thread_local! {
    /// Where datagrams land, shared by every node polled on this thread; the
    /// bytes received are copied out before the poll returns.
    static DATAGRAM: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; MAX_DATAGRAM]);
}

/// Converts between the core's time and the runtime's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: std::time::Instant,
    read: fn() -> std::time::Instant,
}

impl Clock {
    /// Time from now on, on runtime `R`'s clock.
    pub(crate) fn start<R: Runtime>() -> Clock {
        Clock {
            origin: R::now(),
            read: R::now,
        }
    }

    pub(crate) fn now(&self) -> Instant {
        Instant::from_duration((self.read)().saturating_duration_since(self.origin))
    }

    pub(crate) fn to_std(self, t: Instant) -> std::time::Instant {
        // Far-future deadlines (the core's "never") must not overflow.
        let cap = Duration::from_secs(365 * 24 * 3600);
        self.origin + t.as_duration().min(cap)
    }
}

type Task<S> = Pin<Box<dyn Future<Output = Done<S>> + Send>>;

/// A finished stream task.
enum Done<S> {
    Exchange(ExchangeId, Result<Vec<u8>, ExchangeError>),
    Read(StreamId, SocketAddr, Result<(S, Vec<u8>), ReadError>),
    Replied(io::Result<()>),
}

/// What woke the driver.
enum Wake<S> {
    /// A datagram, now in the driver's `packet`.
    Packet(io::Result<SocketAddr>),
    Accept(io::Result<(S, SocketAddr)>),
    Command(Option<Command>),
    Task(Done<S>),
    Timer,
}

/// At most a few log lines per second for input peers control, so a flood
/// cannot flood the log too.
struct LogBudget {
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    const PER_SECOND: u32 = 10;

    fn allow(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                warn!(suppressed = self.suppressed, "similar messages suppressed");
            }
            self.window = now;
            self.used = 0;
            self.suppressed = 0;
        }
        self.used += 1;
        if self.used > Self::PER_SECOND {
            self.suppressed += 1;
        }
        self.used <= Self::PER_SECOND
    }
}

pub(crate) struct Driver<R: Runtime, T: Transport> {
    /// The core, locked for each input and output (the handles read it).
    swim: Arc<Core>,
    clock: Clock,
    transport: Arc<T>,
    /// Pinned: as a stream, the receiver keeps its listener between waits
    /// instead of making a new one each time.
    commands: Pin<Box<async_channel::Receiver<Command>>>,
    events: Arc<EventQueue>,
    /// Shared with the handles: the member count and health score.
    counts: Arc<Counts>,
    max_incoming: usize,
    metrics: Metrics,
    /// The last datagram received.
    packet: Vec<u8>,
    tasks: FuturesUnordered<Task<T::Stream>>,
    /// Accepted streams waiting for the core's answer.
    answering: HashMap<StreamId, T::Stream>,
    /// Incoming streams in flight: reading, answering or replying.
    incoming: usize,
    next_stream: u64,
    /// The one timer, kept and moved from deadline to deadline.
    timer: Option<R::Timer>,
    /// The deadline `timer` is set for, while it is.
    armed: Option<Instant>,
    accept_paused_until: Option<Instant>,
    turn: usize,
    joins: HashMap<JoinId, PendingJoin>,
    leaving: Vec<Reply<()>>,
    left: bool,
    pings: HashMap<PingId, Reply<Duration>>,
    reliable: HashMap<ExchangeId, Reply<()>>,
    /// A best-effort send waiting for its datagram's fate: the core's next
    /// packet (the queue is empty when a command runs).
    best_effort: Option<Reply<()>>,
    /// The largest payload an event may carry: a receiver's
    /// [`NodeConfig::event_bytes`](crate::NodeConfig::event_bytes), ours
    /// assumed alike.
    max_event_payload: usize,
    /// Name conflicts reported lately, by member and claimed address, with
    /// when: a repeat within [`CONFLICT_QUIET`] is not reported again.
    conflicts: HashMap<(Arc<str>, SocketAddr), Instant>,
    stopping: Vec<Reply<()>>,
    stop: bool,
    stats: NodeStats,
    log_budget: LogBudget,
}

impl<R: Runtime, T: Transport> Drop for Driver<R, T> {
    fn drop(&mut self) {
        // Readers get what is queued, then the end.
        self.events.close();
    }
}

/// What the driver is made of.
pub(crate) struct Parts<T> {
    pub(crate) swim: Arc<Core>,
    pub(crate) clock: Clock,
    pub(crate) transport: Arc<T>,
    pub(crate) commands: async_channel::Receiver<Command>,
    pub(crate) events: Arc<EventQueue>,
    pub(crate) counts: Arc<Counts>,
    pub(crate) max_incoming: usize,
    pub(crate) max_event_payload: usize,
    pub(crate) metrics: Metrics,
}

impl<R: Runtime, T: Transport> Driver<R, T> {
    pub(crate) fn new(parts: Parts<T>) -> Driver<R, T> {
        let Parts {
            swim,
            clock,
            transport,
            commands,
            events,
            counts,
            max_incoming,
            max_event_payload,
            metrics,
        } = parts;
        Driver {
            swim,
            clock,
            transport,
            commands: Box::pin(commands),
            events,
            counts,
            max_incoming,
            metrics,
            packet: Vec::new(),
            tasks: FuturesUnordered::new(),
            answering: HashMap::new(),
            incoming: 0,
            next_stream: 0,
            timer: None,
            armed: None,
            accept_paused_until: None,
            turn: 0,
            joins: HashMap::new(),
            leaving: Vec::new(),
            left: false,
            pings: HashMap::new(),
            reliable: HashMap::new(),
            best_effort: None,
            max_event_payload,
            conflicts: HashMap::new(),
            stopping: Vec::new(),
            stop: false,
            stats: NodeStats::default(),
            log_budget: LogBudget {
                window: Instant::ZERO,
                used: 0,
                suppressed: 0,
            },
        }
    }

    /// The node's counters now, `swim` the core locked.
    fn stats(&self, swim: &Swim<BoxDelegate>) -> NodeStats {
        let mut stats = self.stats.clone();
        stats.core = swim.stats().clone();
        stats.incoming_streams = self.incoming;
        stats.events_dropped = self.events.dropped();
        stats.broadcast_queue_len = swim.broadcast_queue_len();
        stats.user_broadcast_queue_len = swim.user_broadcast_queue_len();
        stats
    }

    /// Publishes the metrics.
    fn publish(&mut self) {
        let swim = hold(&self.swim);
        let stats = self.stats(&swim);
        self.metrics.publish(&*swim, &stats);
    }

    /// Runs until shutdown or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let (name, addr) = {
            let swim = hold(&self.swim);
            (swim.local_node().name, swim.config().advertise)
        };
        info!(node = %name, %addr, "node started");
        loop {
            self.flush().await;
            if self.stop {
                break;
            }
            self.refresh();
            let wake = self.wait().await;
            let now = self.clock.now();
            match wake {
                Wake::Packet(Ok(from)) => self.on_packet(now, from),
                Wake::Packet(Err(e)) => debug!(error = %e, "udp receive failed"),
                Wake::Accept(Ok((stream, from))) => self.on_accept(now, stream, from),
                Wake::Accept(Err(e)) => {
                    warn!(error = %e, "tcp accept failed; pausing accepts briefly");
                    self.accept_paused_until = Some(now + Duration::from_millis(100));
                }
                Wake::Command(Some(command)) => self.on_command(now, command),
                Wake::Command(None) => self.stop = true,
                Wake::Task(done) => self.on_task(now, done),
                Wake::Timer => {
                    self.armed = None;
                    hold(&self.swim).handle_timeout(now);
                }
            }
        }
        self.publish();
        let stopping = std::mem::take(&mut self.stopping);
        // Dropping the driver closes the sockets and the command channel,
        // ends the stream tasks and answers every other waiting caller with
        // `Error::Shutdown` — all before `shutdown()` returns.
        drop(self);
        info!(node = %name, "node shut down");
        for reply in stopping {
            let _ = reply.send(Ok(()));
        }
    }

    /// Carries out everything the core asked for. The core is locked for
    /// each output taken, not while it is carried out.
    async fn flush(&mut self) {
        // First, so an application reacting to an event reads them current.
        self.counts.update(&hold(&self.swim));
        loop {
            let output = hold(&self.swim).poll_output();
            let Some(output) = output else {
                break;
            };
            match output {
                Output::Packet { to, data } => {
                    let result = self.transport.send_to(&data, to).await;
                    if let Err(e) = &result {
                        self.stats.send_errors += 1;
                        debug!(%to, error = %e, "udp send failed");
                    }
                    if let Some(reply) = self.best_effort.take() {
                        let _ = reply.send(result.map(|_| ()).map_err(|e| Error::Datagram {
                            to,
                            kind: e.kind(),
                            message: e.to_string(),
                        }));
                    }
                }
                Output::Connect {
                    id,
                    to,
                    data,
                    expect_reply,
                    deadline,
                } => {
                    let deadline = self.clock.to_std(deadline);
                    let limits = hold(&self.swim).config().limits.clone();
                    let transport = self.transport.clone();
                    self.tasks.push(Box::pin(async move {
                        let result = stream::exchange::<R, T>(
                            transport,
                            to,
                            data,
                            expect_reply,
                            deadline,
                            limits,
                        )
                        .await;
                        Done::Exchange(id, result)
                    }));
                }
                Output::StreamReply { stream, data } => {
                    let Some(conn) = self.answering.remove(&stream) else {
                        continue;
                    };
                    match data {
                        Some(data) => {
                            let deadline = self.stream_deadline();
                            self.tasks.push(Box::pin(async move {
                                Done::Replied(stream::reply::<R, _>(conn, data, deadline).await)
                            }));
                        }
                        None => self.incoming -= 1,
                    }
                }
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    /// When an incoming stream must be done: a stream timeout from now, on
    /// the runtime's clock.
    fn stream_deadline(&self) -> std::time::Instant {
        let now = self.clock.now();
        self.clock
            .to_std(now + hold(&self.swim).config().tcp_timeout)
    }

    /// Keeps the timer on the core's next deadline, and publishes the
    /// metrics when due.
    fn refresh(&mut self) {
        let next = hold(&self.swim).poll_timeout();
        if self.armed != next {
            self.armed = next;
            if let Some(at) = next {
                let at = self.clock.to_std(at);
                match &mut self.timer {
                    Some(timer) => R::reset_timer(timer, at),
                    None => self.timer = Some(R::timer_at(at)),
                }
            }
        }
        if self.metrics.due(self.clock.now()) {
            self.publish();
        }
    }

    /// Waits for the next input, taking the sources in turn so a flood on
    /// one cannot starve the others.
    async fn wait(&mut self) -> Wake<T::Stream> {
        self.turn = self.turn.wrapping_add(1);
        let turn = self.turn;
        // At the cap, connections wait in the kernel's backlog rather than
        // being refused: a burst of joins is served as slots free up.
        let accepting = self.incoming < self.max_incoming
            && self
                .accept_paused_until
                .is_none_or(|until| self.clock.now() >= until);
        if accepting {
            self.accept_paused_until = None;
        }
        let Driver {
            transport,
            packet,
            commands,
            tasks,
            timer,
            armed,
            ..
        } = self;
        let mut accept = pin!(transport.accept());
        poll_fn(|cx| {
            for i in 0..5 {
                let wake = match (turn + i) % 5 {
                    0 => DATAGRAM
                        .with_borrow_mut(|buf| {
                            transport.poll_recv_from(cx, buf).map_ok(|(len, from)| {
                                packet.clear();
                                packet.extend_from_slice(&buf[..len]);
                                from
                            })
                        })
                        .map(Wake::Packet),
                    1 if accepting => accept.as_mut().poll(cx).map(Wake::Accept),
                    1 => Poll::Pending,
                    2 => commands.as_mut().poll_next(cx).map(Wake::Command),
                    3 => match tasks.poll_next_unpin(cx) {
                        Poll::Ready(Some(done)) => Poll::Ready(Wake::Task(done)),
                        _ => Poll::Pending,
                    },
                    _ => match (timer.as_mut(), *armed) {
                        (Some(t), Some(_)) => Pin::new(t).poll(cx).map(|()| Wake::Timer),
                        _ => Poll::Pending,
                    },
                };
                if wake.is_ready() {
                    return wake;
                }
            }
            Poll::Pending
        })
        .await
    }

    fn on_packet(&mut self, now: Instant, from: SocketAddr) {
        let refused = {
            let mut swim = hold(&self.swim);
            let errors = swim.stats().wire_errors;
            swim.handle_packet(now, from, &self.packet);
            refusal(&swim, errors)
        };
        self.log_refusal(now, refused, from, "packet");
    }

    /// Logs why input was `refused` ([`refusal`]); wrong keys and labels
    /// show up here.
    fn log_refusal(&mut self, now: Instant, refused: Option<&str>, from: SocketAddr, what: &str) {
        if let Some(why) = refused {
            if self.log_budget.allow(now) {
                warn!(%from, reason = why, "refused a {what}");
            }
        }
    }

    fn on_accept(&mut self, now: Instant, mut conn: T::Stream, from: SocketAddr) {
        self.incoming += 1;
        if self.incoming == self.max_incoming {
            self.stats.streams_at_capacity += 1;
            if self.log_budget.allow(now) {
                warn!(%from, limit = self.max_incoming, "incoming streams at capacity; pausing accepts");
            }
        }
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        let limits = hold(&self.swim).config().limits.clone();
        let deadline = self.stream_deadline();
        self.tasks.push(Box::pin(async move {
            let read = stream::read_message(&mut conn, StreamRole::Accept, &limits);
            let result = match stream::before::<R, _>(deadline, read).await {
                Some(Ok(frame)) => Ok((conn, frame)),
                Some(Err(e)) => Err(e),
                None => Err(ReadError::Io(io::ErrorKind::TimedOut.into())),
            };
            Done::Read(id, from, result)
        }));
    }

    fn on_task(&mut self, now: Instant, done: Done<T::Stream>) {
        match done {
            Done::Exchange(id, result) => {
                if let Some(reply) = self.reliable.remove(&id) {
                    let _ = reply.send(
                        result
                            .as_ref()
                            .map(|_| ())
                            .map_err(|e| Error::Send(e.clone())),
                    );
                }
                match result {
                    Ok(bytes) => hold(&self.swim).handle_exchange(now, id, Ok(&bytes)),
                    Err(e) => {
                        match &e {
                            // A peer that answers with nonsense or an error
                            // is worth a warning; a dead one is routine.
                            ExchangeError::BadReply(_) | ExchangeError::Remote(_)
                                if self.log_budget.allow(now) =>
                            {
                                warn!(?id, error = %e, "stream exchange refused")
                            }
                            _ => debug!(?id, error = %e, "stream exchange failed"),
                        }
                        hold(&self.swim).handle_exchange(now, id, Err(e))
                    }
                }
            }
            Done::Read(id, from, Ok((conn, frame))) => {
                self.answering.insert(id, conn);
                let refused = {
                    let mut swim = hold(&self.swim);
                    let errors = swim.stats().wire_errors;
                    swim.handle_stream(now, id, from, &frame);
                    refusal(&swim, errors)
                };
                self.log_refusal(now, refused, from, "stream");
            }
            Done::Read(_, from, Err(e)) => {
                self.incoming -= 1;
                self.stats.stream_errors += 1;
                match e {
                    ReadError::Wire(e) if self.log_budget.allow(now) => {
                        warn!(%from, reason = e.kind(), "refused a stream: {e}")
                    }
                    ReadError::Io(e) => debug!(%from, error = %e, "incoming stream failed"),
                    _ => debug!(%from, "incoming stream ended early"),
                }
            }
            Done::Replied(result) => {
                self.incoming -= 1;
                if let Err(e) = result {
                    debug!(error = %e, "writing a stream reply failed");
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match &event {
            Event::MemberJoined(m) => info!(node = %m.name, addr = %m.addr, "member joined"),
            Event::MemberUpdated(m) => info!(node = %m.name, addr = %m.addr, "member updated"),
            Event::MemberLeft(m) => info!(node = %m.name, addr = %m.addr, "member left"),
            Event::MemberFailed(m) => info!(node = %m.name, addr = %m.addr, "member failed"),
            Event::JoinCompleted { id, joined, failed } => {
                if let Some((reply, seeds)) = self.joins.remove(id) {
                    let failures = failed
                        .iter()
                        .map(|(addr, why)| JoinFailure {
                            seed: seeds.get(addr).cloned().unwrap_or_else(|| addr.to_string()),
                            addr: Some(*addr),
                            reason: JoinFailureReason::Exchange(why.clone()),
                        })
                        .collect();
                    let _ = reply.send(Ok((*joined, failures)));
                }
            }
            Event::LeaveCompleted { timed_out } => {
                self.left = true;
                for reply in self.leaving.drain(..) {
                    let _ = reply.send(if *timed_out {
                        Err(Error::LeaveTimedOut)
                    } else {
                        Ok(())
                    });
                }
            }
            Event::PingCompleted { id, rtt, .. } => {
                if let Some(reply) = self.pings.remove(id) {
                    let _ = reply.send(Ok(*rtt));
                }
            }
            Event::PingFailed { id, .. } => {
                if let Some(reply) = self.pings.remove(id) {
                    let _ = reply.send(Err(Error::PingFailed));
                }
            }
            Event::NameConflict { existing, other } => {
                let now = self.clock.now();
                let key = (existing.name.clone(), other.addr);
                let quiet = |at: &Instant| now.saturating_duration_since(*at) < CONFLICT_QUIET;
                if self.conflicts.get(&key).is_some_and(quiet) {
                    return; // reported already; it goes on
                }
                if self.conflicts.len() >= 1024 {
                    self.conflicts.retain(|_, at| quiet(at));
                }
                self.conflicts.insert(key, now);
                warn!(node = %existing.name, known = %existing.addr, claimed = %other.addr, "name conflict");
            }
            Event::UserMessage { .. }
            | Event::RemoteState { .. }
            | Event::ProbeAcked { .. }
            | Event::BroadcastFinished { .. } => {}
        }
        if !self.events.push(event) && self.log_budget.allow(self.clock.now()) {
            warn!("event reader is behind; dropping events other than membership");
        }
    }

    /// Whether a receiver's event queue can hold `payload` at all: one over
    /// its payload budget would be dropped on arrival.
    fn fits_an_event(&self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() <= self.max_event_payload {
            return Ok(());
        }
        Err(Error::Command(swim_core::CommandError::PayloadTooLarge {
            len: payload.len(),
            limit: self.max_event_payload,
            limit_of: "a receiver's event queue holds (NodeConfig::event_bytes, 4 MiB by default)",
        }))
    }

    fn on_command(&mut self, now: Instant, command: Command) {
        let mut swim = hold(&self.swim);
        match command {
            Command::Join(seeds, reply) => {
                let addrs: Vec<SocketAddr> = seeds.iter().map(|(_, addr)| *addr).collect();
                let id = swim.join_checked(now, &addrs);
                let mut named = HashMap::new();
                for (text, addr) in seeds {
                    named.entry(addr).or_insert(text);
                }
                self.joins.insert(id, (reply, named));
            }
            Command::Leave(timeout, reply) => {
                if self.left {
                    let _ = reply.send(Ok(()));
                } else {
                    swim.leave(now, timeout);
                    self.leaving.push(reply);
                }
            }
            Command::UpdateMeta(meta, reply) => {
                let result = swim.update_meta(now, &meta).map_err(Error::from);
                let _ = reply.send(result);
            }
            Command::SetLocalState(state, reply) => {
                swim.set_local_state(now, state);
                let _ = reply.send(Ok(()));
            }
            Command::SetAckPayload(payload, reply) => {
                swim.set_ack_payload(now, payload);
                let _ = reply.send(Ok(()));
            }
            Command::Broadcast(key, payload, reply) => {
                let result = match key {
                    Some(key) => swim.broadcast_named(now, &key, &payload),
                    None => swim.broadcast(now, &payload),
                };
                let _ = reply.send(result.map_err(Error::from));
            }
            Command::SendBestEffort(node, payload, reply) => {
                if let Err(e) = self.fits_an_event(&payload) {
                    let _ = reply.send(Err(e));
                    return;
                }
                match swim.send_best_effort(now, &node, &payload) {
                    Ok(()) => self.best_effort = Some(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::SendReliable(node, payload, reply) => {
                if let Err(e) = self.fits_an_event(&payload) {
                    let _ = reply.send(Err(e));
                    return;
                }
                match swim.send_reliable(now, &node, &payload) {
                    Ok(id) => {
                        self.reliable.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Ping(node, reply) => match swim.ping(now, &node) {
                Ok(id) => {
                    self.pings.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Command::AddKey(key, reply) => {
                let _ = reply.send(swim.add_key(now, key).map_err(Error::from));
            }
            Command::UseKey(key, reply) => {
                let _ = reply.send(swim.use_key(now, &key).map_err(Error::from));
            }
            Command::RemoveKey(key, reply) => {
                let _ = reply.send(swim.remove_key(now, &key).map_err(Error::from));
            }
            Command::Stats(reply) => {
                let _ = reply.send(Ok(self.stats(&swim)));
            }
            // Nothing to do here: the loop asks the core for its next deadline after every
            // command, and so the delegate whether it has broadcasts.
            Command::BroadcastsQueued(reply) => {
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown(reply) => {
                self.stopping.push(reply);
                self.stop = true;
            }
        }
    }
}

/// Why the input just handled was refused, if the core counted a decode
/// error since it read `errors`.
fn refusal(swim: &Swim<BoxDelegate>, errors: u64) -> Option<&'static str> {
    let stats = swim.stats();
    (stats.wire_errors != errors).then(|| stats.last_wire_error.unwrap_or("invalid"))
}
