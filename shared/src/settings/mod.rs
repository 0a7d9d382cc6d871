//! Settings: defaults → optional config file → environment, environment winning.
//!
//! Every service has its own typed settings struct (see each service's `settings.rs`) that
//! embeds [`CommonSettings`] and declares its own environment variables
//! ([`ServiceSettings::Variables`]); they all load through [`load`], which layers three sources
//! with `config`:
//!
//! 1. the serde defaults of the service's struct,
//! 2. an optional TOML or YAML file named by `--config FILE` or `HUBCACHE_CONFIG` (keys are the
//!    struct's field names),
//! 3. the flat, documented environment variables: the common ones and the service's own, each
//!    overriding the key of its lowercase name (parsed by `envy`, see `environment`).
//!
//! The variables are the public contract (README "Settings"): names are exact and unprefixed, so
//! envy's prefix stripping cannot mangle them. A malformed value fails start-up with a message
//! naming the variable and the value; secrets are never echoed.
//!
//! Layout: `environment` (reading declared variables into overrides), `common` (the shared
//! settings, their variables and validation), `value_formats` (paths, logins, `host:port`
//! lists, base URLs).

mod common;
mod environment;
mod value_formats;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use common::{CachedEndpoint, CommonSettings, EndpointSettings, default_endpoints};
pub use value_formats::{
    is_github_login, normalize_endpoint_path, parse_base_url, parse_host_ports,
};

use common::CommonVariables;
use environment::redact_token;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "HUBCACHE_CONFIG";

/// Why settings could not be loaded. Each message names the variable or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An environment variable did not parse into its type.
    #[error("invalid environment: {0}")]
    Env(String),
    /// The config file is missing, unreadable or not valid TOML/YAML for the settings.
    #[error("invalid config file {path}: {message}")]
    File {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// A value parsed but is not acceptable (e.g. a zero interval).
    #[error("invalid setting {name}={value:?}: {reason}")]
    Invalid {
        /// The variable (or config key) name, as a user would write it.
        name: &'static str,
        /// The offending value (never a secret).
        value: String,
        /// What an acceptable value looks like.
        reason: String,
    },
    /// The command line could not be understood.
    #[error("invalid arguments: {0}")]
    Args(String),
}

/// A service's settings struct, loaded by [`load`].
///
/// Its fields (with [`CommonSettings`] flattened in) are the config-file keys and carry the
/// defaults; [`Self::Variables`] says which of them the environment may set.
pub trait ServiceSettings: DeserializeOwned {
    /// The service's own environment variables, besides the common ones (`REDIS_*`,
    /// `GITHUB_*`, `REFRESH_INTERVAL_SECS`, `KEY_PREFIX`, `CACHED_ENDPOINTS`,
    /// `SHUTDOWN_TIMEOUT_SECS`): a struct of `Option`s whose field names are the lowercase
    /// variable names, equal to the settings fields they override, and whose types say how a
    /// value is parsed. A key without a field here is config-file only.
    type Variables: DeserializeOwned + Serialize;
}

/// Where settings come from: the command line and an environment, both injectable for tests.
#[derive(Debug, Default, Clone)]
pub struct SettingsSource {
    /// `--config FILE` from the command line, if given.
    pub config_file: Option<PathBuf>,
    /// The environment variables to read.
    pub env: HashMap<String, String>,
}

impl SettingsSource {
    /// The process's real command line and environment.
    pub fn from_process() -> Result<Self, SettingsError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let config_file = parse_config_arg(std::env::args().skip(1))?.or_else(|| {
            env.get(CONFIG_FILE_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Ok(Self { config_file, env })
    }

    /// A source with only these variables and no file: what tests use.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            config_file: None,
            env: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Reads `--config FILE` / `--config=FILE`; `--help` and unknown flags are errors.
fn parse_config_arg<I: Iterator<Item = String>>(
    mut args: I,
) -> Result<Option<PathBuf>, SettingsError> {
    let mut file = None;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            let path = args
                .next()
                .ok_or_else(|| SettingsError::Args("--config needs a file path".to_owned()))?;
            file = Some(PathBuf::from(path));
        } else if let Some(path) = arg.strip_prefix("--config=") {
            file = Some(PathBuf::from(path));
        } else {
            return Err(SettingsError::Args(format!(
                "unknown argument {arg:?}; usage: [--config FILE] (settings come from the environment, see README)"
            )));
        }
    }
    Ok(file)
}

/// Builds a service's settings struct `T` from `source`: defaults, then file, then environment
/// (the common variables and `T`'s own).
pub fn load<T: ServiceSettings>(source: &SettingsSource) -> Result<T, SettingsError> {
    let vars = environment::non_empty(source.env.clone());
    let mut overrides = environment::overrides::<CommonVariables>(&vars)?;
    overrides.extend(environment::overrides::<T::Variables>(&vars)?);
    let mut builder = config::Config::builder();
    if let Some(path) = &source.config_file {
        builder = builder.add_source(file_source(path)?);
    }
    for (key, value) in overrides {
        builder = builder
            .set_override(key, value)
            .map_err(|e| SettingsError::Env(e.to_string()))?;
    }
    let merged = builder.build().map_err(|e| file_error(source, e))?;
    merged
        .try_deserialize::<T>()
        .map_err(|e| file_error(source, e))
}

fn file_source(
    path: &Path,
) -> Result<config::File<config::FileSourceFile, config::FileFormat>, SettingsError> {
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => config::FileFormat::Toml,
        Some("yaml" | "yml") => config::FileFormat::Yaml,
        other => {
            return Err(SettingsError::File {
                path: path.to_owned(),
                message: format!("unsupported extension {other:?}: use .toml, .yaml or .yml"),
            });
        }
    };
    if !path.is_file() {
        return Err(SettingsError::File {
            path: path.to_owned(),
            message: "no such file".to_owned(),
        });
    }
    Ok(config::File::from(path).format(format).required(true))
}

