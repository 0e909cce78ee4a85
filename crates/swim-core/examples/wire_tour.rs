//! A tour of the wire codec: `cargo run -p swim-core --example wire_tour`.
//!
//! Builds the packets a node sends while joining and gossiping — an alive
//! announcement, a probe with piggybacked gossip, a push/pull over a stream —
//! seals them the way Go memberlist does (compression, CRC, AES-GCM, label),
//! prints their bytes, and reads them back as the receiving node would.

use std::borrow::Cow;

use swim_core::wire::{
    encode_compound, for_each_message, Alive, Envelope, Keyring, Message, NodeState, Ping,
    PushNodeState, PushPull, SecretKey, StreamFramer, StreamRead, StreamRole, Transport, WireError,
};

fn encode(m: &Message<'_>, transport: Transport) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(transport, &mut out);
    out
}

fn show(title: &str, bytes: &[u8]) {
    let hex: String = bytes.iter().take(48).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 48 { "…" } else { "" };
    println!("{title:<44} {:>5} bytes  {hex}{more}", bytes.len());
}

fn main() -> Result<(), WireError> {
    let vsn = [1u8, 5, 2, 0, 0, 0];
    let alive = |name, last: u8| {
        Message::Alive(Alive {
            incarnation: 1,
            node: name,
            addr: Cow::Owned(vec![10, 0, 0, last]),
            port: 7946,
            meta: Cow::Borrowed(b"role=web"),
            vsn: Cow::Borrowed(&vsn),
        })
    };

    println!("== messages, exactly as Go memberlist v0.2.2 encodes them");
    let a = encode(&alive("node-a", 1), Transport::Packet);
    show("alive node-a", &a);
    let ping = Message::Ping(Ping {
        seq_no: 1,
        node: "node-b",
        source_addr: Cow::Borrowed(&[10, 0, 0, 1]),
        source_port: 7946,
        source_node: "node-a",
    });
    let p = encode(&ping, Transport::Packet);
    show("ping node-a -> node-b", &p);

    println!("\n== a probe with gossip piggybacked, sealed for an encrypted, labelled cluster");
    let gossip: Vec<Vec<u8>> = ["node-c", "node-d", "node-e"]
        .iter()
        .zip(3..)
        .map(|(n, i)| encode(&alive(n, i), Transport::Packet))
        .collect();
    let mut parts: Vec<&[u8]> = vec![&p];
    parts.extend(gossip.iter().map(|g| g.as_slice()));
    let mut compound = Vec::new();
    encode_compound(&parts, &mut compound)?;
    show("compound(ping, 3 × alive)", &compound);

    let key = SecretKey::new(b"0123456789abcdef0123456789abcdef")?;
    let envelope = Envelope::new()
        .with_label(b"prod")?
        .with_keyring(Keyring::new(key));
    let mut datagram = Vec::new();
    // A real node draws the nonce from its seeded RNG.
    envelope.seal_packet(&compound, true, || [42; 12], &mut datagram);
    show("label ‖ AES-256-GCM(CRC ‖ LZW(compound))", &datagram);

    println!("\n== node-b receives it");
    let body = envelope.open_packet(&datagram)?;
    for_each_message(&body, envelope.limits(), &mut |m| match m {
        Ok(Message::Ping(p)) => println!(
            "  ping seq {} for {:?} from {:?}",
            p.seq_no, p.node, p.source_node
        ),
        Ok(Message::Alive(a)) => println!(
            "  alive {:?} incarnation {} meta {:?}",
            a.node,
            a.incarnation,
            String::from_utf8_lossy(&a.meta)
        ),
        Ok(other) => println!("  {:?}", other.message_type()),
        Err(e) => println!("  dropped part: {e}"),
    });
    let outsider = Envelope::new()
        .with_label(b"prod")?
        .with_keyring(Keyring::new(SecretKey::new(&[0; 16])?));
    println!(
        "  a node with another key: {}",
        outsider.open_packet(&datagram).unwrap_err()
    );

    println!("\n== push/pull over a stream, read back in 7-byte chunks");
    let nodes: Vec<PushNodeState<'_>> = ["node-a", "node-b", "node-c"]
        .iter()
        .zip(1..)
        .map(|(n, i)| PushNodeState {
            name: n,
            addr: Cow::Owned(vec![10, 0, 0, i]),
            port: 7946,
            meta: Cow::Borrowed(&[]),
            incarnation: 1,
            state: if i == 3 {
                NodeState::Suspect
            } else {
                NodeState::Alive
            },
            vsn: Cow::Borrowed(&vsn),
        })
        .collect();
    let state = Message::PushPull(PushPull {
        join: true,
        nodes,
        user_state: b"app-state",
    });
    let mut stream = Vec::new();
    envelope.write_stream_label(&mut stream);
    envelope.seal_stream(&encode(&state, Transport::Stream), || [7; 12], &mut stream);
    show("label ‖ 0a ‖ len ‖ AES-GCM(LZW(push/pull))", &stream);

    let mut framer = StreamFramer::new(StreamRole::Accept, envelope.limits().clone());
    let mut read = 0;
    loop {
        read = (read + 7).min(stream.len());
        match envelope.read_stream(&mut framer, &stream[..read])? {
            StreamRead::NeedMore => continue,
            StreamRead::Message { message, consumed } => {
                println!("  complete after {read} bytes read ({consumed} used)");
                if let Message::PushPull(pp) =
                    Message::decode(&message, Transport::Stream, envelope.limits())?
                {
                    for n in &pp.nodes {
                        println!(
                            "  member {:?} {:?} incarnation {}",
                            n.name, n.state, n.incarnation
                        );
                    }
                    println!("  user state {:?}", String::from_utf8_lossy(pp.user_state));
                }
                break;
            }
        }
    }
    Ok(())
}
