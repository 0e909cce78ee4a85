//! Just enough of DNS to find seeds by SRV record: one query over UDP, and
//! a parser that takes nothing on trust (a hostile or broken server gets an
//! error, never a panic or a long loop).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;

/// One SRV record's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) priority: u16,
    pub(crate) weight: u16,
    pub(crate) port: u16,
    pub(crate) host: String,
}

/// What an SRV query answered: targets by priority (then weight, heaviest
/// first), and the addresses the server added for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SrvAnswer {
    pub(crate) targets: Vec<Target>,
    pub(crate) addresses: Vec<(String, IpAddr)>,
}

/// The name servers of `/etc/resolv.conf`.
pub(crate) fn system_servers() -> io::Result<Vec<SocketAddr>> {
    let conf = std::fs::read_to_string("/etc/resolv.conf")?;
    let servers: Vec<SocketAddr> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no nameserver in /etc/resolv.conf",
        ));
    }
    Ok(servers)
}

/// Asks each server in turn for the SRV records of `name`, waiting at most
/// `timeout` for each.
pub(crate) fn lookup_srv(
    name: &str,
    servers: &[SocketAddr],
    timeout: Duration,
) -> io::Result<SrvAnswer> {
    let id = query_id(name);
    let query = encode_query(id, name, TYPE_SRV)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no DNS server to ask");
    for server in servers {
        match ask(server, &query, timeout).and_then(|reply| parse_srv_reply(id, &reply)) {
            Ok(answer) => return Ok(answer),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// An id for the query (it only has to match the reply).
fn query_id(name: &str) -> u16 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(name) as u16
}

fn ask(server: &SocketAddr, query: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send(query)?;
    let mut buf = vec![0; 4096];
    let n = socket.recv(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// A standard query with recursion desired, for `name` of type `qtype`.
pub(crate) fn encode_query(id: u16, name: &str, qtype: u16) -> io::Result<Vec<u8>> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    encode_name(name, &mut q)?;
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(q)
}

fn encode_name(name: &str, out: &mut Vec<u8>) -> io::Result<()> {
    let name = name.strip_suffix('.').unwrap_or(name);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid("a name label is empty or longer than 63 bytes"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// Reads DNS messages: bounds-checked, pointers followed a bounded number
/// of times.
struct Reader<'a> {
    msg: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.msg.len());
        let end = end.ok_or_else(|| invalid("truncated DNS message"))?;
        let bytes = &self.msg[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u16(&mut self) -> io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A name at the cursor, compression pointers followed.
    fn name(&mut self) -> io::Result<String> {
        let mut name = String::new();
        let mut at = self.at;
        let mut jumped = false;
        // A name has at most 127 labels; more hops than that is a loop.
        for _ in 0..128 {
            let len = *self
                .msg
                .get(at)
                .ok_or_else(|| invalid("truncated DNS name"))?;
            match len {
                0 => {
                    if !jumped {
                        self.at = at + 1;
                    }
                    return Ok(name);
                }
                l if l & 0xc0 == 0xc0 => {
                    let low = *self
                        .msg
                        .get(at + 1)
                        .ok_or_else(|| invalid("truncated DNS pointer"))?;
                    if !jumped {
                        self.at = at + 2;
                    }
                    jumped = true;
                    at = (usize::from(l & 0x3f) << 8) | usize::from(low);
                }
                l if l & 0xc0 != 0 => return Err(invalid("unknown DNS label type")),
                l => {
                    let label = self
                        .msg
                        .get(at + 1..at + 1 + usize::from(l))
                        .ok_or_else(|| invalid("truncated DNS label"))?;
                    if !name.is_empty() {
                        name.push('.');
                    }
                    name.push_str(
                        std::str::from_utf8(label).map_err(|_| invalid("DNS label not UTF-8"))?,
                    );
                    if name.len() > 253 {
                        return Err(invalid("DNS name longer than 253 bytes"));
                    }
                    at += 1 + usize::from(l);
                }
            }
        }
        Err(invalid("DNS name pointers loop"))
    }
}

/// The SRV records (and the addresses added for their targets) of a reply
/// to query `id`.
pub(crate) fn parse_srv_reply(id: u16, msg: &[u8]) -> io::Result<SrvAnswer> {
    let mut r = Reader { msg, at: 0 };
    if r.u16()? != id {
        return Err(invalid("DNS reply to another query"));
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err(invalid("DNS message is not a reply"));
    }
    match flags & 0x000f {
        0 => {}
        3 => return Err(io::Error::new(io::ErrorKind::NotFound, "no such DNS name")),
        _ => return Err(io::Error::other("the DNS server failed to answer")),
    }
    if flags & 0x0200 != 0 {
        return Err(io::Error::other(
            "the DNS reply was truncated (too many SRV records for UDP)",
        ));
    }
    let questions = r.u16()?;
    let answers = r.u16()?;
    let authority = r.u16()?;
    let additional = r.u16()?;
    for _ in 0..questions {
        r.name()?;
        r.take(4)?;
    }
    let mut answer = SrvAnswer::default();
    let records = u32::from(answers) + u32::from(authority) + u32::from(additional);
    for _ in 0..records {
        let owner = r.name()?;
        let rtype = r.u16()?;
        let class = r.u16()?;
        r.take(4)?; // TTL
        let len = usize::from(r.u16()?);
        let start = r.at;
        let data = r.take(len)?;
        if class != CLASS_IN {
            continue;
        }
        match rtype {
            TYPE_SRV => {
                let mut rd = Reader { msg, at: start };
                let priority = rd.u16()?;
                let weight = rd.u16()?;
                let port = rd.u16()?;
                let host = rd.name()?;
                if rd.at > start + len {
                    return Err(invalid("SRV record longer than its length"));
                }
                answer.targets.push(Target {
                    priority,
                    weight,
                    port,
                    host,
                });
            }
            TYPE_A if len == 4 => {
                let ip = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
                answer.addresses.push((owner, IpAddr::V4(ip)));
            }
            TYPE_AAAA if len == 16 => {
                let mut octets = [0; 16];
                octets.copy_from_slice(data);
                answer.addresses.push((owner, IpAddr::V6(octets.into())));
            }
            _ => {}
        }
    }
    if answer.targets.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no SRV record for the name",
        ));
    }
    answer
        .targets
        .sort_by_key(|t| (t.priority, std::cmp::Reverse(t.weight)));
    Ok(answer)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reply to `query` with SRV records `(port, target)` and A records
    /// `(name, ip)`, names compressed against the question as servers do.
    pub(crate) fn srv_reply(
        query: &[u8],
        srv: &[(u16, &str)],
        glue: &[(&str, [u8; 4])],
    ) -> Vec<u8> {
        let mut m = query.to_vec();
        m[2] = 0x81; // reply, RD
        m[3] = 0x80; // RA, no error
        m[6..8].copy_from_slice(&(srv.len() as u16).to_be_bytes());
        m[10..12].copy_from_slice(&(glue.len() as u16).to_be_bytes());
        for (i, (port, target)) in srv.iter().enumerate() {
            m.extend_from_slice(&[0xc0, 12]); // the question's name
            m.extend_from_slice(&TYPE_SRV.to_be_bytes());
            m.extend_from_slice(&CLASS_IN.to_be_bytes());
            m.extend_from_slice(&60u32.to_be_bytes());
            let mut rdata = Vec::new();
            rdata.extend_from_slice(&(i as u16).to_be_bytes()); // priority
            rdata.extend_from_slice(&5u16.to_be_bytes());
            rdata.extend_from_slice(&port.to_be_bytes());
            encode_name(target, &mut rdata).unwrap();
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(&rdata);
        }
        for (name, ip) in glue {
            encode_name(name, &mut m).unwrap();
            m.extend_from_slice(&TYPE_A.to_be_bytes());
            m.extend_from_slice(&CLASS_IN.to_be_bytes());
            m.extend_from_slice(&60u32.to_be_bytes());
            m.extend_from_slice(&4u16.to_be_bytes());
            m.extend_from_slice(ip);
        }
        m
    }

    #[test]
    fn srv_replies_parse_with_compression_and_glue() {
        let query = encode_query(7, "_m._tcp.test.", TYPE_SRV).unwrap();
        let reply = srv_reply(
            &query,
            &[(7001, "a.test"), (7002, "b.test")],
            &[("a.test", [127, 0, 0, 1])],
        );
        let answer = parse_srv_reply(7, &reply).unwrap();
        let ports: Vec<_> = answer.targets.iter().map(|t| (t.port, &*t.host)).collect();
        assert_eq!(ports, [(7001, "a.test"), (7002, "b.test")]);
        assert_eq!(
            answer.addresses,
            [("a.test".to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST))]
        );
        assert!(parse_srv_reply(8, &reply).is_err(), "another query's id");
    }

    #[test]
    fn broken_replies_are_errors() {
        let query = encode_query(7, "_m._tcp.test", TYPE_SRV).unwrap();
        let reply = srv_reply(&query, &[(7001, "a.test")], &[]);
        // Every truncation is an error, never a panic.
        for len in 0..reply.len() {
            assert!(parse_srv_reply(7, &reply[..len]).is_err(), "{len} bytes");
        }
        // A pointer to itself.
        let mut looping = reply.clone();
        let at = query.len();
        looping[at..at + 2].copy_from_slice(&[0xc0, at as u8]);
        assert!(parse_srv_reply(7, &looping).is_err());
        // NXDOMAIN, and a reply without records.
        let mut nx = query.clone();
        nx[2] = 0x81;
        nx[3] = 0x83;
        assert_eq!(
            parse_srv_reply(7, &nx).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let empty = srv_reply(&query, &[], &[]);
        assert_eq!(
            parse_srv_reply(7, &empty).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(encode_query(1, "a..b", TYPE_SRV).is_err());
        let mut random = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut bytes = reply.clone();
            for _ in 0..3 {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                let i = (random as usize) % bytes.len();
                bytes[i] = (random >> 32) as u8;
            }
            let _ = parse_srv_reply(7, &bytes);
        }
    }
}
