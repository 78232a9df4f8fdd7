//! The XML readers: ListObjectsV2 pages and error bodies. Even first byte: the rest is a
//! body, read as a list page and as an error body. Odd first byte: a list page is generated
//! from structured input (keys, ETags, times, a token, an escaping style), and what classify
//! reads back must be exactly what was written, or a BadAnswer when it is out of bounds.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use s3_election::protocol::{ListEntry, Outcome};
use s3_election::s3::{self, HttpResponse};
use s3_election::Error;
use s3_election_fuzz::{assert_displayable, check, escape, iso8601, Kind, LATEST_MS};

#[derive(Arbitrary, Debug)]
struct Entry {
    key: String,
    etag: String,
    ms: u64,
}

#[derive(Arbitrary, Debug)]
struct Page {
    style: u8,
    /// How often the entries are repeated (see `generated`).
    repeat: u8,
    entries: Vec<Entry>,
    token: Option<String>,
}

fn generated(page: Page) {
    // Usually a short page; now and then one at the entry bound or just past it (a full
    // page is slow to build and read, so not often).
    let per_page = s3::MAX_LIST_ENTRIES / page.entries.len().max(1);
    let repeat = match page.repeat {
        255 => per_page + 1,
        254 => per_page,
        r => usize::from(r % 4) + 1,
    };
    // A little past the last valid time, so both sides of the bound are tried.
    let span = LATEST_MS + 1 + 86_400_000 * 366;
    let entries: Vec<ListEntry> = page
        .entries
        .iter()
        .map(|e| ListEntry {
            key: e.key.clone(),
            etag: s3_election::protocol::ETag(e.etag.clone()),
            last_modified_ms: e.ms % span,
        })
        .collect();
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>elections</Name><Prefix>p/e/members/</Prefix>",
    );
    for _ in 0..repeat {
        for e in &entries {
            xml.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>60</Size><StorageClass>STANDARD</StorageClass></Contents>",
                escape(&e.key, page.style),
                iso8601(e.last_modified_ms),
                escape(&e.etag.0, page.style),
            ));
        }
    }
    match &page.token {
        Some(t) => xml.push_str(&format!(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>{}</NextContinuationToken>",
            escape(t, page.style)
        )),
        None => xml.push_str("<IsTruncated>false</IsTruncated>"),
    }
    xml.push_str("</ListBucketResult>");
    let valid = entries.len() * repeat <= s3::MAX_LIST_ENTRIES
        && entries.iter().all(|e| {
            !e.key.is_empty()
                && e.key.len() <= s3::MAX_KEY_BYTES
                && s3::read_etag(&e.etag.0).is_ok()
                && e.last_modified_ms <= LATEST_MS
        })
        && page
            .token
            .as_ref()
            .is_none_or(|t| !t.is_empty() && t.len() <= s3::MAX_CONTINUATION_BYTES);
    let response = HttpResponse {
        status: 200,
        headers: vec![],
        body: xml.into_bytes(),
    };
    let outcome = check(Kind::List, &response);
    // Text a store could not have written (markup or `&` would be escaped; the fuzzer's
    // strings may hold what XML cannot: a raw `<` in style 1/2 is escaped too, so only the
    // bounds decide).
    match outcome {
        Outcome::Listed {
            entries: got,
            continuation,
            ..
        } => {
            assert!(valid, "accepted a page out of bounds");
            let want: Vec<ListEntry> = (0..repeat).flat_map(|_| entries.clone()).collect();
            assert_eq!(got, want);
            assert_eq!(continuation, page.token);
        }
        Outcome::Transient(Error::BadAnswer(why)) => {
            assert!(!valid, "refused a valid page: {why}")
        }
        other => panic!("{other:?}"),
    }
}

fn raw(body: &[u8]) {
    check(
        Kind::List,
        &HttpResponse {
            status: 200,
            headers: vec![],
            body: body.to_vec(),
        },
    );
    let e = s3::parse_error_body(body);
    assert_displayable(&e.code);
    assert_displayable(&e.message);
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some(decoded) = s3::decode_entities(text) {
            assert!(decoded.len() <= text.len());
            for style in 0..4 {
                assert_eq!(
                    s3::decode_entities(&escape(&decoded, style)).as_deref(),
                    Some(decoded.as_str())
                );
            }
        }
        for style in 0..4 {
            assert_eq!(
                s3::decode_entities(&escape(text, style)).as_deref(),
                Some(text)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    if first % 2 == 0 {
        raw(rest);
    } else if let Ok(page) = Page::arbitrary_take_rest(Unstructured::new(rest)) {
        generated(page);
    }
});
