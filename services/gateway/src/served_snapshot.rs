//! One snapshot version made ready to serve: everything a request could need is computed once,
//! when the version is loaded, so a request only clones `Bytes` and header values.
//!
//! Per version: the exact body with its strong ETag (the content hash) and gzip/brotli copies
//! (with `PUBLIC_URL` set, the body has its upstream URLs pointed at the gateway first, and the
//! ETag is the hash of those bytes);
//! for lists, the byte range of every top-level element (found once with `hubcache_shared::json_array`), from which
//! any GitHub-style page is cut without parsing; for an organisation object, its numeric `id`
//! (GitHub's own Link headers name the org's lists `/organizations/{id}/...`).

use std::ops::Range;
use std::sync::Arc;

use bytes::{BufMut as _, Bytes, BytesMut};
use hubcache_shared::json_array;
use hubcache_shared::snapshot::content_hash;
use hubcache_shared::{Snapshot, SnapshotKind};
use serde::Deserialize;

use crate::body_urls::BodyUrlRewriter;
use crate::paging::PageRequest;
use crate::representation::Representation;

/// Pages of one version kept rendered (identity and, once asked for, compressed). Clients walk
/// the same few page sizes, so this bounds memory while making repeat pages free.
const PAGE_CACHE_ENTRIES: u64 = 256;

/// A snapshot version, prepared for serving.
pub(crate) struct ServedSnapshot {
    /// The cached GitHub path.
    pub(crate) path: String,
    /// The snapshot version (from its metadata).
    pub(crate) version: u64,
    /// Hex SHA-256 of the stored body (before any URL rewriting): identifies the version.
    pub(crate) content_hash: String,
    /// When the fetcher fetched this version (Unix ms): the snapshot age metric.
    pub(crate) fetched_at_ms: u64,
    /// The whole body, as stored.
    pub(crate) full: Representation,
    /// Byte ranges of the top-level array elements, for lists.
    elements: Option<Vec<Range<usize>>>,
    /// The `id` field, when this is an `/orgs/{org}` object.
    pub(crate) org_id: Option<u64>,
    pages: moka::sync::Cache<PageRequest, Arc<Representation>>,
}

impl std::fmt::Debug for ServedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedSnapshot")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("bytes", &self.full.identity().len())
            .field("elements", &self.elements.as_ref().map(Vec::len))
            .finish()
    }
}

#[derive(Deserialize)]
struct OrgId {
    id: u64,
}

impl ServedSnapshot {
    /// Prepares `snapshot` for serving, its upstream URLs rewritten by `body_urls` when given
    /// (`PUBLIC_URL` is set). CPU-heavy for large lists (rewriting, compression, one parse):
    /// call it from `spawn_blocking`, never on a request.
    pub(crate) fn prepare(snapshot: Snapshot, body_urls: Option<&BodyUrlRewriter>) -> Self {
        let Snapshot { body, meta } = snapshot;
        // A strong ETag names exact bytes: rewritten bytes get the hash of what is served.
        let (body, tag) = match body_urls.and_then(|rewriter| rewriter.rewrite(&body)) {
            Some(rewritten) => {
                let tag = content_hash(&rewritten);
                (rewritten, tag)
            }
            None => (body, meta.content_hash.clone()),
        };
        let elements = match meta.kind {
            SnapshotKind::List => json_array::element_ranges(&body).ok().flatten(),
            SnapshotKind::Object => None,
        };
        if meta.kind == SnapshotKind::List && elements.is_none() {
            tracing::warn!(path = %meta.path, "list snapshot is not a JSON array; serving it whole only");
        }
        let org_id = is_org_path(&meta.path)
            .then(|| serde_json::from_slice::<OrgId>(&body).ok().map(|o| o.id))
            .flatten();
        Self {
            full: Representation::precompressed(body, &tag),
            path: meta.path,
            version: meta.version,
            fetched_at_ms: meta.fetched_at_ms,
            content_hash: meta.content_hash,
            elements,
            org_id,
            pages: moka::sync::Cache::new(PAGE_CACHE_ENTRIES),
        }
    }

    /// Bytes held by this version: the body and its compressed copies, the element index and
    /// the pages rendered so far (at most [`PAGE_CACHE_ENTRIES`]).
    pub(crate) fn held_bytes(&self) -> usize {
        let index = self
            .elements
            .as_ref()
            .map_or(0, |e| e.capacity() * std::mem::size_of::<Range<usize>>());
        let pages: usize = self.pages.iter().map(|(_, page)| page.held_bytes()).sum();
        self.full.held_bytes() + index + pages
    }

    /// Number of elements when this is a list.
    pub(crate) fn element_count(&self) -> Option<usize> {
        self.elements.as_ref().map(Vec::len)
    }

