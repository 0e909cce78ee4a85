//! Serf's internal queries (Go's `internal_query.go`): queries named
//! `_serf_…` are handled by Serf, never delivered to the application —
//! `ping` (nothing to do: the ack is the answer), `conflict` (who holds a
//! name), and the key-management ones, whose keyring work the driver does
//! ([`SerfOutput::KeyQuery`]) before [`Serf::respond_key`] answers. The
//! asking side of `conflict` runs here too: when another node claims our
//! name, the cluster votes, and the loser stops.

use swim_core::Instant;

use super::{IncomingQuery, QueryId, QueryParams, QueryProgress, Serf, SerfError, SerfOutput};
use crate::messages::{DecodeError, KeyResponse, MemberInfo, Message};

/// The tally of our `_serf_conflict` query (Go's `resolveNodeConflict`).
#[derive(Debug)]
pub(super) struct ConflictVote {
    query: QueryId,
    responses: usize,
    matching: usize,
}

/// The prefix of internal query names (Go's `InternalQueryPrefix`).
pub const INTERNAL_QUERY_PREFIX: &str = "_serf_";

/// Go's `minEncodedKeyLength`: a list-keys answer holds at most the
/// response limit over this many keys.
const MIN_ENCODED_KEY_LENGTH: usize = 25;

/// A key-management request from the cluster, for the Swim's keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp {
    /// `_serf_install-key`: add this key for decryption.
    Install(Vec<u8>),
    /// `_serf_use-key`: make this installed key the primary.
    Use(Vec<u8>),
    /// `_serf_remove-key`: remove this key (not the primary).
    Remove(Vec<u8>),
    /// `_serf_list-keys`: answer with the keys and the primary.
    List,
}

impl Serf {
    /// Handles an internal query that passed the filters; false if `query`
    /// is not one (it goes to the application).
    pub(super) fn handle_internal_query(&mut self, now: Instant, query: &IncomingQuery) -> bool {
        let Some(name) = query.name.strip_prefix(INTERNAL_QUERY_PREFIX) else {
            return false;
        };
        let op = |key: fn(Vec<u8>) -> KeyOp| -> Result<KeyOp, DecodeError> {
            // Go decodes the payload after its type byte; a bad one gets a
            // failed answer with no message.
            match Message::decode(&query.payload)? {
                Message::KeyRequest(r) => Ok(key(r.key.unwrap_or_default())),
                other => Err(DecodeError::UnknownType(other.message_type() as u8)),
            }
        };
        let request = match name {
            "ping" => return true,
            "conflict" => {
                self.answer_conflict(now, query);
                return true;
            }
            "install-key" => op(KeyOp::Install),
            "use-key" => op(KeyOp::Use),
            "remove-key" => op(KeyOp::Remove),
            "list-keys" => Ok(KeyOp::List),
            _ => return true, // Go logs an unhandled internal query
        };
        match request {
            Ok(op) => self.outputs.push_back(SerfOutput::KeyQuery {
                query: query.clone(),
                op,
            }),
            Err(e) => {
                self.stats.count_decode_error(&e);
                let _ = self.respond_key(now, query, KeyResponse::default());
            }
        }
        true
    }

    /// Another node claims our name (Go's `handleNodeConflict`): unless a
    /// vote is running or resolution is off, ask the cluster who holds it.
    pub(super) fn resolve_name_conflict(&mut self, now: Instant) {
        if !self.config.enable_name_conflict_resolution || self.conflict.is_some() {
            return;
        }
        let name = format!("{INTERNAL_QUERY_PREFIX}conflict");
        let payload = self.config.name.clone().into_bytes();
        if let Ok(query) = self.query(now, &name, &payload, &QueryParams::default()) {
            self.conflict = Some(ConflictVote {
                query,
                responses: 0,
                matching: 0,
            });
        }
    }

    /// News of one of our queries: the conflict vote's are counted here,
    /// the others go to the driver.
    pub(super) fn report(&mut self, progress: QueryProgress) {
        let local = self.members.get(&self.config.name).map(|e| e.member.addr);
        let Some(vote) = self.conflict.as_mut().filter(|v| match &progress {
            QueryProgress::Ack { query, .. }
            | QueryProgress::Response { query, .. }
            | QueryProgress::Closed { query } => *query == v.query,
        }) else {
            self.outputs.push_back(SerfOutput::Query(progress));
            return;
        };
        match progress {
            QueryProgress::Ack { .. } => {}
            QueryProgress::Response { payload, .. } => {
                // Go counts a readable answer, nil included; it matches
                // when it names our address.
                let member = match Message::decode(&payload) {
                    Ok(Message::ConflictResponse(member)) => member,
                    Ok(other) => {
                        let e = DecodeError::UnknownType(other.message_type() as u8);
                        self.stats.count_decode_error(&e);
                        return;
                    }
                    Err(e) => {
                        self.stats.count_decode_error(&e);
                        return;
                    }
                };
                vote.responses += 1;
                let theirs = member.and_then(|m| {
                    let ip = crate::messages::ip_from_bytes(m.addr.as_deref()?)?;
                    Some(std::net::SocketAddr::new(ip, m.port))
                });
                if theirs.is_some() && theirs == local {
                    vote.matching += 1;
                }
            }
            QueryProgress::Closed { .. } => {
                let majority = vote.responses / 2 + 1;
                let lost = vote.matching < majority;
                self.conflict = None;
                if lost {
                    self.outputs.push_back(SerfOutput::Shutdown);
                }
            }
        }
    }

    /// Go's `handleConflict`: what we know of the node named in the payload
    /// (nil if nothing); no answer about ourselves.
    fn answer_conflict(&mut self, now: Instant, query: &IncomingQuery) {
        let node = String::from_utf8_lossy(&query.payload);
        if node == self.config.name {
            return;
        }
        let info = self.members.get(&*node).map(|e| {
            let m = &e.member;
            let ip = match m.addr.ip() {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            MemberInfo {
                name: m.name.clone(),
                addr: Some(ip),
                port: m.addr.port(),
                tags: m.tags.clone(),
                status: m.status as i64,
                protocol: [m.vsn[0], m.vsn[1], m.vsn[2]],
                delegate: [m.vsn[3], m.vsn[4], m.vsn[5]],
            }
        });
        let payload = Message::ConflictResponse(info).to_bytes();
        let _ = self.respond(now, query, &payload);
    }

    /// Answers a key query with what the keyring work gave (Go's
    /// `sendKeyResponse`): a list-keys answer that does not fit the
    /// response limit loses keys from the end, with a notice, as Go's does.
    pub fn respond_key(
        &mut self,
        now: Instant,
        query: &IncomingQuery,
        mut resp: KeyResponse,
    ) -> Result<(), SerfError> {
        let list = query.name == "_serf_list-keys";
        if !list {
            return self.respond(now, query, &Message::KeyResponse(resp).to_bytes());
        }
        let limit = self.config.query_response_size_limit;
        let actual = resp.keys.len();
        for i in (0..=limit / MIN_ENCODED_KEY_LENGTH).rev() {
            let payload = Message::KeyResponse(resp.clone()).to_bytes();
            match self.respond(now, query, &payload) {
                Err(SerfError::QueryTooLarge { .. }) => {
                    resp.keys.truncate(i);
                    resp.message =
                        format!("truncated key list response, showing first {i} of {actual} keys");
                }
                other => return other,
            }
        }
        Err(SerfError::QueryTooLarge { len: actual, limit })
    }
}
