//! The address to advertise when bound to every address (`0.0.0.0`, `::`):
//! as Go picks it (go-sockaddr's `GetPrivateIP`), a private address of the
//! host — and none other: like Go, a node with no private address refuses
//! to start rather than advertise a public or reserved one.

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

/// How good `ip` is to advertise; `None` for an address that is not
/// private (public, documentation, loopback, link-local…).
fn rank(ip: IpAddr, v6_allowed: bool) -> Option<u8> {
    match ip {
        IpAddr::V4(v4) => private_v4(v4).then_some(0),
        IpAddr::V6(v6) if v6_allowed => match v6.to_ipv4_mapped() {
            Some(v4) => rank(IpAddr::V4(v4), false),
            None => unique_local(v6).then_some(1),
        },
        IpAddr::V6(_) => None,
    }
}

/// The address to advertise for a socket bound to the unspecified `bound`,
/// among the host's `addresses`: a private IPv4 address (RFC 1918, RFC
/// 6598), then — only if bound to `::`, which takes IPv6 too — a unique
/// local IPv6 address (Go looks at IPv4 only). Among equals, the first
/// listed; `None` if there is no private address.
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
    fn only_private_addresses_are_advertised() {
        let any4: IpAddr = "0.0.0.0".parse().unwrap();
        // The host of the report: a documentation address on its interface.
        assert_eq!(choose(any4, &ips(&["127.0.0.1", "192.0.2.2", "::1"])), None);
        assert_eq!(
            choose(any4, &ips(&["192.0.2.2", "172.20.0.5"])),
            Some("172.20.0.5".parse().unwrap())
        );
        for public in ["203.0.113.7", "8.8.8.8", "169.254.0.3", "198.51.100.1"] {
            assert_eq!(choose(any4, &ips(&[public])), None, "{public}");
        }
    }

    #[test]
    fn private_ipv4_first_then_unique_local() {
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
        assert_eq!(choose(any4, &public), None);
        assert_eq!(choose(any6, &public), None);
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
