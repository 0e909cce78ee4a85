//! Queries: Go Serf's `query.go` and the query half of `serf.go` — asking
//! the cluster, answering, acks, responses deduplicated per node, relays,
//! the query clock's buffer of recent queries.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use swim_core::Instant;

use super::{MemberStatus, Serf, SerfError, SerfEvent, SerfOutput};
use crate::bounds::QUERIES_PER_LTIME_MAX;
use crate::clock::LamportTime;
use crate::messages::{
    Filter, Message, Query, QueryResponse, Relay, QUERY_FLAG_ACK, QUERY_FLAG_NO_BROADCAST,
};
use crate::stats::SerfRejection;

/// How a query is sent (Go's `QueryParam`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// Only these nodes answer (none: no filter).
    pub filter_nodes: Vec<String>,
    /// Only nodes whose tag matches the regular expression answer (Go's
    /// `regexp.MatchString`: unanchored; a missing tag reads as empty).
    pub filter_tags: Vec<(String, String)>,
    /// Every node that passes the filters acks on receipt.
    pub request_ack: bool,
    /// How many other members relay each ack and response too.
    pub relay_factor: u8,
    /// How long the query stays open; `None`: Go's default,
    /// [`Serf::default_query_timeout`].
    pub timeout: Option<Duration>,
}

/// One of our queries: its clock time and random id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryId {
    /// The query clock's time when it was sent.
    pub ltime: LamportTime,
    /// Its random id.
    pub id: u32,
}

/// A query that reached this node and passed its filters (Go's `Query`
/// event): the application answers with [`Serf::respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingQuery {
    /// The query.
    pub query: QueryId,
    /// Its name.
    pub name: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Who asked.
    pub source_node: String,
    /// Where to answer, if the query carried a usable address.
    pub source_addr: Option<SocketAddr>,
    /// Answers after this are refused (Go's `Deadline`).
    pub deadline: Instant,
    /// How many other members relay the answer too.
    pub relay_factor: u8,
}

/// News of one of our queries (Go's `QueryResponse` channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryProgress {
    /// A node acked (once per node).
    Ack {
        /// The query.
        query: QueryId,
        /// The node.
        from: String,
    },
    /// A node answered (once per node).
    Response {
        /// The query.
        query: QueryId,
        /// The node.
        from: String,
        /// Its answer.
        payload: Vec<u8>,
    },
    /// The query's timeout passed: nothing more is reported.
    Closed {
        /// The query.
        query: QueryId,
    },
}

/// One of our queries, open until its deadline.
#[derive(Debug)]
pub(super) struct OpenQuery {
    id: u32,
    deadline: Instant,
    acks: HashSet<String>,
    responses: HashSet<String>,
    /// Most acks, and most responses, taken: the members alive or leaving
    /// when it was sent (Go sizes its channels by its member count).
    capacity: usize,
}

/// Ids of the queries seen at one query clock time (Go's `queries`).
#[derive(Debug, Clone)]
pub(super) struct SeenAt {
    ltime: LamportTime,
    ids: Vec<u32>,
}

/// The query half of Serf's state.
#[derive(Debug, Default)]
pub(super) struct Queries {
    /// Slot `t % len` holds the ids seen at query time `t`.
    pub(super) buffer: Vec<Option<SeenAt>>,
    /// Queries before this time are ignored (Go's `queryMinTime`).
    pub(super) min_time: LamportTime,
    /// Our open queries, by clock time (one query per time: the clock
    /// moves on with each).
    pub(super) open: HashMap<LamportTime, OpenQuery>,
    /// Incoming queries answered, with their deadline (Go zeroes the
    /// query's deadline instead).
    pub(super) answered: HashMap<QueryId, Instant>,
}

impl Queries {
    pub(super) fn new(len: usize) -> Queries {
        Queries {
            buffer: vec![None; len],
            ..Queries::default()
        }
    }

    /// The earliest deadline of an open query or of an answered one.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let open = self.open.values().map(|q| q.deadline);
        open.chain(self.answered.values().copied()).min()
    }
}

/// Go's `net.IP` bytes of `ip`: 4 for IPv4.
fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

