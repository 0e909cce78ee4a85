//! A member as the application sees it, its states, and the addresses
//! members advertise.

use alloc::sync::Arc;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::NodeState;

/// A member's state (Go's `NodeStateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[doc(alias = "NodeStateType")]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Missed a probe; will be declared dead unless it refutes in time.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left the cluster on purpose.
    Left,
}

impl MemberState {
    /// The state a push/pull entry names; `None` for a state byte this
    /// version does not know (such entries are ignored, as Go ignores them).
    pub(crate) fn from_wire(state: NodeState) -> Option<MemberState> {
        match state {
            NodeState::Alive => Some(MemberState::Alive),
            NodeState::Suspect => Some(MemberState::Suspect),
            NodeState::Dead => Some(MemberState::Dead),
            NodeState::Left => Some(MemberState::Left),
            NodeState::Other(_) => None,
        }
    }

    /// The state as a push/pull entry carries it.
    pub(crate) fn to_wire(self) -> NodeState {
        match self {
            MemberState::Alive => NodeState::Alive,
            MemberState::Suspect => NodeState::Suspect,
            MemberState::Dead => NodeState::Dead,
            MemberState::Left => NodeState::Left,
        }
    }

    /// Whether the member counts as in the cluster: alive or suspect (Go's
    /// `!DeadOrLeft`).
    pub fn is_member(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }
}

/// A member as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(alias = "Node")]
pub struct Member {
    /// Unique name.
    pub name: Arc<str>,
    /// Where it is reached (UDP and TCP). IPv4-mapped IPv6 addresses are
    /// shown as IPv4; an address that is neither 4 nor 16 bytes long shows
    /// as `0.0.0.0`.
    pub addr: SocketAddr,
    /// Application metadata.
    pub meta: Arc<[u8]>,
    /// Incarnation: bumped by the member to refute suspicion or update metadata.
    pub incarnation: u32,
    /// State.
    pub state: MemberState,
    /// Versions `[protocol min, max, current, delegate min, max, current]`.
    pub vsn: [u8; 6],
}

impl Member {
    /// The highest protocol version the member understands.
    pub fn protocol_max(&self) -> u8 {
        self.vsn[1]
    }
}

/// How many members of each state a node's table holds, itself included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberCounts {
    /// Alive members.
    pub alive: usize,
    /// Suspected members.
    pub suspect: usize,
    /// Members declared dead and not yet forgotten.
    pub dead: usize,
    /// Members that left and are not yet forgotten.
    pub left: usize,
}

impl MemberCounts {
    /// Alive and suspect: what [`Swim::members`](crate::Swim::members) lists.
    pub fn members(&self) -> usize {
        self.alive + self.suspect
    }

    /// Every record in the table, whatever its state.
    pub fn total(&self) -> usize {
        self.alive + self.suspect + self.dead + self.left
    }

    pub(crate) fn of(&mut self, state: MemberState) -> &mut usize {
        match state {
            MemberState::Alive => &mut self.alive,
            MemberState::Suspect => &mut self.suspect,
            MemberState::Dead => &mut self.dead,
            MemberState::Left => &mut self.left,
        }
    }
}

/// One change to a node's member table, recorded when the node was built
/// with [`Builder::record_member_changes`](crate::Builder::record_member_changes):
/// every change, including suspicions and refutations, which raise no
/// [`Event`](crate::Event). For views kept in step with the table, and for
/// observers that check invariants, like the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// The member's record now reads like this.
    Updated(Member),
    /// The member was reaped from the table.
    Removed(Arc<str>),
}

/// Raw IP bytes as a member advertised them (4 or 16 bytes), kept verbatim:
/// Go compares addresses byte for byte, so re-encoding a 16-byte mapped
/// address as 4 bytes would look like an address change to Go peers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct WireIp {
    bytes: [u8; 16],
    len: u8,
}

impl WireIp {
    pub(crate) fn from_bytes(b: &[u8]) -> WireIp {
        let mut bytes = [0; 16];
        let len = b.len().min(16);
        bytes[..len].copy_from_slice(&b[..len]);
        WireIp {
            bytes,
            len: len as u8,
        }
    }

    pub(crate) fn from_ip(ip: IpAddr) -> WireIp {
        match ip {
            IpAddr::V4(v4) => WireIp::from_bytes(&v4.octets()),
            IpAddr::V6(v6) => WireIp::from_bytes(&v6.octets()),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The address to dial; `None` for lengths other than 4 and 16.
    pub(crate) fn to_ip(self) -> Option<IpAddr> {
        match self.len {
            4 => {
                let [a, b, c, d, ..] = self.bytes;
                Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            16 => {
                let v6 = Ipv6Addr::from(self.bytes);
                Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            _ => None,
        }
    }

    /// The address to dial at `port`, if the IP is one.
    pub(crate) fn socket_addr(self, port: u16) -> Option<SocketAddr> {
        self.to_ip().map(|ip| SocketAddr::new(ip, port))
    }

    /// The address to show at `port`: `0.0.0.0` when the IP is none (what
    /// [`Member::addr`] says of such members).
    pub(crate) fn shown(self, port: u16) -> SocketAddr {
        let ip = self.to_ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        SocketAddr::new(ip, port)
    }
}

impl fmt::Debug for WireIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_ip() {
            Some(ip) => write!(f, "{ip}"),
            None => write!(f, "{:02x?}", self.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_states_map_both_ways() {
        for s in [
            MemberState::Alive,
            MemberState::Suspect,
            MemberState::Dead,
            MemberState::Left,
        ] {
            assert_eq!(MemberState::from_wire(s.to_wire()), Some(s));
        }
        assert_eq!(MemberState::from_wire(NodeState::Other(9)), None);
    }

    #[test]
    fn odd_addresses_show_as_unspecified() {
        let odd = WireIp::from_bytes(&[1, 2, 3]);
        assert_eq!(odd.socket_addr(7946), None);
        assert_eq!(odd.shown(7946), "0.0.0.0:7946".parse().unwrap());
        let mapped = WireIp::from_ip("::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(mapped.as_bytes().len(), 16);
        assert_eq!(
            mapped.socket_addr(1),
            Some("10.0.0.1:1".parse().unwrap()),
            "mapped addresses dial as IPv4"
        );
    }
}
