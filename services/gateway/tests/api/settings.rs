//! Invalid settings stop the real gateway binary at once, naming the variable and its value
//! (and never echoing the token).

use std::path::Path;

use hubcache_testkit::assert_settings_refused;

#[test]
fn invalid_values_stop_the_gateway_naming_the_variable() {
    assert_settings_refused(
        Path::new(env!("CARGO_BIN_EXE_gateway")),
        &[
            ("REDIS_URL", "http://localhost:6379"),
            ("GITHUB_API_URL", "ftp://example.com"),
            ("GITHUB_ORG", "no spaces"),
            ("KEY_PREFIX", "a b"),
            ("CACHED_ENDPOINTS", "/orgs/../etc"),
            ("PORT", "99999"),
            ("PUBLIC_URL", "not a url"),
            ("WORKERS", "0"),
            ("CACHE_MAX_BYTES", "0"),
            ("CACHE_TTL_SECS", "soon"),
            ("MAX_UPSTREAM_FETCHES", "0"),
            ("MAX_CONNECTIONS", "-5"),
            ("CLIENT_RATE_LIMIT_PER_SEC", "1.5"),
            ("PASSTHROUGH_USE_SERVER_TOKEN", "maybe"),
            ("STATUS_PAGE", "sometimes"),
            ("STATUS_PAGE_ALLOW", "10.0.0.0/33"),
            ("SHUTDOWN_TIMEOUT_SECS", "soon"),
            ("HUBCACHE_CONFIG", "/nonexistent/hubcache.yaml"),
        ],
    );
}
