use std::io::Read as _;

use crate::helpers::{ORG, repos_body, spawn_app};

#[tokio::test]
async fn etags_answer_if_none_match_with_304() {
    let app = spawn_app().await;
    for path in [
        format!("/orgs/{ORG}/repos"),
        format!("/orgs/{ORG}/repos?per_page=2&page=2"),
        "/view/top/3/stars".to_owned(),
    ] {
        let first = app.get(&path).await;
        let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong ETag: {etag}"
        );
        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".to_owned(),
        ] {
            let response = app.get_with(&path, &[("if-none-match", &inm)]).await;
            assert_eq!(response.status(), 304, "{path} {inm}");
            assert_eq!(response.headers()["etag"].to_str().expect("ascii"), etag);
            assert!(response.bytes().await.expect("body").is_empty());
        }
        let response = app.get_with(&path, &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(response.status(), 200, "{path}");
    }
    // Different pages have different tags.
    let a = app
        .get(&format!("/orgs/{ORG}/repos?per_page=2&page=1"))
        .await;
    let b = app
        .get(&format!("/orgs/{ORG}/repos?per_page=2&page=2"))
        .await;
    assert_ne!(a.headers()["etag"], b.headers()["etag"]);
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("valid gzip");
    out
}

fn unbrotli(bytes: &[u8]) -> String {
    let mut out = String::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_string(&mut out)
        .expect("valid brotli");
    out
}

#[tokio::test]
async fn compressed_copies_decode_to_the_identity_bytes() {
    let app = spawn_app().await;
    let path = format!("/orgs/{ORG}/repos");
    let identity = repos_body(1);

    let gz = app.get_with(&path, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["vary"], "Accept-Encoding");
    assert_eq!(
        gz.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let gz_etag = gz.headers()["etag"].clone();
    assert_eq!(gunzip(&gz.bytes().await.expect("body")), identity);

    let br = app
        .get_with(&path, &[("accept-encoding", "gzip;q=0.5, br")])
        .await;
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_ne!(
        br.headers()["etag"],
        gz_etag,
        "each encoding has its own strong ETag"
    );
    assert_eq!(unbrotli(&br.bytes().await.expect("body")), identity);

    let refused = app
        .get_with(&path, &[("accept-encoding", "br;q=0, gzip;q=0")])
        .await;
    assert!(refused.headers().get("content-encoding").is_none());
    assert_eq!(refused.text().await.expect("body"), identity);

    // Pages too: compressed once, decoded equal.
    let page = format!("/orgs/{ORG}/repos?per_page=5");
    let plain = app.get_text(&page).await;
    for _ in 0..2 {
        let gz = app.get_with(&page, &[("accept-encoding", "gzip")]).await;
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        assert_eq!(gunzip(&gz.bytes().await.expect("body")), plain);
    }
}
