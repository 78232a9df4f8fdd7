//! `LeaseRecord::decode` on any object body: never panics, and a record it accepts encodes to
//! a body that decodes to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_election::record::LeaseRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = LeaseRecord::decode(data) {
        let body = record.encode();
        assert_eq!(
            LeaseRecord::decode(&body).as_ref(),
            Ok(&record),
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(body, LeaseRecord::decode(&body).unwrap().encode());
    }
});
