//! Any status, headers and body, as the answer to each kind of request, through
//! `s3::classify`: it never panics, and what it accepts is bounded and can be sent back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_election_fuzz::{answer, check};

fuzz_target!(|data: &[u8]| {
    if let Some((kind, response)) = answer(data) {
        check(kind, &response);
    }
});
