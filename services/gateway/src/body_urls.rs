//! Upstream URLs in bodies, pointed at the gateway: with `PUBLIC_URL` set, every absolute URL of
//! the configured upstream (or of `https://api.github.com`, which real GitHub data names) that a
//! body contains is rewritten to start with `PUBLIC_URL`, so clients that follow URLs found in
//! bodies (PyGithub, octokit) keep talking to the gateway. Applied once per stored answer or
//! snapshot version, never per request. Without `PUBLIC_URL` nothing is rewritten: bodies are
//! served verbatim.

use bytes::Bytes;
use url::Url;

/// The host real GitHub data points at; rewritten like the configured upstream.
pub(crate) const GITHUB_API_BASE: &str = "https://api.github.com";

/// Replaces upstream base URLs in bodies with the gateway's public base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyUrlRewriter {
    /// `PUBLIC_URL` without its trailing slash.
    base: String,
    /// Upstream bases (without trailing slash), longest first, so a base that extends another
    /// (`http://host/api/v3` and `http://host`) is matched whole.
    needles: Vec<String>,
}

impl BodyUrlRewriter {
    /// A rewriter to `public_url` of `upstream`'s and GitHub's URLs; `None` when `PUBLIC_URL` is
    /// unset (bodies are then served verbatim).
    pub(crate) fn for_public_url(public_url: Option<&Url>, upstream: &Url) -> Option<Self> {
        let base = public_url?.as_str().trim_end_matches('/').to_owned();
        let mut needles = vec![
            GITHUB_API_BASE.to_owned(),
            upstream.as_str().trim_end_matches('/').to_owned(),
        ];
        needles.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        needles.dedup();
        Some(Self { base, needles })
    }

    /// `body` with every upstream base replaced where it starts a URL (followed by `/`, `?`,
    /// `#`, `"` or the end, so `https://api.github.com.evil` is left alone). The replacement is
    /// a serialised URL, which never contains `"`, `\` or control characters, so JSON stays
    /// valid. `None` when nothing matched (keep the body as is).
    pub(crate) fn rewrite(&self, body: &[u8]) -> Option<Bytes> {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut at = 0;
        while let Some(offset) = body[at..].iter().position(|&b| b == b'h') {
            let start = at + offset;
            let found = self.needles.iter().find(|needle| {
                let end = start + needle.len();
                body[start..].starts_with(needle.as_bytes())
                    && matches!(body.get(end), None | Some(b'/' | b'?' | b'#' | b'"'))
            });
            match found {
                Some(needle) => {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(body.len() + 1024));
                    out.extend_from_slice(&body[copied..start]);
                    out.extend_from_slice(self.base.as_bytes());
                    copied = start + needle.len();
                    at = copied;
                }
                None => at = start + 1,
            }
        }
        out.map(|mut out| {
            out.extend_from_slice(&body[copied..]);
            Bytes::from(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewriter() -> BodyUrlRewriter {
        BodyUrlRewriter::for_public_url(
            Some(&Url::parse("https://cache.example/").expect("url")),
            &Url::parse("http://127.0.0.1:3001/api/v3/").expect("url"),
        )
        .expect("PUBLIC_URL is set")
    }

    #[test]
    fn bodies_are_rewritten_only_where_a_url_starts_and_stay_valid_json() {
        let body = br#"{"url":"https://api.github.com/repos/a/b","t":"https://api.github.com{/x}","h":"https://api.github.com","e":"https://api.github.com.evil.example/x","s":"http://127.0.0.1:3001/api/v3/users/u?x=1","w":"https://github.com/a"}"#;
        let rewritten = rewriter().rewrite(body).expect("rewritten");
        let json: serde_json::Value = serde_json::from_slice(&rewritten).expect("valid JSON");
        assert_eq!(json["url"], "https://cache.example/repos/a/b");
        assert_eq!(
            json["t"], "https://api.github.com{/x}",
            "only URL boundaries match"
        );
        assert_eq!(json["h"], "https://cache.example");
        assert_eq!(json["e"], "https://api.github.com.evil.example/x");
        assert_eq!(json["s"], "https://cache.example/users/u?x=1");
        assert_eq!(json["w"], "https://github.com/a");
        assert!(rewriter().rewrite(b"{\"a\":\"hello\"}").is_none());
    }

    #[test]
    fn nothing_is_rewritten_without_public_url() {
        let upstream = Url::parse("https://api.github.com").expect("url");
        assert!(BodyUrlRewriter::for_public_url(None, &upstream).is_none());
    }
}
