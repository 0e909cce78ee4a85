//! A simulated disk per node: a key-value store that survives the node's
//! restarts, with crash semantics — a write is durable once synced, and a
//! crash loses every write not synced yet (a power cut, not a clean exit:
//! a node that shuts down after leaving keeps everything).

use std::collections::BTreeMap;

/// One node's disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disk {
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Writes (`None`: a removal) since the last sync, in order.
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Disk {
    /// The value of `key` as the process reads it: its last write, synced
    /// or not.
    pub fn read(&self, key: &[u8]) -> Option<&[u8]> {
        match self.pending.iter().rev().find(|(k, _)| k == key) {
            Some((_, v)) => v.as_deref(),
            None => self.durable.get(key).map(Vec::as_slice),
        }
    }

    /// The value of `key` that would survive a crash now.
    pub fn durable(&self, key: &[u8]) -> Option<&[u8]> {
        self.durable.get(key).map(Vec::as_slice)
    }

    /// Whether writes wait for a sync.
    pub fn unsynced(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn write(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.pending.push((key.to_vec(), value.map(<[u8]>::to_vec)));
    }

    pub(crate) fn sync(&mut self) {
        for (k, v) in self.pending.drain(..) {
            match v {
                Some(v) => self.durable.insert(k, v),
                None => self.durable.remove(&k),
            };
        }
    }

    /// The process crashed: what was not synced is lost.
    pub(crate) fn crash(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_loses_what_was_not_synced() {
        let mut d = Disk::default();
        d.write(b"a", Some(b"1"));
        d.sync();
        d.write(b"a", Some(b"2"));
        d.write(b"b", Some(b"3"));
        assert_eq!(d.read(b"a"), Some(&b"2"[..]));
        assert_eq!(d.durable(b"a"), Some(&b"1"[..]));
        d.crash();
        assert_eq!(d.read(b"a"), Some(&b"1"[..]));
        assert_eq!(d.read(b"b"), None);
        d.write(b"a", None);
        d.sync();
        assert_eq!(d.read(b"a"), None);
    }
}
