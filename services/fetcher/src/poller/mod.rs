//! One poll of one endpoint: revalidate every page with its stored ETag, follow `next` links,
//! and merge the pages into the exact bytes to store.
//!
//! A poll is all or nothing: any failure on any page abandons it ([`PollOutcome::Failed`]) and
//! the stored snapshot stays. Elements are never re-serialised: the merged array is GitHub's own
//! element bytes joined by commas.

use std::collections::HashSet;
use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;
use hubcache_shared::github::{Credentials, GithubError, UpstreamUrl, with_max_per_page};
use hubcache_shared::json_array;
use hubcache_shared::snapshot::{PageMeta, content_hash, now_ms};
use hubcache_shared::{GithubClient, GithubResponse, Snapshot, SnapshotKind, SnapshotMeta};
use reqwest::StatusCode;

use crate::budget::SharedBudget;

/// The longest part of GitHub's error message kept in a status.
const MAX_MESSAGE_CHARS: usize = 200;

/// What one poll found.
#[derive(Debug)]
pub(crate) enum PollOutcome {
    /// The content differs from the stored snapshot: store this as the next version.
    Changed {
        /// The exact bytes to serve.
        body: Vec<u8>,
        /// Its meta (version = stored version + 1).
        meta: SnapshotMeta,
    },
    /// Same content as stored. `pages` is set when page metadata (ETags, links) changed and
    /// should be saved so the next poll revalidates for free.
    Unchanged {
        /// The stored meta with the new pages, when they differ.
        updated_meta: Option<SnapshotMeta>,
    },
    /// The poll was abandoned; the stored snapshot stays.
    Failed(PollError),
}

/// A poll's outcome and what it cost.
#[derive(Debug)]
pub(crate) struct PollReport {
    /// What was found.
    pub(crate) outcome: PollOutcome,
    /// Rate-limit units the poll is assumed to have spent.
    pub(crate) units: u32,
}

/// Why a poll was abandoned. Messages go into the snapshot status: they name the request
/// target (never the token) and GitHub's answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PollError {
    /// GitHub asked us to stop for a while (secondary limit or spent primary limit).
    #[error("GET {target}: {status}, rate limited for {}s", wait.as_secs())]
    RateLimited {
        /// The page request.
        target: String,
        /// 403 or 429.
        status: StatusCode,
        /// How long GitHub asked us to wait.
        wait: std::time::Duration,
    },
    /// No credential for the org: its App installation is refused (revoked, suspended,
    /// uninstalled) or the token request failed.
    #[error("GET {target}: {source}")]
    Credential {
        /// The page request.
        target: String,
        /// Why.
        source: hubcache_shared::github::CredentialError,
    },
    /// GitHub answered with an error status.
    #[error("GET {target}: {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        /// The page request.
        target: String,
        /// The status.
        status: StatusCode,
        /// GitHub's `message`, shortened.
        message: Option<String>,
    },
    /// No response: connection failure, timeout, cut transfer.
    #[error("GET {target}: {reason}")]
    Transport {
        /// The page request.
        target: String,
        /// What went wrong (no URL, no headers).
        reason: String,
    },
    /// The request target was refused by the client (foreign host, unparsable).
    #[error("GET {target}: {reason}")]
    Refused {
        /// The page request.
        target: String,
        /// The client's refusal.
        reason: String,
    },
    /// The body is not valid JSON (e.g. truncated).
    #[error("GET {target}: invalid JSON body: {reason}")]
    InvalidJson {
        /// The page request.
        target: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A page after the first is not a JSON array.
    #[error("GET {target}: page {page} of a list is not a JSON array")]
    NotAnArray {
        /// The page request.
        target: String,
        /// 1-based page number.
        page: usize,
    },
    /// A `next` link the client refuses to follow (see `GithubClient::resolve_link`).
    #[error("GET {target}: next link refused: {reason}")]
    RefusedNext {
        /// The page request.
        target: String,
        /// The client's refusal (names the link without its query).
        reason: String,
    },
    /// `next` links lead back to a page already fetched.
    #[error("GET {target}: next link loops back to {link}")]
    NextLoop {
        /// The page request.
        target: String,
        /// The repeated target.
        link: String,
    },
    /// More pages than the configured maximum.
    #[error("more than {max} pages; giving up")]
    TooManyPages {
        /// The maximum.
        max: usize,
    },
    /// GitHub answered 304 for a page we hold no copy of.
    #[error("GET {target}: 304 Not Modified for a page that is not stored")]
    UnexpectedNotModified {
        /// The page request.
        target: String,
    },
}

