//! The views binary: loads settings, starts logging and keeps the views current until
//! SIGINT/SIGTERM.

use hubcache_shared::SettingsSource;
use views::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _guard = hubcache_shared::telemetry::init("views")?;
    let settings = Settings::load(&SettingsSource::from_process()?)?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await
}
