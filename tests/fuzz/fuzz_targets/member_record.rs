//! `MemberRecord::decode` on any object body, for any node name (the input's first line):
//! never panics; a record it accepts names that node and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_election::members::MemberRecord;

fuzz_target!(|data: &[u8]| {
    let (node, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"n1"[..], data),
    };
    let node = String::from_utf8_lossy(node);
    if let Ok(record) = MemberRecord::decode(body, &node) {
        assert_eq!(record.node, node);
        let encoded = record.encode();
        assert_eq!(MemberRecord::decode(&encoded, &node), Ok(record));
    }
    if let Err(why) = MemberRecord::decode(body, &node) {
        assert!(!why.is_empty());
    }
});
