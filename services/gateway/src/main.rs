//! The gateway binary: serves cached keys and views, passes other GitHub GETs through.

use std::process::ExitCode;

use gateway::{Application, Settings};
use hubcache_shared::{SettingsSource, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let _telemetry = hubcache_shared::telemetry::init("gateway")?;
    let settings = Settings::load(&SettingsSource::from_process()?)?;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "gateway listening");
    // Non-zero when a task failed or the drain timed out (the cause is already logged).
    Ok(shutdown::exit_code(application.run_until_stopped().await))
}
