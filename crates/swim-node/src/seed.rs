//! Seeds to join through, as Go's `Join([]string)` takes them: addresses,
//! host names (every address they resolve to is tried), and DNS SRV names.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use crate::dns;

/// A seed to join through.
///
/// Parsed from text the way Go memberlist's `Join` reads it: `10.0.0.2`,
/// `10.0.0.2:7946`, `::1`, `[::1]:7946`, `seed.example.com`,
/// `seed.example.com:7946` — a seed without a port uses the node's default
/// ([`NodeConfig::default_port`](crate::NodeConfig::default_port)). A name
/// of the form `_service._proto.name` (`_memberlist._tcp.example.com`) is
/// looked up as a DNS SRV record, each target at its record's port.
///
/// ```
/// use swim_node::Seed;
///
/// let seeds: Vec<Seed> = ["10.0.0.2", "[::1]:7000", "seed.local:7946", "_m._tcp.example.com"]
///     .iter()
///     .map(|s| s.parse())
///     .collect::<Result<_, _>>()?;
/// assert_eq!(seeds[0], Seed::Ip("10.0.0.2".parse()?, None));
/// assert_eq!(seeds[1], Seed::Addr("[::1]:7000".parse()?));
/// assert_eq!(seeds[2], Seed::Host("seed.local".into(), Some(7946)));
/// assert_eq!(seeds[3], Seed::Srv("_m._tcp.example.com".into()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Seed {
    /// An address and port.
    Addr(SocketAddr),
    /// An IP address, with a port or the default one.
    Ip(IpAddr, Option<u16>),
    /// A host name, with a port or the default one; every address it
    /// resolves to is tried.
    Host(String, Option<u16>),
    /// A DNS SRV name; every target is tried at its record's port.
    Srv(String),
}

/// Why text is not a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError {
    /// The text.
    pub seed: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {:?}: {}", self.seed, self.reason)
    }
}

impl std::error::Error for SeedError {}

impl FromStr for Seed {
    type Err = SeedError;

    fn from_str(s: &str) -> Result<Seed, SeedError> {
        let fail = |reason| SeedError {
            seed: s.to_string(),
            reason,
        };
        let text = s.trim();
        if text.is_empty() {
            return Err(fail("empty"));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Seed::Addr(addr));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Seed::Ip(ip, None));
        }
        if text.starts_with('[') && !text.contains(']') {
            return Err(fail("an unclosed ["));
        }
        // `[v6]` without a port.
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner
                .parse::<IpAddr>()
                .map(|ip| Seed::Ip(ip, None))
                .map_err(|_| fail("not an IPv6 address between the brackets"));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => {
                let port = port.parse::<u16>().map_err(|_| fail("bad port"))?;
                (host, Some(port))
            }
            None => (text, None),
        };
        if host.contains(':') || host.contains('[') {
            return Err(fail("an IPv6 address with a port is written [addr]:port"));
        }
        if !valid_name(host) {
            return Err(fail("not a host name"));
        }
        if is_srv_name(host) {
            return match port {
                None => Ok(Seed::Srv(host.to_string())),
                Some(_) => Err(fail("an SRV name takes its ports from its records")),
            };
        }
        Ok(Seed::Host(host.to_string(), port))
    }
}

impl From<SocketAddr> for Seed {
    fn from(addr: SocketAddr) -> Seed {
        Seed::Addr(addr)
    }
}

impl From<&SocketAddr> for Seed {
    fn from(addr: &SocketAddr) -> Seed {
        Seed::Addr(*addr)
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seed::Addr(addr) => write!(f, "{addr}"),
            Seed::Ip(ip, None) => write!(f, "{ip}"),
            Seed::Ip(ip, Some(port)) => write!(f, "{}", SocketAddr::new(*ip, *port)),
            Seed::Host(host, None) => f.write_str(host),
            Seed::Host(host, Some(port)) => write!(f, "{host}:{port}"),
            Seed::Srv(name) => f.write_str(name),
        }
    }
}

/// Letters, digits, `-`, `_` and dots; labels of 1 to 63, 253 in all.
fn valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `_service._proto.rest`.
fn is_srv_name(name: &str) -> bool {
    let mut labels = name.split('.');
    matches!(
        (labels.next(), labels.next(), labels.next()),
        (Some(a), Some(b), Some(_)) if a.starts_with('_') && b.starts_with('_')
    )
}