fn file_error(source: &SettingsSource, e: config::ConfigError) -> SettingsError {
    let message = redact_token(&e.to_string());
    match &source.config_file {
        Some(path) => SettingsError::File {
            path: path.clone(),
            message,
        },
        None => SettingsError::Env(message),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    /// A service with one variable of its own (`PORT`) and one config-file-only key (`host`).
    #[derive(Debug, Deserialize)]
    struct TestSettings {
        #[serde(flatten)]
        common: CommonSettings,
        #[serde(default = "default_port")]
        port: u16,
        #[serde(default)]
        host: Option<String>,
    }
    fn default_port() -> u16 {
        3000
    }

    #[derive(Deserialize, Serialize)]
    struct TestVariables {
        port: Option<u16>,
    }

    impl ServiceSettings for TestSettings {
        type Variables = TestVariables;
    }

    fn load_vars(vars: &[(&str, &str)]) -> Result<TestSettings, SettingsError> {
        load(&SettingsSource::from_vars(vars.iter().copied()))
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = load_vars(&[
            ("PORT", "8080"),
            ("GITHUB_ORG", "octo-org"),
            ("REFRESH_INTERVAL_SECS", "3"),
            ("CACHED_ENDPOINTS", "/orgs/{org}, /orgs/{org}/repos/"),
        ])
        .expect("loads");
        assert_eq!(s.port, 8080);
        assert_eq!(s.common.orgs(), ["octo-org"]);
        let cached = s.common.cached().expect("valid");
        assert_eq!(cached.len(), 2);
        assert_eq!(cached[1].path, "/orgs/octo-org/repos");
        assert_eq!(cached[1].interval, Duration::from_secs(3));
    }

    #[test]
    fn only_declared_variables_are_read() {
        let s = load_vars(&[
            ("HOST", "example.com"),
            ("LEASE_SECS", "soon"),
            ("PORT", ""),
        ])
        .expect("undeclared variables are ignored, empty ones are unset");
        assert_eq!(s.host, None, "host is a config-file key only");
        assert_eq!(s.port, 3000);
    }

    #[test]
    fn bad_number_names_the_variable_and_value() {
        let err = load_vars(&[("PORT", "eighty")]).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("PORT") && msg.contains("eighty"), "{msg}");
    }

    #[test]
    fn token_is_never_echoed() {
        let s = load_vars(&[("GITHUB_API_TOKEN", "ghp_secret123")]).expect("loads");
        let debug = format!("{s:?}");
        assert!(!debug.contains("ghp_secret123"), "{debug}");
    }

    #[test]
    fn file_then_environment_layering() {
        let dir = std::env::temp_dir().join(format!("hubcache-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "github_org: FileOrg\nport: 4000\ncached_endpoints:\n  - path: /orgs/{org}/repos\n    refresh_interval_secs: 30\n",
        )
        .expect("write");
        let source = SettingsSource {
            config_file: Some(file.clone()),
            env: HashMap::from([("PORT".to_owned(), "5000".to_owned())]),
        };
        let s: TestSettings = load(&source).expect("loads");
        assert_eq!(s.common.orgs(), ["FileOrg"]);
        assert_eq!(s.port, 5000, "environment wins over the file");
        let cached = s.common.cached().expect("valid");
        assert_eq!(
            cached,
            [CachedEndpoint {
                org: "FileOrg".to_owned(),
                path: "/orgs/FileOrg/repos".to_owned(),
                interval: Duration::from_secs(30)
            }]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_or_unknown_file_fails_fast() {
        let source = SettingsSource {
            config_file: Some(PathBuf::from("/nonexistent/hubcache.yaml")),
            env: HashMap::new(),
        };
        let err = load::<TestSettings>(&source).expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/hubcache.yaml"));
    }

    #[test]
    fn config_argument_parsing() {
        let args = |a: &[&str]| parse_config_arg(a.iter().map(|s| (*s).to_owned()));
        assert_eq!(args(&[]).expect("ok"), None);
        assert_eq!(
            args(&["--config", "a.toml"]).expect("ok"),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            args(&["--config=b.yaml"]).expect("ok"),
            Some(PathBuf::from("b.yaml"))
        );
        assert!(args(&["--config"]).is_err());
        assert!(args(&["--verbose"]).is_err());
    }
}