impl PollError {
    /// What kind of failure this is, from a fixed set: the `reason` label of
    /// `hubcache_fetcher_poll_errors_total` (the full text goes to the status).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            PollError::RateLimited { .. } => "rate_limited",
            PollError::Credential { source, .. } => source.reason(),
            PollError::Status { status, .. } if *status == StatusCode::NOT_FOUND => {
                hubcache_shared::snapshot::REASON_NOT_FOUND
            }
            PollError::Status { .. } => "status",
            PollError::Transport { .. } => "transport",
            PollError::Refused { .. } => "refused_target",
            PollError::InvalidJson { .. } => "invalid_json",
            PollError::NotAnArray { .. } => "not_an_array",
            PollError::RefusedNext { .. } => "refused_link",
            PollError::NextLoop { .. } => "link_loop",
            PollError::TooManyPages { .. } => "too_many_pages",
            PollError::UnexpectedNotModified { .. } => "unexpected_not_modified",
        }
    }

    /// The pause GitHub asked for, if this is a rate-limit rejection.
    pub(crate) fn rate_limit_wait(&self) -> Option<std::time::Duration> {
        match self {
            PollError::RateLimited { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}

/// A stored page: its meta and where its elements are in the stored body.
#[derive(Debug)]
struct StoredPage<'a> {
    meta: &'a PageMeta,
    elements: Vec<Range<usize>>,
}

/// Where a page's elements come from.
#[derive(Debug)]
enum PageSource {
    /// Fresh bytes from a 200, with the element ranges inside them (`None`: an object).
    Fresh {
        body: Bytes,
        elements: Option<Vec<Range<usize>>>,
    },
    /// GitHub said 304: the stored page's elements (ranges in the stored body).
    Reused { elements: Vec<Range<usize>> },
}

#[derive(Debug)]
struct FetchedPage {
    meta: PageMeta,
    source: PageSource,
}

/// Polls endpoints through the GitHub client.
#[derive(Debug, Clone)]
pub(crate) struct Poller {
    client: GithubClient,
    credentials: Credentials,
    max_pages: usize,
}

impl Poller {
    /// A poller following at most `max_pages` pages per list.
    pub(crate) fn new(client: GithubClient, credentials: Credentials, max_pages: usize) -> Self {
        Self {
            client,
            credentials,
            max_pages,
        }
    }

    /// Polls `path` against what is stored (`stored`, `None` when nothing is), recording rate
    /// limits in `budget`.
    pub(crate) async fn poll(
        &self,
        org: &str,
        path: &str,
        stored: Option<&Snapshot>,
        budget: &SharedBudget,
    ) -> PollReport {
        let mut units = 0;
        let outcome = match self
            .fetch_pages(org, path, stored, budget, &mut units)
            .await
        {
            Ok(pages) => assemble(path, stored, pages),
            Err(e) => PollOutcome::Failed(e),
        };
        PollReport { outcome, units }
    }

    async fn fetch_pages(
        &self,
        org: &str,
        path: &str,
        stored: Option<&Snapshot>,
        budget: &SharedBudget,
        units: &mut u32,
    ) -> Result<Vec<FetchedPage>, PollError> {
        let stored_pages = stored.map(stored_pages).unwrap_or_default();
        let mut pages: Vec<FetchedPage> = Vec::new();
        let mut visited: HashSet<String> = HashSet::new();
        let mut target = with_max_per_page(path);
        loop {
            if pages.len() >= self.max_pages {
                return Err(PollError::TooManyPages {
                    max: self.max_pages,
                });
            }
            visited.insert(target.clone());
            let index = pages.len();
            let cached = stored_pages.get(index).filter(|p| p.meta.target == target);
            let etag = cached.and_then(|p| p.meta.etag.as_deref());
            // Asked per page: an installation token is renewed before it expires, never mid-use.
            let credential =
                self.credentials
                    .for_org(org)
                    .await
                    .map_err(|source| PollError::Credential {
                        target: target.clone(),
                        source,
                    })?;
            let response = self
                .client
                .get_as(&target, etag, credential.as_ref())
                .await
                .map_err(|e| describe(&target, e))?;
            if response.status == StatusCode::UNAUTHORIZED && self.credentials.is_app() {
                // The installation token was refused (revoked?): ask for a new one next time,
                // which finds out whether the installation is still there.
                self.credentials.invalidate(org).await;
            }
            if let Some(rate_limit) = response.rate_limit {
                budget.observe(rate_limit);
            }
            // A 304 is free for an authenticated client; anything else is counted.
            if response.status != StatusCode::NOT_MODIFIED || credential.is_none() {
                *units += 1;
            }
            let page = match response.status {
                StatusCode::NOT_MODIFIED => {
                    let Some(cached) = cached else {
                        return Err(PollError::UnexpectedNotModified { target });
                    };
                    FetchedPage {
                        meta: PageMeta {
                            target: target.clone(),
                            etag: response.etag.clone().or_else(|| cached.meta.etag.clone()),
                            next: cached.meta.next.clone(),
                            items: cached.meta.items,
                        },
                        source: PageSource::Reused {
                            elements: cached.elements.clone(),
                        },
                    }
                }
                StatusCode::OK => self.fresh_page(&target, index, response)?,
                status => return Err(error_status(&target, status, &response)),
            };
            let is_object = matches!(page.source, PageSource::Fresh { elements: None, .. })
                || (index == 0
                    && stored.is_some_and(|s| s.meta.kind == SnapshotKind::Object)
                    && cached.is_some());
            let next = if is_object {
                None
            } else {
                page.meta.next.clone()
            };
            pages.push(page);
            match next {
                None => return Ok(pages),
                Some(next) if visited.contains(&next) => {
                    return Err(PollError::NextLoop { target, link: next });
                }
                Some(next) => target = next,
            }
        }
    }

    fn fresh_page(
        &self,
        target: &str,
        index: usize,
        response: GithubResponse,
    ) -> Result<FetchedPage, PollError> {
        let elements =
            json_array::element_ranges(&response.body).map_err(|e| PollError::InvalidJson {
                target: target.to_owned(),
                reason: e.to_string(),
            })?;
        if elements.is_none() && index > 0 {
            return Err(PollError::NotAnArray {
                target: target.to_owned(),
                page: index + 1,
            });
        }
        let next = match (&elements, &response.links.next) {
            (Some(_), Some(link)) => Some(self.next_target(target, link)?),
            _ => None,
        };
        Ok(FetchedPage {
            meta: PageMeta {
                target: target.to_owned(),
                etag: response.etag.clone(),
                next,
                items: elements.as_ref().map_or(0, Vec::len),
            },
            source: PageSource::Fresh {
                body: response.body,
                elements,
            },
        })
    }

    /// The target of a `next` link under the configured base (a link naming another origin,
    /// as a proxy in front of GitHub leaves them, is re-based by the client).
    fn next_target(&self, target: &str, link: &str) -> Result<String, PollError> {
        self.client
            .resolve_link(link)
            .map(UpstreamUrl::into_target)
            .map_err(|refused| PollError::RefusedNext {
                target: target.to_owned(),
                reason: refused.to_string(),
            })
    }
}

/// Builds the outcome from a complete page set.
fn assemble(path: &str, stored: Option<&Snapshot>, pages: Vec<FetchedPage>) -> PollOutcome {
    // Every stored page answered 304: the content is the stored content, no need to rebuild
    // and hash it (the common case, every interval).
    if let Some(stored) = stored
        && pages.len() == stored.meta.pages.len()
        && pages
            .iter()
            .all(|p| matches!(p.source, PageSource::Reused { .. }))
    {
        let page_metas: Vec<PageMeta> = pages.into_iter().map(|p| p.meta).collect();
        let updated_meta = (stored.meta.pages != page_metas).then(|| SnapshotMeta {
            pages: page_metas,
            ..stored.meta.clone()
        });
        return PollOutcome::Unchanged { updated_meta };
    }
    let stored_body: &[u8] = stored.map_or(&[], |s| &s.body);
    let kind = match pages.first().map(|p| &p.source) {
        Some(PageSource::Fresh { elements: None, .. }) => SnapshotKind::Object,
        Some(PageSource::Fresh {
            elements: Some(_), ..
        }) => SnapshotKind::List,
        // A 304 on the first page: the stored kind still holds.
        _ => stored.map_or(SnapshotKind::List, |s| s.meta.kind),
    };
    let body: Vec<u8> = match (kind, pages.first()) {
        (
            SnapshotKind::Object,
            Some(FetchedPage {
                source: PageSource::Fresh { body, .. },
                ..
            }),
        ) => body.to_vec(),
        (SnapshotKind::Object, _) => stored_body.to_vec(),
        (SnapshotKind::List, _) => json_array::join(pages.iter().flat_map(
            |page| -> Box<dyn Iterator<Item = &[u8]> + '_> {
                match &page.source {
                    PageSource::Fresh {
                        body,
                        elements: Some(elements),
                    } => Box::new(elements.iter().map(move |r| &body[r.clone()])),
                    PageSource::Fresh { elements: None, .. } => Box::new(std::iter::empty()),
                    PageSource::Reused { elements } => {
                        Box::new(elements.iter().map(|r| &stored_body[r.clone()]))
                    }
                }
            },
        )),
    };
    let page_metas: Vec<PageMeta> = pages.into_iter().map(|p| p.meta).collect();
    let hash = content_hash(&body);
    if let Some(stored) = stored
        && stored.meta.content_hash == hash
        && stored.meta.kind == kind
    {
        let updated_meta = (stored.meta.pages != page_metas).then(|| SnapshotMeta {
            pages: page_metas,
            ..stored.meta.clone()
        });
        return PollOutcome::Unchanged { updated_meta };
    }
    PollOutcome::Changed {
        meta: SnapshotMeta {
            path: path.to_owned(),
            version: stored.map_or(0, |s| s.meta.version) + 1,
            content_hash: hash,
            kind,
            fetched_at_ms: now_ms(),
            pages: page_metas,
        },
        body,
    }
}