/// Where SRV lookups go, and how long each server gets.
#[derive(Debug, Clone)]
pub(crate) struct Resolver {
    /// DNS servers; empty: those of `/etc/resolv.conf`.
    pub(crate) servers: Vec<SocketAddr>,
    pub(crate) timeout: Duration,
    pub(crate) default_port: u16,
}

impl Resolver {
    /// Every address `seed` stands for. Blocking: run it off the executor.
    pub(crate) fn resolve(&self, seed: &Seed) -> io::Result<Vec<SocketAddr>> {
        let port = |p: &Option<u16>| p.unwrap_or(self.default_port);
        let mut addrs: Vec<SocketAddr> = match seed {
            Seed::Addr(addr) => vec![*addr],
            Seed::Ip(ip, p) => vec![SocketAddr::new(*ip, port(p))],
            Seed::Host(host, p) => (host.as_str(), port(p)).to_socket_addrs()?.collect(),
            Seed::Srv(name) => {
                let servers = if self.servers.is_empty() {
                    dns::system_servers()?
                } else {
                    self.servers.clone()
                };
                let answer = dns::lookup_srv(name, &servers, self.timeout)?;
                let mut addrs = Vec::new();
                for target in answer.targets {
                    let glue: Vec<SocketAddr> = answer
                        .addresses
                        .iter()
                        .filter(|(host, _)| host.eq_ignore_ascii_case(&target.host))
                        .map(|(_, ip)| SocketAddr::new(*ip, target.port))
                        .collect();
                    if glue.is_empty() {
                        // Unresolvable targets are left out; all of them
                        // failing is reported below.
                        if let Ok(found) = (target.host.as_str(), target.port).to_socket_addrs() {
                            addrs.extend(found);
                        }
                    } else {
                        addrs.extend(glue);
                    }
                }
                addrs
            }
        };
        // One try per address, in the order given.
        let mut seen = std::collections::HashSet::new();
        addrs.retain(|a| seen.insert(*a));
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "resolves to no address",
            ));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Seed, &'static str> {
        s.parse::<Seed>().map_err(|e| e.reason)
    }

    #[test]
    fn seeds_parse_like_go_joins() {
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(parse("10.0.0.2"), Ok(Seed::Ip([10, 0, 0, 2].into(), None)));
        assert_eq!(
            parse(" 10.0.0.2:7000 "),
            Ok(Seed::Addr("10.0.0.2:7000".parse().unwrap()))
        );
        assert_eq!(parse("::1"), Ok(Seed::Ip(v6, None)));
        assert_eq!(parse("[::1]"), Ok(Seed::Ip(v6, None)));
        assert_eq!(parse("[::1]:9"), Ok(Seed::Addr("[::1]:9".parse().unwrap())));
        assert_eq!(parse("localhost"), Ok(Seed::Host("localhost".into(), None)));
        assert_eq!(
            parse("seed-1.svc.cluster.local:7946"),
            Ok(Seed::Host("seed-1.svc.cluster.local".into(), Some(7946)))
        );
        assert_eq!(
            parse("_memberlist._tcp.example.com."),
            Ok(Seed::Srv("_memberlist._tcp.example.com.".into()))
        );
        for bad in [
            "",
            "host:",
            "host:99999",
            "host:x",
            "::1:7946:x",
            "[::1",
            "[nope]",
            "a..b",
            "spaces in name",
            "_m._tcp.example.com:53",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert_eq!(parse(&long), Err("not a host name"));
        for s in ["10.0.0.2:7000", "[::1]:9", "localhost", "h:1", "_a._b.c"] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn names_resolve_to_every_address_at_the_default_port() {
        let r = Resolver {
            servers: Vec::new(),
            timeout: Duration::from_secs(1),
            default_port: 7946,
        };
        let addrs = r.resolve(&Seed::Host("localhost".into(), None)).unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 7946));
        let addrs = r
            .resolve(&Seed::Ip([127, 0, 0, 1].into(), Some(9)))
            .unwrap();
        assert_eq!(addrs, ["127.0.0.1:9".parse().unwrap()]);
    }
}
