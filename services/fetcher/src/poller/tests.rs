//! Unit tests of page assembly: merging fresh and reused pages, objects, damaged stores.

use super::*;

fn snapshot(kind: SnapshotKind, body: &[u8], pages: Vec<PageMeta>) -> Snapshot {
    Snapshot {
        body: Bytes::copy_from_slice(body),
        meta: SnapshotMeta {
            path: "/orgs/x/repos".into(),
            version: 7,
            content_hash: content_hash(body),
            kind,
            fetched_at_ms: 1,
            pages,
        },
    }
}

fn page_meta(target: &str, etag: &str, next: Option<&str>, items: usize) -> PageMeta {
    PageMeta {
        target: target.into(),
        etag: Some(etag.into()),
        next: next.map(str::to_owned),
        items,
    }
}

#[test]
fn a_changed_page_is_merged_with_reused_ones() {
    let stored = snapshot(
        SnapshotKind::List,
        br#"[{"id":1},{"id":2},{"id":3}]"#,
        vec![
            page_meta("/p1", "e1", Some("/p2"), 2),
            page_meta("/p2", "e2", None, 1),
        ],
    );
    let reused = stored_pages(&stored);
    assert_eq!(reused.len(), 2);
    let fresh = Bytes::from_static(br#"[{"id":3,"stars":9}]"#);
    let pages = vec![
        FetchedPage {
            meta: stored.meta.pages[0].clone(),
            source: PageSource::Reused {
                elements: reused[0].elements.clone(),
            },
        },
        FetchedPage {
            meta: page_meta("/p2", "e2b", None, 1),
            source: PageSource::Fresh {
                elements: json_array::element_ranges(&fresh).expect("valid"),
                body: fresh,
            },
        },
    ];
    match assemble("/orgs/x/repos", Some(&stored), pages) {
        PollOutcome::Changed { body, meta } => {
            assert_eq!(body, br#"[{"id":1},{"id":2},{"id":3,"stars":9}]"#);
            assert_eq!(meta.version, 8);
            assert_eq!(meta.kind, SnapshotKind::List);
            assert_eq!(meta.content_hash, content_hash(&body));
            assert_eq!(meta.pages[1].etag.as_deref(), Some("e2b"));
        }
        other => panic!("expected a change, got {other:?}"),
    }
}

#[test]
fn same_content_with_new_etags_is_unchanged_but_saves_the_etags() {
    let stored = snapshot(
        SnapshotKind::List,
        br#"[{"id":1}]"#,
        vec![page_meta("/p1", "old", None, 1)],
    );
    let fresh = Bytes::from_static(br#"[{"id":1}]"#);
    let pages = vec![FetchedPage {
        meta: page_meta("/p1", "new", None, 1),
        source: PageSource::Fresh {
            elements: json_array::element_ranges(&fresh).expect("valid"),
            body: fresh,
        },
    }];
    match assemble("/orgs/x/repos", Some(&stored), pages) {
        PollOutcome::Unchanged {
            updated_meta: Some(meta),
        } => {
            assert_eq!(meta.version, 7, "no new version");
            assert_eq!(meta.pages[0].etag.as_deref(), Some("new"));
        }
        other => panic!("expected unchanged with new etags, got {other:?}"),
    }
}

#[test]
fn all_pages_not_modified_is_unchanged_without_rebuilding() {
    let stored = snapshot(
        SnapshotKind::List,
        br#"[{"id":1},{"id":2}]"#,
        vec![
            page_meta("/p1", "e1", Some("/p2"), 1),
            page_meta("/p2", "e2", None, 1),
        ],
    );
    let pages = stored
        .meta
        .pages
        .iter()
        .map(|meta| FetchedPage {
            meta: meta.clone(),
            source: PageSource::Reused { elements: vec![] },
        })
        .collect();
    assert!(matches!(
        assemble("/orgs/x/repos", Some(&stored), pages),
        PollOutcome::Unchanged { updated_meta: None }
    ));
}

#[test]
fn an_object_is_stored_as_sent() {
    let fresh = Bytes::from_static(b"{\"login\": \"x\"}\n");
    let pages = vec![FetchedPage {
        meta: page_meta("/orgs/x?per_page=100", "e", None, 0),
        source: PageSource::Fresh {
            elements: None,
            body: fresh.clone(),
        },
    }];
    match assemble("/orgs/x", None, pages) {
        PollOutcome::Changed { body, meta } => {
            assert_eq!(body, fresh.to_vec());
            assert_eq!(meta.kind, SnapshotKind::Object);
            assert_eq!(meta.version, 1);
        }
        other => panic!("expected a change, got {other:?}"),
    }
}

#[test]
fn stored_pages_that_do_not_add_up_are_not_reused() {
    let stored = snapshot(
        SnapshotKind::List,
        br#"[{"id":1}]"#,
        vec![page_meta("/p1", "e1", None, 3)],
    );
    assert!(stored_pages(&stored).is_empty());
}
