//! Invalid settings stop the real views binary at once, naming the variable and its value.

#[test]
fn invalid_values_stop_the_views_binary_naming_the_variable() {
    hubcache_testkit::assert_settings_refused(
        std::path::Path::new(env!("CARGO_BIN_EXE_views")),
        &[
            ("REDIS_URL", "http://localhost:6379"),
            ("GITHUB_ORG", "no spaces"),
            ("KEY_PREFIX", "a b"),
            ("METRICS_PORT", "70000"),
            ("SHUTDOWN_TIMEOUT_SECS", "soon"),
            ("HUBCACHE_CONFIG", "/nonexistent/hubcache.yml"),
        ],
    );
}
