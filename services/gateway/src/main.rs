//! The gateway binary: serves cached keys and views, passes other GitHub GETs through.

use gateway::{Application, Settings};
use hubcache_shared::SettingsSource;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = hubcache_shared::telemetry::init("gateway")?;
    let settings = Settings::load(&SettingsSource::from_process()?)?;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "gateway listening");
    application.run_until_stopped().await
}