    /// The requested page of a list (`[]` past the end); `None` for objects, which GitHub serves
    /// whole whatever the paging parameters.
    pub(crate) fn page(&self, request: PageRequest) -> Option<Arc<Representation>> {
        let elements = self.elements.as_ref()?;
        Some(self.pages.get_with(request, || {
            let range = request.range(elements.len());
            let body = self.full.identity();
            let bytes = if range.is_empty() {
                Bytes::from_static(b"[]")
            } else {
                // The original bytes from the first element's start to the last one's end, so
                // separators and every byte of each object are exactly as stored.
                let start = elements[range.start].start;
                let end = elements[range.end - 1].end;
                let mut out = BytesMut::with_capacity(end - start + 2);
                out.put_u8(b'[');
                out.put_slice(&body[start..end]);
                out.put_u8(b']');
                out.freeze()
            };
            let tag = format!("{}-p{}-{}", self.full.tag(), request.per_page, request.page);
            Arc::new(Representation::new(bytes, &tag))
        }))
    }
}

/// `/orgs/{login}`: the object whose `id` names the org in `/organizations/{id}/...` URLs.
fn is_org_path(path: &str) -> bool {
    path.strip_prefix("/orgs/")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubcache_shared::SnapshotMeta;

    fn snapshot(path: &str, kind: SnapshotKind, body: &str) -> Snapshot {
        Snapshot {
            body: Bytes::copy_from_slice(body.as_bytes()),
            meta: SnapshotMeta {
                path: path.to_owned(),
                version: 1,
                content_hash: content_hash(body.as_bytes()),
                kind,
                fetched_at_ms: 0,
                pages: vec![],
            },
        }
    }

    #[test]
    fn pages_are_exact_slices_of_the_stored_bytes() {
        let body = r#"[ {"a": 1},{"b" : [1, 2]} ,{"c":"x,y"}, 4 ]"#;
        let s = ServedSnapshot::prepare(snapshot("/orgs/o/repos", SnapshotKind::List, body), None);
        assert_eq!(s.element_count(), Some(4));
        let page = |per_page, page| {
            let r = s.page(PageRequest { per_page, page }).expect("list");
            String::from_utf8(r.identity().to_vec()).expect("utf8")
        };
        assert_eq!(page(2, 1), r#"[{"a": 1},{"b" : [1, 2]}]"#);
        assert_eq!(page(2, 2), r#"[{"c":"x,y"}, 4]"#);
        assert_eq!(page(2, 3), "[]");
        assert_eq!(page(100, 1), r#"[{"a": 1},{"b" : [1, 2]} ,{"c":"x,y"}, 4]"#);
    }

    #[test]
    fn public_url_rewrites_the_served_bytes_pages_and_etag() {
        let body = r#"[{"url":"https://api.github.com/repos/o/a"},{"url":"https://api.github.com/repos/o/b"}]"#;
        let rewriter = BodyUrlRewriter::for_public_url(
            Some(&url::Url::parse("http://gw.example:8080").expect("url")),
            &url::Url::parse("http://127.0.0.1:3001").expect("url"),
        )
        .expect("rewriter");
        let verbatim =
            ServedSnapshot::prepare(snapshot("/orgs/o/repos", SnapshotKind::List, body), None);
        let rewritten = ServedSnapshot::prepare(
            snapshot("/orgs/o/repos", SnapshotKind::List, body),
            Some(&rewriter),
        );
        assert_eq!(verbatim.full.identity().as_ref(), body.as_bytes());
        let expected = body.replace("https://api.github.com", "http://gw.example:8080");
        assert_eq!(rewritten.full.identity().as_ref(), expected.as_bytes());
        // The version is still known by the stored bytes' hash; the validator by the served ones.
        assert_eq!(rewritten.content_hash, verbatim.content_hash);
        assert_eq!(rewritten.full.tag(), content_hash(expected.as_bytes()));
        assert_ne!(rewritten.full.tag(), verbatim.full.tag());
        let page = rewritten
            .page(PageRequest {
                per_page: 1,
                page: 2,
            })
            .expect("a list");
        assert_eq!(
            page.identity().as_ref(),
            br#"[{"url":"http://gw.example:8080/repos/o/b"}]"#
        );
        assert!(page.tag().starts_with(rewritten.full.tag()));
    }

    #[test]
    fn org_objects_expose_their_id() {
        let s = ServedSnapshot::prepare(
            snapshot(
                "/orgs/o",
                SnapshotKind::Object,
                r#"{"login":"o","id":913567}"#,
            ),
            None,
        );
        assert_eq!(s.org_id, Some(913567));
        assert!(
            s.page(PageRequest {
                per_page: 1,
                page: 1
            })
            .is_none()
        );
        let root =
            ServedSnapshot::prepare(snapshot("/", SnapshotKind::Object, r#"{"id":1}"#), None);
        assert_eq!(root.org_id, None);
    }
}
