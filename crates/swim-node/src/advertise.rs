//! The address to advertise when bound to every address (`0.0.0.0`, `::`):
//! as Go picks it (go-sockaddr's `GetPrivateIP`), a private IPv4 address of
//! the host first, then any other it can be reached at.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host's interface addresses that are up, in the order the system
/// lists them.
pub(crate) fn host_addresses() -> io::Result<Vec<IpAddr>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .filter(|i| i.oper_status != if_addrs::IfOperStatus::Down)
        .map(|i| i.ip())
        .collect())
}

/// RFC 1918 and RFC 6598 (carrier-grade NAT) networks.
fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private() || (a == 100 && (64..128).contains(&b))
}

/// Unique local (fc00::/7).
fn unique_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xfe00 == 0xfc00
}

/// How good `ip` is to advertise; `None` for an address peers cannot use
/// (loopback, link-local, unspecified, multicast).
fn rank(ip: IpAddr, v6_allowed: bool) -> Option<u8> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast() {
                None
            } else if private_v4(v4) {
                Some(0)
            } else {
                Some(1)
            }
        }
        IpAddr::V6(v6) if v6_allowed => {
            let link_local = v6.segments()[0] & 0xffc0 == 0xfe80;
            if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || link_local {
                None
            } else if let Some(v4) = v6.to_ipv4_mapped() {
                rank(IpAddr::V4(v4), false)
            } else if unique_local(v6) {
                Some(2)
            } else {
                Some(3)
            }
        }
        IpAddr::V6(_) => None,
    }
}

/// The address to advertise for a socket bound to the unspecified `bound`,
/// among the host's `addresses`: a private IPv4 address, then a public one,
/// then — only if bound to `::`, which takes IPv6 too — a unique local IPv6
/// address, then a global one. Among equals, the first listed.
pub(crate) fn choose(bound: IpAddr, addresses: &[IpAddr]) -> Option<IpAddr> {
    let v6_allowed = bound.is_ipv6();
    addresses
        .iter()
        .enumerate()
        .filter_map(|(i, &ip)| rank(ip, v6_allowed).map(|r| (r, i, ip)))
        .min()
        .map(|(_, _, ip)| ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn private_ipv4_first_then_any_reachable() {
        let any4: IpAddr = "0.0.0.0".parse().unwrap();
        let any6: IpAddr = "::".parse().unwrap();
        let host = ips(&[
            "127.0.0.1",
            "::1",
            "fe80::1",
            "203.0.113.7",
            "2001:db8::7",
            "fd00::7",
            "10.1.2.3",
            "192.168.0.9",
        ]);
        assert_eq!(choose(any4, &host), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(choose(any6, &host), Some("10.1.2.3".parse().unwrap()));
        let public = ips(&["127.0.0.1", "169.254.0.3", "203.0.113.7", "2001:db8::7"]);
        assert_eq!(choose(any4, &public), Some("203.0.113.7".parse().unwrap()));
        let v6 = ips(&["::1", "fe80::1", "2001:db8::7", "fd00::7"]);
        assert_eq!(choose(any4, &v6), None, "an IPv4 socket cannot use them");
        assert_eq!(choose(any6, &v6), Some("fd00::7".parse().unwrap()));
        assert_eq!(choose(any4, &ips(&["127.0.0.1", "::1"])), None);
        assert_eq!(
            choose(any4, &ips(&["100.64.0.1", "198.51.100.1"])),
            Some("100.64.0.1".parse().unwrap()),
            "carrier-grade NAT space counts as private"
        );
    }

    #[test]
    fn this_host_lists_its_loopback_at_least() {
        let addrs = host_addresses().unwrap();
        assert!(addrs.iter().any(|ip| ip.is_loopback()), "{addrs:?}");
    }
}
