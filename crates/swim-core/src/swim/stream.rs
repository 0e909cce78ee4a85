//! The reliable plane: stream exchanges the node opens (push/pulls, TCP
//! pings, reliable user messages), their results, and streams other nodes
//! open to it.

use alloc::borrow::Cow;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::catch_up::Happened;
use super::timers::Timer;
use super::{ExchangeId, JoinId, Output, StreamId, Swim};
use crate::delegate::Delegate;
use crate::event::ExchangeError;
use crate::rejection::Rejection;
use crate::time::Instant;
use crate::wire::{ErrorResponse, Message, StreamRole, Transport, WireError};

/// What an exchange is for.
#[derive(Debug, Clone)]
pub(super) enum Exchange {
    /// A push/pull with `to`, periodic or for a join (`confirm`: 0 for
    /// the join's own, `n` for the n-th confirming push/pull of a checked
    /// join).
    PushPull {
        join: Option<JoinId>,
        to: SocketAddr,
        confirm: u8,
    },
    /// The TCP fallback of probe `seq`.
    TcpPing { seq: u32 },
    /// A user message sent with [`Swim::send_reliable`].
    Reliable,
}

/// The exchanges in flight.
#[derive(Debug, Default)]
pub(super) struct Exchanges {
    open: hashbrown::HashMap<ExchangeId, Exchange, foldhash::fast::FixedState>,
    last_id: u64,
    /// Push/pulls among `open`.
    push_pulls: usize,
}

impl Exchanges {
    pub(super) fn is_open(&self, id: ExchangeId) -> bool {
        self.open.contains_key(&id)
    }

    pub(super) fn push_pulls(&self) -> usize {
        self.push_pulls
    }

    fn close(&mut self, id: ExchangeId) -> Option<Exchange> {
        let kind = self.open.remove(&id)?;
        if matches!(kind, Exchange::PushPull { .. }) {
            self.push_pulls -= 1;
        }
        Some(kind)
    }
}

impl<D: Delegate> Swim<D> {
    // ---------------------------------------------------------------- exchanges out

    /// Asks the caller to open a stream to `to`, write `message` (sealed),
    /// and read a reply if `expect_reply`, by `deadline`.
    pub(super) fn connect(
        &mut self,
        now: Instant,
        to: SocketAddr,
        message: &[u8],
        expect_reply: bool,
        deadline: Instant,
        kind: Exchange,
    ) -> ExchangeId {
        let ex = &mut self.exchanges;
        ex.last_id += 1;
        let id = ExchangeId(ex.last_id);
        let mut data = Vec::with_capacity(message.len() + 64);
        self.envelope.write_stream_label(&mut data);
        let rng = &mut self.rng;
        self.envelope
            .seal_stream(message, || rng.nonce(), &mut data);
        if matches!(kind, Exchange::PushPull { .. }) {
            ex.push_pulls += 1;
        }
        ex.open.insert(id, kind);
        self.timers
            .schedule(deadline.max(now), Timer::ExchangeDeadline(id));
        self.stats.streams_opened += 1;
        self.outputs.push_back(Output::Connect {
            id,
            to,
            data,
            expect_reply,
            deadline,
        });
        id
    }

    /// The result of an exchange from [`Output::Connect`]: the reply's bytes
    /// as framed by a [`StreamFramer`](crate::wire::StreamFramer) (empty when
    /// no reply was expected), or why it failed.
    pub fn handle_exchange(
        &mut self,
        now: Instant,
        id: ExchangeId,
        result: Result<&[u8], ExchangeError>,
    ) {
        self.input(now, |s| match result {
            Ok(reply) => s.exchange_succeeded(now, id, reply),
            Err(e) => s.exchange_failed(now, id, e),
        });
    }

    pub(super) fn exchange_timed_out(&mut self, now: Instant, id: ExchangeId) {
        if self.exchanges.is_open(id) {
            self.exchange_failed(now, id, ExchangeError::Timeout);
        }
    }

    fn exchange_failed(&mut self, now: Instant, id: ExchangeId, error: ExchangeError) {
        let Some(kind) = self.exchanges.close(id) else {
            return;
        };
        self.stats.streams_failed += 1;
        match kind {
            Exchange::PushPull { join, to, .. } => {
                if let Some(join) = join {
                    self.join_progress(join, Err((to, error)));
                }
            }
            Exchange::TcpPing { seq } => self.fallback_done(now, seq, false),
            Exchange::Reliable => {}
        }
    }

