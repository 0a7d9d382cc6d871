//! What names a cached answer: the request target (path plus normalised query), the normalised
//! `Accept`, the API version and the credential partition.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use hubcache_shared::github::GITHUB_ACCEPT;

use super::allow_lists::allowed_header;
use super::error::PassThroughError;

/// The normalised `Accept` of a request without one, or with `*/*`: what GitHub serves then.
pub(super) const DEFAULT_ACCEPT: &str = GITHUB_ACCEPT;

/// The request target as sent upstream: the path as received plus the normalised query.
pub(super) fn request_target(req: &HttpRequest) -> Result<String, PassThroughError> {
    let path = req.uri().path();
    if !path.starts_with('/') {
        return Err(PassThroughError::BadTarget);
    }
    let query = req.uri().query().map(normalise_query).unwrap_or_default();
    Ok(if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    })
}

/// Query parameters decoded, sorted by name (stable, so repeated names keep their order) and
/// re-encoded one canonical way: `b=2&a=1` and `a=%31&b=2` are the same entry.
fn normalise_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `Accept` lowercased, without spaces; absent or `*/*` means GitHub's default media type.
pub(super) fn normalise_accept(headers: &HeaderMap) -> String {
    let accept = allowed_header(headers, "accept")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|part| part.split(';').map(str::trim).collect::<Vec<_>>().join(";"))
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(",")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if accept.is_empty() || accept == "*/*" {
        DEFAULT_ACCEPT.to_owned()
    } else {
        accept
    }
}

/// A cache key. The credential partition holds a hash, so no credential is kept in the cache.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(super) partition: Partition,
    /// Path and normalised query; the method is implicitly GET (HEAD shares GET's entries).
    pub(super) target: String,
    pub(super) accept: String,
    pub(super) api_version: Option<String>,
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let partition = match self.partition {
            Partition::Anonymous => "anonymous",
            Partition::Server(_) => "server",
            Partition::Credential(_) => "client credential",
        };
        f.debug_struct("CacheKey")
            .field("partition", &partition)
            .field("target", &self.target)
            .field("accept", &self.accept)
            .field("api_version", &self.api_version)
            .finish()
    }
}

/// Whose credential fetched an answer: the partition follows the credential actually sent, so
/// an answer fetched with the server's credential is never served where it would not be sent.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum Partition {
    /// Anonymous clients, fetched without a credential (outside the token scope).
    Anonymous,
    /// Anonymous clients, fetched with the server's credential, by its non-secret name.
    Server(Arc<str>),
    /// Answers fetched with one client's own `Authorization`: SHA-256 of its value.
    Credential([u8; 32]),
}

#[cfg(test)]
mod tests {
    use hubcache_shared::github::GITHUB_ACCEPT;

    use super::*;
    use crate::passthrough::header_map as headers;

    #[test]
    fn queries_are_normalised() {
        assert_eq!(normalise_query("b=2&a=1"), normalise_query("a=%31&b=2"));
        assert_eq!(
            normalise_query("per_page=100&page=2"),
            "page=2&per_page=100"
        );
        // Repeated names keep their order; empty pairs are dropped; encodings converge.
        assert_eq!(normalise_query("x=2&&x=1&=z"), "x=2&x=1");
        assert_eq!(normalise_query("q=a%20b"), normalise_query("q=a+b"));
        assert_eq!(normalise_query("q=a%2Bb"), "q=a%2Bb");
        assert_eq!(normalise_query(""), "");
    }

    #[test]
    fn accept_is_normalised_and_defaults_to_githubs_type() {
        assert_eq!(normalise_accept(&HeaderMap::new()), GITHUB_ACCEPT);
        assert_eq!(
            normalise_accept(&headers(&[("accept", "*/*")])),
            GITHUB_ACCEPT
        );
        assert_eq!(
            normalise_accept(&headers(&[(
                "accept",
                "Application/VND.github.raw+json ; q=1 ,  text/html"
            )])),
            "application/vnd.github.raw+json;q=1,text/html"
        );
    }
}