impl Serf {
    /// Go's `DefaultQueryTimeout`: gossip interval × `query_timeout_mult` ×
    /// ⌈log10(N + 1)⌉, N the members alive or leaving (this node included).
    pub fn default_query_timeout(&self) -> Duration {
        let n = self
            .members
            .values()
            .filter(|e| matches!(e.member.status, MemberStatus::Alive | MemberStatus::Leaving))
            .count();
        let scale = ((n + 1) as f64).log10().ceil() as u32;
        self.config.gossip_interval * self.config.query_timeout_mult * scale
    }

    /// Asks every member (Go's `Serf.Query`): the query is handled here
    /// too, then gossiped. Acks and answers come back as
    /// [`SerfOutput::Query`] until its timeout, then
    /// [`QueryProgress::Closed`].
    pub fn query(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
    ) -> Result<QueryId, SerfError> {
        if self.state != super::SerfState::Alive {
            return Err(SerfError::Left);
        }
        if self.config.protocol_version < 4 {
            return Err(SerfError::Unsupported("queries need protocol 4"));
        }
        let local = self
            .members
            .get(&self.config.name)
            .map(|e| e.member.addr)
            .ok_or(SerfError::Unsupported(
                "the Swim has not announced this node yet",
            ))?;
        let timeout = params
            .timeout
            .unwrap_or_else(|| self.default_query_timeout());
        let mut filters = Vec::new();
        if !params.filter_nodes.is_empty() {
            filters.push(Filter::Nodes(params.filter_nodes.clone()).to_bytes());
        }
        for (tag, expr) in &params.filter_tags {
            let filter = Filter::Tag {
                tag: tag.clone(),
                expr: expr.clone(),
            };
            filters.push(filter.to_bytes());
        }
        let q = Query {
            ltime: self.query_clock.time(),
            id: (self.next_random() as u32) >> 1, // Go: rand.Int31
            addr: Some(ip_bytes(local.ip())),
            port: local.port(),
            source_node: self.config.name.clone(),
            filters,
            flags: if params.request_ack {
                QUERY_FLAG_ACK
            } else {
                0
            },
            relay_factor: params.relay_factor,
            timeout,
            name: name.to_owned(),
            payload: Some(payload.to_vec()),
        };
        let raw = Message::Query(q.clone()).to_bytes();
        let limit = self.config.query_size_limit;
        if raw.len() > limit {
            return Err(SerfError::QueryTooLarge {
                len: raw.len(),
                limit,
            });
        }
        let id = QueryId {
            ltime: q.ltime,
            id: q.id,
        };
        let capacity = self
            .members
            .values()
            .filter(|e| matches!(e.member.status, MemberStatus::Alive | MemberStatus::Leaving))
            .count();
        let open = OpenQuery {
            id: q.id,
            deadline: now + timeout,
            acks: HashSet::new(),
            responses: HashSet::new(),
            capacity,
        };
        self.queries.open.insert(q.ltime, open);
        self.handle_query(now, q);
        self.gossip(&raw);
        Ok(id)
    }

    /// Answers `query` (Go's `Query.Respond`): once, before its deadline,
    /// within the response size limit; relayed as it asked.
    pub fn respond(
        &mut self,
        now: Instant,
        query: &IncomingQuery,
        payload: &[u8],
    ) -> Result<(), SerfError> {
        let resp = QueryResponse {
            ltime: query.query.ltime,
            id: query.query.id,
            from: self.config.name.clone(),
            flags: 0,
            payload: Some(payload.to_vec()),
        };
        let raw = Message::QueryResponse(resp).to_bytes();
        let limit = self.config.query_response_size_limit;
        if raw.len() > limit {
            return Err(SerfError::QueryTooLarge {
                len: raw.len(),
                limit,
            });
        }
        if self.queries.answered.contains_key(&query.query) {
            return Err(SerfError::QueryAnswered);
        }
        if now > query.deadline {
            return Err(SerfError::QueryExpired);
        }
        // Go keeps no such table (the deadline lives in the query the
        // application holds); ours forgets queries older than the query
        // buffer covers, so a peer's queries with centuries-long timeouts
        // cannot grow it. A second answer to one would be deduplicated by
        // the asker.
        let (len, cur) = (self.queries.buffer.len() as u64, self.query_clock.time().0);
        if cur > len {
            self.queries.answered.retain(|q, _| q.ltime.0 >= cur - len);
        }
        self.queries.answered.insert(query.query, query.deadline);
        self.send_response(
            now,
            &query.source_node,
            query.source_addr,
            query.relay_factor,
            raw,
        );
        Ok(())
    }

