//! The github-sim binary: parses flags, starts logging and serves until SIGINT/SIGTERM.

use clap::Parser;
use github_sim::{Application, SimConfig};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = SimConfig::parse();
    let application = Application::build(config).await?;
    tracing::info!(base_url = application.base_url(), "github-sim listening");
    application.run_until_stopped().await?;
    Ok(())
}
