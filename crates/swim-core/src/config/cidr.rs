//! Networks in CIDR notation, for `cidrs_allowed`.

use core::net::IpAddr;

use super::ConfigError;

/// A network in CIDR notation, for [`Config::cidrs_allowed`](super::Config::cidrs_allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`; fails if the prefix is longer than the
    /// address.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, ConfigError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(ConfigError::new(
                "cidrs_allowed",
                "prefix longer than the address",
            ));
        }
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count
    /// as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = (prefix / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    #[test]
    fn cidrs_match_prefixes_and_mapped_addresses() {
        let net = Cidr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), 16).unwrap();
        assert!(net.contains(IpAddr::V4(Ipv4Addr::new(10, 1, 200, 3))));
        assert!(!net.contains(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1))));
        assert!(net.contains(IpAddr::V6(Ipv4Addr::new(10, 1, 0, 9).to_ipv6_mapped())));
        let odd = Cidr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 128)), 25).unwrap();
        assert!(odd.contains(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 200))));
        assert!(!odd.contains(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100))));
        let v6 = Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128).unwrap();
        assert!(v6.contains(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(Cidr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 33).is_err());
        let mut c = Config::lan(
            "a",
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 7946),
        );
        assert!(c.ip_allowed(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))));
        c.cidrs_allowed.push(net);
        assert!(!c.ip_allowed(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))));
    }
}
