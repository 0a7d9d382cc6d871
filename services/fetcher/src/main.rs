//! The fetcher binary: polls GitHub and keeps the cached endpoints' snapshots in Redis.

use fetcher::{Application, Settings};
use hubcache_shared::SettingsSource;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _guard = hubcache_shared::telemetry::init("fetcher")?;
    let settings = Settings::load(&SettingsSource::from_process()?)?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await
}
