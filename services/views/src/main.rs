//! The views binary: loads settings, starts logging and keeps the views current until
//! SIGINT/SIGTERM.

use std::process::ExitCode;

use hubcache_shared::{SettingsSource, shutdown};
use views::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let _guard = hubcache_shared::telemetry::init("views")?;
    let settings = Settings::load(&SettingsSource::from_process()?)?;
    let app = Application::build(settings).await?;
    // Non-zero when a task failed or the drain timed out (the cause is already logged).
    Ok(shutdown::exit_code(app.run_until_stopped().await))
}
