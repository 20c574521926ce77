//! The hashes of the chain and of seals, computed here exactly as the trigger and `seal` do.

use std::io::Write as _;

use sha2::{Digest, Sha256};

use super::ALGORITHM;

/// A position in the log, in the readers' order `(transaction_id, global_position)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    pub txid: u64,
    pub position: i64,
}

/// The hash the chain trigger gives an event, recomputed from its stored columns.
/// `buf` is scratch space reused between calls.
#[expect(clippy::too_many_arguments, reason = "one argument per hashed column")]
pub fn event_hash(
    buf: &mut Vec<u8>,
    prev_hash: &[u8],
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    payload: &str,
    metadata: &str,
    recorded_at_micros: i64,
) -> [u8; 32] {
    buf.clear();
    buf.extend_from_slice(prev_hash);
    // Writing to a Vec cannot fail.
    let _ = write!(
        buf,
        "{}:{aggregate_type}|{}:{aggregate_id}|{sequence}|{}:{event_type}|{}:{event_version}|{}:",
        aggregate_type.len(),
        aggregate_id.len(),
        event_type.len(),
        event_version.len(),
        payload.len()
    );
    buf.extend_from_slice(payload.as_bytes());
    let _ = write!(buf, "|{}:", metadata.len());
    buf.extend_from_slice(metadata.as_bytes());
    let _ = write!(buf, "|{recorded_at_micros}");
    Sha256::digest(&buf[..]).into()
}

/// A seal's leaf for one stream head.
pub fn seal_leaf(aggregate_type: &str, aggregate_id: &str, sequence: i64, hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!(
        "{}:{aggregate_type}|{}:{aggregate_id}|{sequence}|",
        aggregate_type.len(),
        aggregate_id.len()
    ));
    h.update(hash);
    h.finalize().into()
}

/// A seal's root over its leaves (sorted here); `excluded` is sorted.
pub fn seal_root(
    upto: LogPosition,
    excluded: &[u64],
    streams: u64,
    events: u64,
    leaves: &mut [[u8; 32]],
) -> [u8; 32] {
    leaves.sort_unstable();
    let excluded: Vec<String> = excluded.iter().map(u64::to_string).collect();
    let mut h = Sha256::new();
    h.update(format!(
        "{ALGORITHM}|{}|{}|{}|{streams}|{events}|",
        upto.txid,
        upto.position,
        excluded.join(",")
    ));
    for leaf in leaves.iter() {
        h.update(leaf);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::audit::GENESIS;

    #[test]
    fn the_event_hash_input_is_length_prefixed_like_the_trigger() {
        let mut buf = Vec::new();
        let got = event_hash(
            &mut buf,
            &GENESIS,
            "ticket",
            "1000",
            1,
            "TicketOpened",
            "1.0",
            "{\"a\": 1}",
            "{}",
            42,
        );
        let mut expected = GENESIS.to_vec();
        expected.extend_from_slice(b"6:ticket|4:1000|1|12:TicketOpened|3:1.0|8:{\"a\": 1}|2:{}|42");
        assert_eq!(buf, expected);
        assert_eq!(got, <[u8; 32]>::from(Sha256::digest(&expected)));
    }

    #[test]
    fn a_root_does_not_depend_on_the_order_of_its_leaves() {
        let a = seal_leaf("ticket", "1", 3, &[1; 32]);
        let b = seal_leaf("ticket", "2", 1, &[2; 32]);
        let upto = LogPosition {
            txid: 5,
            position: 9,
        };
        assert_eq!(
            seal_root(upto, &[], 2, 4, &mut [a, b]),
            seal_root(upto, &[], 2, 4, &mut [b, a])
        );
        assert_ne!(
            seal_root(upto, &[], 2, 4, &mut [a, b]),
            seal_root(upto, &[], 2, 5, &mut [a, b])
        );
        assert_ne!(
            seal_root(upto, &[], 2, 4, &mut [a, b]),
            seal_root(upto, &[3], 2, 4, &mut [a, b])
        );
    }
}