/// The stored pages with their elements located in the stored body; empty when the body cannot
/// be split as its meta says (then every page is fetched afresh, without ETags).
fn stored_pages(snapshot: &Snapshot) -> Vec<StoredPage<'_>> {
    let pages = &snapshot.meta.pages;
    match snapshot.meta.kind {
        SnapshotKind::Object => pages
            .first()
            .map(|meta| StoredPage {
                meta,
                elements: Vec::new(),
            })
            .into_iter()
            .collect(),
        SnapshotKind::List => {
            let counts: Vec<usize> = pages.iter().map(|p| p.items).collect();
            match json_array::split_by_counts(&snapshot.body, &counts) {
                Some(split) => pages
                    .iter()
                    .zip(split)
                    .map(|(meta, elements)| StoredPage { meta, elements })
                    .collect(),
                None => {
                    tracing::warn!(path = %snapshot.meta.path, "stored pages do not match the stored body; refetching all");
                    Vec::new()
                }
            }
        }
    }
}

fn error_status(target: &str, status: StatusCode, response: &GithubResponse) -> PollError {
    if let Some(wait) = response.rate_limit_wait(SystemTime::now()) {
        return PollError::RateLimited {
            target: target.to_owned(),
            status,
            wait,
        };
    }
    let message = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect());
    PollError::Status {
        target: target.to_owned(),
        status,
        message,
    }
}

/// A transport failure described without the URL or anything else from the request.
fn describe(target: &str, error: GithubError) -> PollError {
    match error {
        GithubError::Transport(e) => {
            let reason = if e.is_timeout() {
                "request timed out"
            } else if e.is_connect() {
                "could not connect"
            } else if e.is_body() || e.is_decode() {
                "response body transfer failed"
            } else {
                "request failed"
            };
            PollError::Transport {
                target: target.to_owned(),
                reason: reason.to_owned(),
            }
        }
        refused @ (GithubError::ForeignTarget(_)
        | GithubError::InvalidTarget(_)
        | GithubError::RefusedLink { .. }) => PollError::Refused {
            target: target.to_owned(),
            reason: refused.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
