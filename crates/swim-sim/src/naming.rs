//! How simulated nodes are named and addressed: node `i` is `node-i` at
//! `10.x.y.z:7946`, so a name or an address leads back to the node.

use std::net::SocketAddr;

/// The name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// Node index from a name made by [`node_name`].
pub fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("node-")?.parse().ok()
}

/// The address of node `i`: `10.x.y.z:7946` with `x.y.z` the index.
pub fn node_addr(i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7946))
}

/// Node index from an address made by [`node_addr`].
pub fn addr_index(a: SocketAddr) -> Option<usize> {
    match a {
        SocketAddr::V4(v4) if v4.port() == 7946 => {
            let [p, x, y, z] = v4.ip().octets();
            (p == 10).then_some(((x as usize) << 16) | ((y as usize) << 8) | z as usize)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_round_trip() {
        for i in [0, 1, 255, 256, 9999, 70_000] {
            assert_eq!(addr_index(node_addr(i)), Some(i));
            assert_eq!(node_index(&node_name(i)), Some(i));
        }
    }
}
