//! Invalid settings stop the fetcher at start with the variable's name and value.

use fetcher::Settings;
use hubcache_shared::SettingsSource;

fn load(vars: &[(&str, &str)]) -> Result<Settings, String> {
    Settings::load(&SettingsSource::from_vars(vars.iter().copied())).map_err(|e| e.to_string())
}

#[test]
fn invalid_values_are_refused_with_the_variable_name() {
    for (name, value) in [
        ("LEASE_SECS", "0"),
        ("LEASE_SECS", "soon"),
        ("REFRESH_INTERVAL_SECS", "0"),
        ("REFRESH_INTERVAL_SECS", "-3"),
        ("GITHUB_API_URL", "ftp://example.com"),
        ("REDIS_URL", "http://localhost"),
        ("GITHUB_ORG", "no spaces"),
        ("CACHED_ENDPOINTS", "/orgs/../etc"),
    ] {
        let err = load(&[(name, value)]).expect_err(name);
        assert!(err.contains(name), "{name}={value}: {err}");
    }
}

#[test]
fn a_bad_token_is_never_echoed() {
    let settings = load(&[("GITHUB_API_TOKEN", "ghp_supersecret")]).expect("loads");
    assert!(!format!("{settings:?}").contains("ghp_supersecret"));
}

#[test]
fn valid_values_are_used() {
    let settings = load(&[("LEASE_SECS", "4"), ("REFRESH_INTERVAL_SECS", "7")]).expect("loads");
    assert_eq!(settings.lease_secs, 4);
    assert_eq!(settings.common.refresh_interval_secs, 7);
}

#[test]
fn invalid_values_stop_the_fetcher_binary_naming_the_variable() {
    hubcache_testkit::assert_settings_refused(
        std::path::Path::new(env!("CARGO_BIN_EXE_fetcher")),
        &[
            ("REDIS_URL", "http://localhost:6379"),
            ("GITHUB_API_URL", "ftp://example.com"),
            ("GITHUB_ORG", "no spaces"),
            ("KEY_PREFIX", "a b"),
            ("CACHED_ENDPOINTS", "/orgs/../etc"),
            ("REFRESH_INTERVAL_SECS", "0"),
            ("LEASE_SECS", "soon"),
            ("METRICS_PORT", "70000"),
            ("SHUTDOWN_TIMEOUT_SECS", "-1"),
            ("HUBCACHE_CONFIG", "/nonexistent/hubcache.toml"),
        ],
    );
}
