//! What this node says about itself: its metadata (announced with a new
//! incarnation), the application state its push/pulls carry, the payload of
//! its acks, and the keys it encrypts with.

use alloc::vec::Vec;

use super::Swim;
use crate::config::META_MAX_SIZE;
use crate::delegate::Delegate;
use crate::time::Instant;
use crate::wire::{Keyring, SecretKey, WireError};

/// Why a command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// No member of that name is known (or it has no usable address).
    UnknownMember,
    /// Metadata over [`META_MAX_SIZE`] bytes.
    MetaTooLarge(usize),
    /// A user message or broadcast that is empty.
    BadPayload(&'static str),
    /// A user message or broadcast larger than a limit that applies to it.
    PayloadTooLarge {
        /// The payload's size in bytes.
        len: usize,
        /// The most bytes allowed.
        limit: usize,
        /// Which limit: what the payload must fit.
        limit_of: &'static str,
    },
    /// A key operation failed.
    Key(WireError),
    /// The node has left, or is leaving; it sends nothing more of its own.
    Left,
    /// The user broadcast queue holds its most (`max_broadcast_queue`) broadcasts.
    QueueFull(usize),
    /// Our incarnation is at its maximum (a peer accused us at `u32::MAX`),
    /// so no newer announcement of ours can exist.
    IncarnationExhausted,
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CommandError::UnknownMember => f.write_str("unknown member"),
            CommandError::MetaTooLarge(n) => {
                write!(f, "metadata of {n} bytes exceeds {META_MAX_SIZE}")
            }
            CommandError::BadPayload(why) => write!(f, "bad payload: {why}"),
            CommandError::PayloadTooLarge {
                len,
                limit,
                limit_of,
            } => write!(
                f,
                "payload of {len} bytes exceeds {limit} bytes, the most {limit_of}"
            ),
            CommandError::Key(e) => write!(f, "key operation failed: {e}"),
            CommandError::Left => f.write_str("the node has left the cluster"),
            CommandError::QueueFull(n) => {
                write!(f, "the broadcast queue is full ({n} waiting)")
            }
            CommandError::IncarnationExhausted => {
                f.write_str("the local incarnation is exhausted; restart under a new name")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CommandError {}

/// What the application gave the node to hand out (Go asks its `Delegate`).
#[derive(Debug, Default)]
pub(super) struct LocalData {
    /// Sent with every push/pull (Go's `LocalState`).
    pub(super) push_pull_state: Vec<u8>,
    /// Carried by our acks to direct pings (Go's `AckPayload`).
    pub(super) ack_payload: Vec<u8>,
}

impl<D: Delegate> Swim<D> {
    /// Changes our metadata and announces it with a new incarnation.
    pub fn update_meta(&mut self, now: Instant, meta: &[u8]) -> Result<(), CommandError> {
        self.input(now, |s| {
            if meta.len() > META_MAX_SIZE {
                return Err(CommandError::MetaTooLarge(meta.len()));
            }
            if s.leave.is_leaving() {
                return Err(CommandError::Left);
            }
            if s.members.local().is_some_and(|r| r.incarnation == u32::MAX) {
                return Err(CommandError::IncarnationExhausted);
            }
            s.config.meta = meta.to_vec();
            s.announce_local(now);
            Ok(())
        })
    }

    /// Announces this node — address, metadata, versions — with a new
    /// incarnation (Go's `setAlive`).
    pub(super) fn announce_local(&mut self, now: Instant) {
        let (addr, meta, vsn) = (
            self.config.advertise,
            self.config.meta.clone(),
            self.config.vsn(),
        );
        self.with_rules(now, |m, ctx| m.announce_local(addr, &meta, vsn, ctx));
    }

    /// Sets the application state sent in every push/pull.
    pub fn set_local_state(&mut self, now: Instant, state: Vec<u8>) {
        self.input(now, |s| s.local.push_pull_state = state);
    }

    /// Sets the payload of our acks to direct pings.
    pub fn set_ack_payload(&mut self, now: Instant, payload: Vec<u8>) {
        self.input(now, |s| s.local.ack_payload = payload);
    }

    /// Installs a key for decryption (Go's `AddKey`).
    pub fn add_key(&mut self, now: Instant, key: SecretKey) -> Result<(), CommandError> {
        self.with_keyring(now, |ring| {
            ring.add(key);
            Ok(())
        })
    }

    /// Makes an installed key the one used to encrypt (Go's `UseKey`).
    pub fn use_key(&mut self, now: Instant, key: &SecretKey) -> Result<(), CommandError> {
        self.with_keyring(now, |ring| ring.use_key(key))
    }

    /// Removes a key that is not the primary (Go's `RemoveKey`).
    pub fn remove_key(&mut self, now: Instant, key: &SecretKey) -> Result<(), CommandError> {
        self.with_keyring(now, |ring| ring.remove(key))
    }

    /// Changes the keyring in use, and the configuration's copy with it.
    fn with_keyring(
        &mut self,
        now: Instant,
        change: impl FnOnce(&mut Keyring) -> Result<(), WireError>,
    ) -> Result<(), CommandError> {
        self.input(now, |s| {
            let ring = s
                .envelope
                .keyring_mut()
                .ok_or(CommandError::Key(WireError::NoKeyring))?;
            change(ring).map_err(CommandError::Key)?;
            s.config.keyring = s.envelope.keyring().cloned();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn the_config_shows_the_metadata_and_keys_in_use() {
        let mut config = Config::lan("a", "10.0.0.1:7946".parse().unwrap());
        config.meta = b"old".to_vec();
        config.keyring = Some(Keyring::new(SecretKey::new(&[1; 16]).unwrap()));
        let now = Instant::ZERO;
        let mut swim = Swim::new(config, 1, now).unwrap();

        swim.update_meta(now, b"new").unwrap();
        assert_eq!(swim.config().meta, b"new");
        assert_eq!(&*swim.local_node().meta, b"new");

        let second = SecretKey::new(&[2; 32]).unwrap();
        swim.add_key(now, second.clone()).unwrap();
        swim.use_key(now, &second).unwrap();
        let ring = swim.config().keyring.as_ref().unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.primary().as_bytes(), second.as_bytes());
        assert_eq!(
            swim.remove_key(now, &second),
            Err(CommandError::Key(WireError::CannotRemovePrimaryKey)),
            "the primary stays"
        );
        assert_eq!(swim.config().keyring.as_ref().unwrap().len(), 2);
    }
}
