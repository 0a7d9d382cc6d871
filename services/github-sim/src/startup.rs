//! Building and running the HTTP server.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use url::Url;

use crate::app_auth::AppAuth;
use crate::catalog::{Catalog, NewRepoDefaults};
use crate::config::{SimConfig, url_prefix};
use crate::dataset::Dataset;
use crate::generator::{GeneratorOptions, generate};
use crate::rate_limit::RateLimiter;
use crate::routes;
use crate::state::SimState;
use crate::webhooks::{HookSpec, Webhooks};

/// How long in-flight requests get to finish after SIGTERM/SIGINT.
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// A bound, ready-to-run simulator. Building binds the port (0 picks a free one), so tests know
/// the address before the server runs.
pub struct Application {
    port: u16,
    base_url: String,
    server: Server,
}

impl Application {
    /// Loads or generates the data, binds the listener and prepares the server.
    pub async fn build(config: SimConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let body_base_url = url_prefix(&config.body_base_url);
        let dataset = match &config.dataset {
            Some(path) => Dataset::from_file(path)?,
            None => generate(
                &GeneratorOptions {
                    repos: config.generate_repos,
                    members: config.generate_members,
                    seed: config.seed,
                    api_base: body_base_url.clone(),
                },
                &config.orgs(),
            ),
        };
        let catalog = Catalog::new(
            dataset,
            NewRepoDefaults {
                api_base: body_base_url,
                seed: config.seed,
            },
        );

        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .with_context(|| format!("cannot bind {}:{}", config.host, config.port))?;
        let port = listener.local_addr()?.port();
        let base_url = match &config.base_url {
            Some(url) => url.clone(),
            None => default_base_url(&config.host, port)?,
        };
        tracing::info!(repos = catalog.repo_count(), "github-sim data ready");

        let webhooks = Webhooks::start(url_prefix(&base_url))?;
        if let Some(url) = &config.webhook_url {
            let contexts = catalog.org_contexts();
            if contexts.is_empty() {
                anyhow::bail!("--webhook-url needs an org in the data");
            }
            for context in contexts {
                webhooks
                    .create(
                        &context,
                        HookSpec::for_url(url.clone(), config.webhook_secret.clone()),
                    )
                    .context("cannot register --webhook-url")?;
                tracing::info!(org = %context.login, url = %url, "webhook registered");
            }
        }
        let app = match (&config.app_id, &config.app_public_key) {
            (Some(app_id), Some(path)) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read --app-public-key {}", path.display()))?;
                let orgs = catalog.org_contexts().into_iter().map(|c| c.login);
                Some(AppAuth::new(
                    app_id.clone(),
                    &pem,
                    Duration::from_secs(config.installation_token_ttl_secs.max(1)),
                    orgs,
                )?)
            }
            (None, None) => None,
            _ => anyhow::bail!("--app-id and --app-public-key go together"),
        };
        let state = web::Data::new(SimState::new(
            catalog,
            RateLimiter::new(
                config.rate_limit,
                Duration::from_secs(config.rate_window_secs),
            ),
            webhooks,
            app,
            &base_url,
        ));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(routes::configure)
        })
        .workers(config.workers)
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            base_url: url_prefix(&base_url),
            server,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The advertised base URL (no trailing slash): what `Link` headers start with.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn default_base_url(host: &str, port: u16) -> anyhow::Result<Url> {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Url::parse(&format!("http://{host}:{port}"))
        .with_context(|| format!("cannot make a base URL of host {host:?}; pass --base-url"))
}
