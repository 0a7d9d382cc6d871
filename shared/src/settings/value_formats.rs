//! The value formats settings accept beyond plain numbers: GitHub API paths and logins,
//! `host:port` lists and base URLs. Pure functions, shared by every service's validation.

use url::Url;

use super::SettingsError;

/// Normalises a GitHub API path: one leading `/`, no trailing `/` (except `/`), no query,
/// no `.`/`..` segments, no empty segments. `None` when it is not a plain path.
pub fn normalize_endpoint_path(raw: &str) -> Option<String> {
    if !raw.starts_with('/') || raw.contains(['?', '#', ' ', '\\']) {
        return None;
    }
    let segments: Vec<&str> = raw.trim_end_matches('/').split('/').skip(1).collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return None;
    }
    if segments.is_empty() {
        return Some("/".to_owned());
    }
    Some(format!("/{}", segments.join("/")))
}

/// GitHub logins: alphanumerics and single inner hyphens, at most 39 characters.
pub fn is_github_login(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// Parses `host:port,host:port` (IPv6 as `[::1]:26379`); `None` if any item is malformed or
/// the list is empty.
pub fn parse_host_ports(list: &str) -> Option<Vec<(String, u16)>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = item.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
        if host.is_empty() || host.contains(['/', '@', ' ', '?', '#']) {
            return None;
        }
        out.push((host.to_owned(), port));
    }
    (!out.is_empty()).then_some(out)
}

/// Parses an `http(s)` base URL for `name`, dropping trailing slashes, rejecting queries.
pub fn parse_base_url(name: &'static str, value: &str) -> Result<Url, SettingsError> {
    let invalid = |reason: &str| SettingsError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let url =
        Url::parse(value.trim_end_matches('/')).map_err(|e| invalid(&format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("expected an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid("expected no query, fragment or credentials"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_paths_normalise() {
        assert_eq!(normalize_endpoint_path("/").as_deref(), Some("/"));
        assert_eq!(
            normalize_endpoint_path("/orgs/x/").as_deref(),
            Some("/orgs/x")
        );
        assert_eq!(normalize_endpoint_path("orgs/x"), None);
        assert_eq!(normalize_endpoint_path("/orgs//x"), None);
        assert_eq!(normalize_endpoint_path("/orgs/x?page=2"), None);
    }
}

/// Property tests: endpoint paths come from the environment and config files.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn normalised_paths_are_plain_and_stable(raw in "[/a-z.{}?# \\\\-]{0,24}") {
            if let Some(path) = normalize_endpoint_path(&raw) {
                prop_assert!(path.starts_with('/'));
                prop_assert!(path == "/" || !path.ends_with('/'));
                prop_assert!(!path.contains("//") && !path.contains(['?', '#', ' ', '\\']));
                prop_assert!(path.split('/').skip(1).all(|s| s != "." && s != ".."));
                prop_assert_eq!(normalize_endpoint_path(&path), Some(path.clone()));
            }
        }
    }
}
