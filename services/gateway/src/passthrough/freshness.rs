//! The cache's rules for an upstream answer: conditional revalidation with the stored ETag,
//! fresh lifetime from `Cache-Control` (capped by `CACHE_TTL_SECS`), negative caching of 404/410,
//! and rate-limit refusals and server errors kept out of the cache.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hubcache_shared::github::{GithubResponse, Links, RateLimit};

use super::stored_answer::StoredResponse;
use super::upstream::{OutgoingRequest, RawAnswer, Upstream, UpstreamFailure};
use crate::coalescing_cache::Fetched;

impl Upstream {
    /// The cache's fetch: a conditional GET when a previous answer has an ETag, classified into
    /// store / revalidated / pass-on / failure.
    pub(super) async fn fetch_cacheable(
        self: Arc<Self>,
        mut outgoing: OutgoingRequest,
        previous: Option<Arc<StoredResponse>>,
    ) -> Result<Fetched<StoredResponse>, UpstreamFailure> {
        let client_credential = outgoing.credential.is_some();
        if let Some(etag) = previous.as_ref().and_then(|p| p.etag.as_deref())
            && let Ok(value) = reqwest::header::HeaderValue::from_str(etag)
        {
            outgoing
                .headers
                .push((reqwest::header::IF_NONE_MATCH, value));
        }
        let answer = self.send(outgoing).await?;
        let status = answer.status.as_u16();
        if status == 304 && previous.is_some() {
            let ttl = self.freshness(&answer.headers, client_credential);
            return Ok(Fetched::NotModified {
                ttl: ttl.unwrap_or(Duration::ZERO),
            });
        }
        if answer.status.is_server_error() {
            return Err(UpstreamFailure::Status(status));
        }
        if let Some(retry_after) = rate_limit_wait(&answer) {
            return Err(UpstreamFailure::RateLimited {
                status,
                retry_after: Some(retry_after),
            });
        }
        let ttl = match status {
            200 | 203 | 204 => self.freshness(&answer.headers, client_credential),
            404 | 410 => Some(self.negative_ttl),
            _ => None,
        };
        let stored = self
            .prepare(answer, client_credential, ttl.is_some())
            .await
            .map_err(|_| UpstreamFailure::Prepare)?;
        Ok(match ttl {
            Some(ttl) => Fetched::Store { value: stored, ttl },
            None => Fetched::Uncacheable(stored),
        })
    }

    /// Fresh lifetime: `CACHE_TTL_SECS`, shortened by the answer's `s-maxage`/`max-age`.
    /// `None` when it must not be shared: `no-store`/`no-cache` in the server partition (a
    /// client's own partition is private to it, so its answers are kept regardless, as is
    /// GitHub's `private`, which every token-authenticated answer carries).
    fn freshness(
        &self,
        headers: &reqwest::header::HeaderMap,
        client_credential: bool,
    ) -> Option<Duration> {
        let directives = CacheControl::parse(headers);
        if !client_credential && (directives.no_store || directives.no_cache) {
            return None;
        }
        let ttl = directives
            .s_maxage
            .or(directives.max_age)
            .map_or(self.fresh_ttl, |secs| {
                self.fresh_ttl.min(Duration::from_secs(secs))
            });
        Some(ttl)
    }
}

/// Seconds to wait when the answer is a rate-limit refusal (429, or 403 that GitHub's rules say
/// is a limit); `None` for every other answer.
fn rate_limit_wait(answer: &RawAnswer) -> Option<u64> {
    let wait = rate_limit_duration(answer.status, &answer.headers, &answer.body)?;
    Some(wait.as_secs().max(1) + u64::from(wait.subsec_nanos() > 0))
}

/// How long GitHub's rules say to wait after this answer (`None`: it is no rate-limit
/// refusal): until `x-ratelimit-reset` for a spent primary limit, `retry-after`, or a minute.
pub(super) fn rate_limit_duration(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &bytes::Bytes,
) -> Option<Duration> {
    if !matches!(status.as_u16(), 403 | 429) {
        return None;
    }
    let response = GithubResponse {
        status,
        headers: headers.clone(),
        body: body.clone(),
        etag: None,
        links: Links::default(),
        rate_limit: RateLimit::from_headers(headers),
    };
    response.rate_limit_wait(SystemTime::now())
}

/// The `Cache-Control` directives the cache acts on.
#[derive(Debug, Default, PartialEq, Eq)]
struct CacheControl {
    no_store: bool,
    no_cache: bool,
    max_age: Option<u64>,
    s_maxage: Option<u64>,
}

impl CacheControl {
    fn parse(headers: &reqwest::header::HeaderMap) -> Self {
        let mut directives = Self::default();
        for part in headers
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let (name, value) = match part.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
                None => (part.trim(), None),
            };
            let seconds = || value.and_then(|v| v.parse::<u64>().ok());
            match name.to_ascii_lowercase().as_str() {
                "no-store" => directives.no_store = true,
                "no-cache" => directives.no_cache = true,
                "max-age" => directives.max_age = seconds().or(Some(0)),
                "s-maxage" => directives.s_maxage = seconds().or(Some(0)),
                _ => {}
            }
        }
        directives
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_and_encodings_are_understood() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "cache-control",
            "private, max-age=60, s-maxage=30".parse().expect("v"),
        );
        let cc = CacheControl::parse(&h);
        assert_eq!(
            (cc.max_age, cc.s_maxage, cc.no_store),
            (Some(60), Some(30), false)
        );
        h.insert("cache-control", "no-store".parse().expect("v"));
    }
}
