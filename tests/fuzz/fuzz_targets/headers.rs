//! The header readers: `Date` / `Last-Modified` (`s3::unix_seconds`), list times
//! (`s3::iso8601_ms`) and ETags (`s3::read_etag`), alone and through `classify`. What they
//! accept round-trips through its canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_election::protocol::{ETag, Outcome, Request};
use s3_election::s3::{self, HttpResponse};
use s3_election::Error;
use s3_election_fuzz::{check, iso8601, Kind, LATEST_MS};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let value = text.as_ref();

    if let Some(secs) = s3::unix_seconds(value) {
        assert!(secs <= s3::LATEST_UNIX_SECONDS);
        let canonical = httpdate::fmt_http_date(s3::system_time(secs * 1000));
        assert_eq!(s3::unix_seconds(&canonical), Some(secs), "{canonical}");
    }
    if let Some(ms) = s3::iso8601_ms(value) {
        assert!(ms <= LATEST_MS);
        assert_eq!(s3::iso8601_ms(&iso8601(ms)), Some(ms), "{value:?}");
    }
    // Any time in range, written the way S3 writes it, reads back exactly.
    if data.len() >= 8 {
        let ms = u64::from_le_bytes(data[..8].try_into().unwrap()) % (LATEST_MS + 1);
        assert_eq!(s3::iso8601_ms(&iso8601(ms)), Some(ms));
        let secs = ms / 1000;
        let http = httpdate::fmt_http_date(s3::system_time(secs * 1000));
        assert_eq!(s3::unix_seconds(&http), Some(secs), "{http}");
    }

    // What it accepts is checked below, through classify (which sends it back).
    let etag = s3::read_etag(value);
    if let Ok(e) = &etag {
        assert_eq!(e.0, value);
    }
    // Through classify: a GET and a PUT answer carrying it (twice: the first one counts) as
    // ETag, Date and Last-Modified.
    let response = HttpResponse {
        status: 200,
        headers: vec![
            ("ETag".into(), value.into()),
            ("Date".into(), value.into()),
            ("Last-Modified".into(), value.into()),
            ("etag".into(), "\"other\"".into()),
            ("date".into(), "Thu, 26 Nov 2026 04:51:49 GMT".into()),
        ],
        body: b"{}".to_vec(),
    };
    match (check(Kind::Get, &response), &etag) {
        (
            Outcome::Found {
                etag: got,
                date,
                last_modified,
                ..
            },
            Ok(want),
        ) => {
            assert_eq!(&got, want);
            assert_eq!(date, s3::unix_seconds(value));
            assert_eq!(last_modified, s3::unix_seconds(value));
        }
        (Outcome::Transient(Error::BadAnswer(_)), Err(_)) => {}
        (other, etag) => panic!("{other:?} for {etag:?}"),
    }
    match (check(Kind::PutCreate, &response), &etag) {
        (Outcome::Written { etag: got }, Ok(want)) => assert_eq!(&got, want),
        (Outcome::Transient(Error::BadAnswer(_)), Err(_)) => {}
        (other, etag) => panic!("{other:?} for {etag:?}"),
    }
    // A 304 keeps the date alone.
    let not_modified = HttpResponse {
        status: 304,
        headers: vec![("Date".into(), value.into())],
        body: vec![],
    };
    assert_eq!(
        s3::classify(
            &Request::Get {
                if_none_match: Some(ETag("\"e\"".into()))
            },
            &not_modified,
            "b"
        ),
        Outcome::NotModified {
            date: s3::unix_seconds(value)
        }
    );
});
