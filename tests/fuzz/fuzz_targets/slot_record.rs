//! `SlotRecord::decode` on any object body: never panics; a record it accepts round-trips
//! through its JSON encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_election::slot::SlotRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = SlotRecord::decode(data) {
        let encoded = serde_json::to_vec(&record).expect("a record encodes");
        assert_eq!(SlotRecord::decode(&encoded), Ok(record));
    }
});