    fn exchange_succeeded(&mut self, now: Instant, id: ExchangeId, reply: &[u8]) {
        let Some(kind) = self.exchanges.close(id) else {
            return;
        };
        match kind {
            Exchange::Reliable => {}
            Exchange::TcpPing { seq } => {
                let ok = self.open_reply(reply).is_ok_and(|m| {
                    let limits = self.envelope.limits();
                    matches!(Message::decode(&m, Transport::Stream, limits), Ok(Message::Ack(a)) if a.seq_no == seq)
                });
                self.fallback_done(now, seq, ok);
            }
            Exchange::PushPull { join, to, confirm } => {
                let check = join.filter(|&id| self.join_is_checked(id)).map(|_| confirm);
                let result =
                    self.merge_reply(now, to, reply, join.is_some() && confirm == 0, check);
                if result.is_err() {
                    self.stats.streams_failed += 1;
                }
                match (join, result) {
                    (Some(join), Ok(true)) => self.confirm_join_after(now, to, join, confirm + 1),
                    (Some(join), result) => {
                        self.join_progress(join, result.map(|_| ()).map_err(|e| (to, e)))
                    }
                    (None, _) => {}
                }
            }
        }
    }

    /// A reply, unsealed.
    pub(super) fn open_reply<'a>(&self, reply: &'a [u8]) -> Result<Cow<'a, [u8]>, ExchangeError> {
        self.envelope
            .open_stream(reply, StreamRole::Reply)
            .map_err(ExchangeError::BadReply)
    }

    // ---------------------------------------------------------------- streams in

    /// One whole message from an incoming stream, as measured by a
    /// [`StreamFramer`](crate::wire::StreamFramer) in the
    /// [`Accept`](StreamRole::Accept) role. The answer comes as
    /// [`Output::StreamReply`] for `stream`.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        stream: StreamId,
        from: SocketAddr,
        frame: &[u8],
    ) {
        self.input(now, |s| {
            s.stats.streams_accepted += 1;
            let data = s.answer_stream(now, from, frame);
            s.outputs.push_back(Output::StreamReply { stream, data });
        });
    }

    fn answer_stream(&mut self, now: Instant, from: SocketAddr, frame: &[u8]) -> Option<Vec<u8>> {
        if !self.config.ip_allowed(from.ip()) {
            self.stats.count_rejected(Rejection::StreamCidr);
            return None;
        }
        let opened = match self.envelope.open_stream(frame, StreamRole::Accept) {
            Ok(m) => m,
            Err(e) => {
                self.stats.count_wire_error(&e);
                // Go answers read errors with an error response, except for
                // a wrong label, where it just closes.
                if matches!(e, WireError::LabelMismatch | WireError::BadLabelHeader) {
                    return None;
                }
                return Some(self.stream_error(&e.to_string()));
            }
        };
        let limits = self.envelope.limits().clone();
        let message = match Message::decode(&opened, Transport::Stream, &limits) {
            Ok(m) => m,
            Err(e) => {
                self.stats.count_wire_error(&e);
                return None;
            }
        };
        self.stats.count_message(message.message_type());
        match message {
            Message::PushPull(pp) => {
                let reply = self.answer_push_pull(now, from, pp);
                Some(self.seal_reply(&reply))
            }
            Message::Ping(p) => {
                let ack = self.answer_ping(&p, Transport::Stream)?;
                self.catch_up_on(
                    now,
                    Happened::Contact {
                        node: p.source_node,
                        addr: &p.source_addr,
                        port: p.source_port,
                    },
                );
                Some(self.seal_reply(&ack))
            }
            Message::User(payload) => {
                self.receive_user_message(from, payload, Transport::Stream);
                None
            }
            _ => None,
        }
    }

    fn seal_reply(&mut self, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + 64);
        let rng = &mut self.rng;
        self.envelope.seal_stream(message, || rng.nonce(), &mut out);
        out
    }

    fn stream_error(&mut self, text: &str) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 + text.len());
        Message::Error(ErrorResponse { error: text }).encode(Transport::Stream, &mut buf);
        self.seal_reply(&buf)
    }
}