    /// Closes our queries past their deadline, forgets answered ones.
    pub(super) fn expire_queries(&mut self, now: Instant) {
        let expired: Vec<LamportTime> = self
            .queries
            .open
            .iter()
            .filter(|(_, q)| q.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for ltime in expired {
            if let Some(q) = self.queries.open.remove(&ltime) {
                let query = QueryId { ltime, id: q.id };
                self.report(QueryProgress::Closed { query });
            }
        }
        self.queries.answered.retain(|_, deadline| *deadline > now);
    }

    /// Go's `handleQuery`: true to re-broadcast (first sight of it, and
    /// the sender allows it).
    pub(super) fn handle_query(&mut self, now: Instant, query: Query) -> bool {
        self.query_clock.witness(query.ltime);
        let len = self.queries.buffer.len() as u64;
        let cur = self.query_clock.time().0;
        // Before the minimum, or older than the buffer remembers.
        if query.ltime < self.queries.min_time || (cur > len && query.ltime.0 < cur - len) {
            self.stats.count_rejected(SerfRejection::QueryTooOld);
            return false;
        }
        let slot = &mut self.queries.buffer[(query.ltime.0 % len) as usize];
        match slot {
            Some(seen) if seen.ltime == query.ltime => {
                if seen.ids.contains(&query.id) {
                    return false;
                }
                if seen.ids.len() >= QUERIES_PER_LTIME_MAX {
                    self.stats.count_rejected(SerfRejection::QueryTimeFull);
                    return false;
                }
                seen.ids.push(query.id);
            }
            _ => {
                *slot = Some(SeenAt {
                    ltime: query.ltime,
                    ids: vec![query.id],
                })
            }
        }
        let rebroadcast = query.flags & QUERY_FLAG_NO_BROADCAST == 0;
        if !self.should_process(&query.filters) {
            return rebroadcast;
        }
        let source_addr = query
            .addr
            .as_deref()
            .and_then(crate::messages::ip_from_bytes)
            .map(|ip| SocketAddr::new(ip, query.port));
        let id = QueryId {
            ltime: query.ltime,
            id: query.id,
        };
        if query.flags & QUERY_FLAG_ACK != 0 {
            let ack = QueryResponse {
                ltime: query.ltime,
                id: query.id,
                from: self.config.name.clone(),
                flags: QUERY_FLAG_ACK,
                payload: None,
            };
            let raw = Message::QueryResponse(ack).to_bytes();
            self.send_response(
                now,
                &query.source_node,
                source_addr,
                query.relay_factor,
                raw,
            );
        }
        let incoming = IncomingQuery {
            query: id,
            name: query.name,
            payload: query.payload.unwrap_or_default(),
            source_node: query.source_node,
            source_addr,
            deadline: now + query.timeout,
            relay_factor: query.relay_factor,
        };
        if !self.handle_internal_query(now, &incoming) {
            self.emit(SerfEvent::Query(incoming));
        }
        rebroadcast
    }

    /// Go's `handleQueryResponse`: an ack or answer to an open query of
    /// ours, reported once per node, up to the query's capacity.
    pub(super) fn handle_query_response(&mut self, now: Instant, resp: QueryResponse) {
        // Not running (Go logs it).
        let Some(open) = self
            .queries
            .open
            .get_mut(&resp.ltime)
            .filter(|q| q.id == resp.id && q.deadline > now)
        else {
            self.stats
                .count_rejected(SerfRejection::ResponseUnknownQuery);
            return;
        };
        let query = QueryId {
            ltime: resp.ltime,
            id: resp.id,
        };
        let ack = resp.flags & QUERY_FLAG_ACK != 0;
        let seen = if ack {
            &mut open.acks
        } else {
            &mut open.responses
        };
        if seen.contains(&resp.from) {
            self.stats.count_rejected(SerfRejection::ResponseDuplicate);
            return;
        }
        if seen.len() >= open.capacity {
            self.stats.count_rejected(SerfRejection::ResponseOverflow);
            return;
        }
        seen.insert(resp.from.clone());
        let progress = if ack {
            QueryProgress::Ack {
                query,
                from: resp.from,
            }
        } else {
            QueryProgress::Response {
                query,
                from: resp.from,
                payload: resp.payload.unwrap_or_default(),
            }
        };
        self.report(progress);
    }

    /// A relayed message: forwarded to its destination (Go's
    /// `messageRelayType` case), or handled if that is us. Go relays
    /// whatever it carries; it only ever wraps a query response, so that
    /// is all we forward — a relay inside a relay addressed to us would
    /// recurse as deep as the message is long.
    pub(super) fn handle_relay(&mut self, now: Instant, relay: Relay) {
        if relay.message.first() != Some(&(crate::messages::MessageType::QueryResponse as u8)) {
            self.stats.count_rejected(SerfRejection::RelayNotResponse);
            return;
        }
        let dest = relay.dest_addr();
        if !self.send_to(now, &relay.dest_name, dest, relay.message) {
            self.stats
                .count_rejected(SerfRejection::RelayUnknownDestination);
        }
    }

    /// Go's `shouldProcessQuery`: every filter passes.
    fn should_process(&self, filters: &[Vec<u8>]) -> bool {
        filters.iter().all(|f| match Filter::decode(f) {
            Ok(Filter::Nodes(nodes)) => nodes.contains(&self.config.name),
            Ok(Filter::Tag { tag, expr }) => {
                let value = self.config.tags.get(&tag).map_or("", String::as_str);
                // Go's regexp.MatchString: a match anywhere; a bad
                // expression filters us out.
                regex::Regex::new(&expr).is_ok_and(|re| re.is_match(value))
            }
            Err(_) => false,
        })
    }

    /// Sends an ack or answer to the querier, and copies through
    /// `relay_factor` other members (Go's `relayResponse`).
    fn send_response(
        &mut self,
        now: Instant,
        dest_name: &str,
        dest_addr: Option<SocketAddr>,
        relay_factor: u8,
        raw: Vec<u8>,
    ) {
        if relay_factor > 0 && self.members.len() > relay_factor as usize {
            if let Some(addr) = dest_addr {
                let relay = Message::Relay(Relay {
                    dest_ip: ip_bytes(addr.ip()),
                    dest_port: addr.port(),
                    dest_zone: String::new(),
                    dest_name: dest_name.to_owned(),
                    message: raw.clone(),
                })
                .to_bytes();
                if relay.len() <= self.config.query_response_size_limit {
                    for name in self.random_relays(relay_factor as usize) {
                        self.outputs.push_back(SerfOutput::SendTo {
                            node: name,
                            payload: relay.clone(),
                        });
                    }
                }
            }
        }
        self.send_to(now, dest_name, dest_addr, raw);
    }

    /// Sends `raw` to a member known by `name` (or else by `addr`, for
    /// senders that do not name themselves); to ourselves, handles it.
    /// False if no member is either.
    fn send_to(
        &mut self,
        now: Instant,
        name: &str,
        addr: Option<SocketAddr>,
        raw: Vec<u8>,
    ) -> bool {
        let node = if self.members.contains_key(name) {
            Some(name.to_owned())
        } else {
            addr.and_then(|a| {
                self.members
                    .values()
                    .find(|e| e.member.addr == a)
                    .map(|e| e.member.name.clone())
            })
        };
        match node {
            Some(node) if node == self.config.name => {
                let _ = self.handle_message(now, &raw);
            }
            Some(node) => self
                .outputs
                .push_back(SerfOutput::SendTo { node, payload: raw }),
            None => return false, // Go would send to the address; we only know members
        }
        true
    }

    /// Up to `k` distinct alive members other than us, speaking protocol 5
    /// (Go's `kRandomMembers` with `relayResponse`'s filter).
    fn random_relays(&mut self, k: usize) -> Vec<String> {
        let mut candidates: Vec<String> = self
            .members
            .values()
            .filter(|e| {
                e.member.status == MemberStatus::Alive
                    && e.member.vsn[4] >= 5
                    && e.member.name != self.config.name
            })
            .map(|e| e.member.name.clone())
            .collect();
        candidates.sort();
        let mut chosen = Vec::new();
        while chosen.len() < k && !candidates.is_empty() {
            let i = (self.next_random() % candidates.len() as u64) as usize;
            chosen.push(candidates.swap_remove(i));
        }
        chosen
    }
}
