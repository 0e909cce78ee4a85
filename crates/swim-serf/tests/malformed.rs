//! Malformed and hostile input: a typed error, never a panic, and no
//! allocation beyond what the input can back.

use swim_serf::messages::{DecodeError, Message, MAX_MESSAGE_LEN};

mod common;

use common::golden;

#[test]
fn every_truncation_and_every_single_byte_change_of_go_messages_is_survived() {
    for msg in golden() {
        for end in 0..msg.len() {
            let _ = Message::decode(&msg[..end]);
        }
        for i in 0..msg.len() {
            for v in [
                0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xdc, 0xdd, 0xde, 0xdf, 0xdb, 0xff,
            ] {
                let mut m = msg.clone();
                m[i] = v;
                if let Ok(decoded) = Message::decode(&m) {
                    assert_eq!(Message::decode(&decoded.to_bytes()), Ok(decoded));
                }
            }
        }
    }
}

#[test]
fn empty_unknown_and_truncated_input_has_its_own_error() {
    assert_eq!(Message::decode(&[]), Err(DecodeError::Empty));
    assert_eq!(Message::decode(&[10]), Err(DecodeError::UnknownType(10)));
    assert_eq!(Message::decode(&[1]), Err(DecodeError::Truncated));
    // A join whose Node declares 40 bytes and carries 2.
    let short = [
        1, 0x81, 0xa4, b'N', b'o', b'd', b'e', 0xda, 0, 40, b'a', b'b',
    ];
    assert_eq!(Message::decode(&short), Err(DecodeError::Truncated));
    assert_eq!(
        Message::decode(&vec![1; MAX_MESSAGE_LEN + 1]),
        Err(DecodeError::MessageTooLarge(MAX_MESSAGE_LEN + 1))
    );
}

#[test]
fn a_declared_count_beyond_the_input_is_refused_before_allocating() {
    // A push/pull whose LeftMembers declares 2^32-1 names in 12 bytes.
    let mut m = vec![2, 0x81, 0xab];
    m.extend_from_slice(b"LeftMembers");
    m.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        Message::decode(&m),
        Err(DecodeError::TooLarge {
            field: "LeftMembers",
            ..
        })
    ));
}

#[test]
fn deep_nesting_in_an_unknown_field_is_refused() {
    // A join with an unknown field holding 100 nested arrays.
    let mut m = vec![1, 0x81, 0xa1, b'X'];
    m.extend(std::iter::repeat_n(0x91, 100));
    m.push(0);
    assert_eq!(Message::decode(&m), Err(DecodeError::TooDeep));
}

#[test]
fn integers_out_of_their_fields_range_are_refused() {
    // A query whose Port is 70000.
    let mut m = vec![4, 0x81, 0xa4];
    m.extend_from_slice(b"Port");
    m.extend_from_slice(&[0xce, 0, 1, 0x11, 0x70]);
    assert_eq!(
        Message::decode(&m),
        Err(DecodeError::OutOfRange { field: "Port" })
    );
    // A negative LTime.
    let neg = [1, 0x81, 0xa5, b'L', b'T', b'i', b'm', b'e', 0xff];
    assert_eq!(
        Message::decode(&neg),
        Err(DecodeError::OutOfRange { field: "LTime" })
    );
}
