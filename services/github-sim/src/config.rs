//! The simulator's configuration: command-line flags (via clap) or a struct literal in tests.

use std::path::PathBuf;

use url::Url;

const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 3001;
const DEFAULT_BODY_BASE_URL: &str = "https://api.github.com";
const DEFAULT_GENERATED_REPOS: usize = 150;
const DEFAULT_GENERATED_MEMBERS: usize = 40;
const DEFAULT_ORG: &str = "Netflix";
const DEFAULT_SEED: u64 = 1;
const DEFAULT_RATE_LIMIT: u64 = 5000;
const DEFAULT_RATE_WINDOW_SECS: u64 = 3600;
const DEFAULT_WORKERS: usize = 2;
const DEFAULT_INSTALLATION_TOKEN_TTL_SECS: u64 = 3600;

/// How to run the simulator. Every field has a default (see [`SimConfig::default`]), so tests
/// write `SimConfig { port: 0, ..SimConfig::default() }`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "github-sim",
    version,
    about = "A stand-in for api.github.com's REST API: pagination, ETags, rate limits and injectable faults."
)]
pub struct SimConfig {
    /// Address to bind.
    #[arg(long, default_value = DEFAULT_HOST)]
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    #[arg(long, env = "SIM_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Base URL advertised in `Link` headers [default: http://{host}:{bound port}]. A path in it
    /// (e.g. `/api/v3`, like GitHub Enterprise) is also accepted as a prefix of request paths.
    #[arg(long)]
    pub base_url: Option<Url>,
    /// Base of the `*_url` fields inside generated bodies, as real GitHub data has them.
    #[arg(long, default_value = DEFAULT_BODY_BASE_URL)]
    pub body_base_url: Url,
    /// Serve this dataset file instead of generating one (format: see the crate docs or README).
    #[arg(long, conflicts_with_all = ["generate_repos", "generate_members", "org"])]
    pub dataset: Option<PathBuf>,
    /// Number of repositories of the generated org.
    #[arg(long, default_value_t = DEFAULT_GENERATED_REPOS)]
    pub generate_repos: usize,
    /// Number of members of the generated org.
    #[arg(long, default_value_t = DEFAULT_GENERATED_MEMBERS)]
    pub generate_members: usize,
    /// Login of the generated org, or several comma-separated (`Netflix,acme`): each gets
    /// `--generate-repos` repositories and `--generate-members` members; the first one's data is
    /// the same as when generated alone.
    #[arg(long, default_value = DEFAULT_ORG)]
    pub org: String,
    /// Seed of the generator (the same seed and sizes give byte-identical data).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Primary rate limit: requests per window.
    #[arg(long, default_value_t = DEFAULT_RATE_LIMIT)]
    pub rate_limit: u64,
    /// Length of a rate-limit window, in seconds.
    #[arg(long, default_value_t = DEFAULT_RATE_WINDOW_SECS)]
    pub rate_window_secs: u64,
    /// HTTP worker threads.
    #[arg(long, default_value_t = DEFAULT_WORKERS)]
    pub workers: usize,
    /// Register an org webhook for every org at start, delivering every event here (the
    /// same as `POST /_sim/orgs/{org}/hooks` afterwards).
    #[arg(long, env = "SIM_WEBHOOK_URL")]
    pub webhook_url: Option<Url>,
    /// The secret deliveries to `--webhook-url` are signed with (none: unsigned deliveries).
    #[arg(
        long,
        env = "SIM_WEBHOOK_SECRET",
        hide_env_values = true,
        requires = "webhook_url"
    )]
    pub webhook_secret: Option<String>,
    /// The GitHub App's ID: with `--app-public-key`, the App endpoints
    /// (`GET /orgs/{org}/installation`, `POST /app/installations/{id}/access_tokens`) accept
    /// its JWTs, one installation per org.
    #[arg(long, env = "SIM_APP_ID", requires = "app_public_key")]
    pub app_id: Option<String>,
    /// The App's RSA public key (PEM) its JWTs are verified with.
    #[arg(long, env = "SIM_APP_PUBLIC_KEY", requires = "app_id")]
    pub app_public_key: Option<PathBuf>,
    /// How long an installation token lives (GitHub: an hour); short in tests to see renewals.
    #[arg(long, default_value_t = DEFAULT_INSTALLATION_TOKEN_TTL_SECS)]
    pub installation_token_ttl_secs: u64,
}

impl Default for SimConfig {
    /// The same values as the command line's defaults (without reading `SIM_PORT`).
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            base_url: None,
            body_base_url: Url::parse(DEFAULT_BODY_BASE_URL).expect("the default URL is valid"),
            dataset: None,
            generate_repos: DEFAULT_GENERATED_REPOS,
            generate_members: DEFAULT_GENERATED_MEMBERS,
            org: DEFAULT_ORG.to_owned(),
            seed: DEFAULT_SEED,
            rate_limit: DEFAULT_RATE_LIMIT,
            rate_window_secs: DEFAULT_RATE_WINDOW_SECS,
            workers: DEFAULT_WORKERS,
            webhook_url: None,
            webhook_secret: None,
            app_id: None,
            app_public_key: None,
            installation_token_ttl_secs: DEFAULT_INSTALLATION_TOKEN_TTL_SECS,
        }
    }
}

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("--workers must be at least 1")]
    NoWorkers,
    #[error("--rate-window-secs must be at least 1")]
    EmptyRateWindow,
    #[error("--org must list non-empty logins without '/', each once, got {0:?}")]
    InvalidOrg(String),
}

impl SimConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::NoWorkers);
        }
        if self.rate_window_secs == 0 {
            return Err(ConfigError::EmptyRateWindow);
        }
        if self.dataset.is_none() {
            let orgs = self.orgs();
            let valid = !orgs.is_empty()
                && orgs.iter().enumerate().all(|(i, org)| {
                    crate::dataset::is_path_segment(org)
                        && !orgs[..i].iter().any(|o| o.eq_ignore_ascii_case(org))
                });
            if !valid {
                return Err(ConfigError::InvalidOrg(self.org.clone()));
            }
        }
        Ok(())
    }

    /// The logins of the orgs to generate (`--org`, split at commas).
    pub(crate) fn orgs(&self) -> Vec<String> {
        self.org
            .split(',')
            .map(|org| org.trim().to_owned())
            .collect()
    }
}

/// A URL without its trailing slash, ready to have paths appended.
pub(crate) fn url_prefix(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}
