//! The fetcher binary: polls GitHub and keeps the cached endpoints' snapshots in Redis.

use fetcher::{Application, Settings};
use std::process::ExitCode;

use hubcache_shared::{SettingsSource, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let _guard = hubcache_shared::telemetry::init("fetcher")?;
    let settings = Settings::load(&SettingsSource::from_process()?)?;
    let app = Application::build(settings).await?;
    // Non-zero when a task failed or the drain timed out (the cause is already logged).
    Ok(shutdown::exit_code(app.run_until_stopped().await))
}
