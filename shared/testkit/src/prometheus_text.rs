//! Checking a `/metrics` scrape: validity through a real Prometheus parser (`promtool`), and
//! reading one sample's value for assertions.

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// Parses and lints `text` with `promtool check metrics` (Debian package `prometheus`;
/// scripts/test.sh installs it). `Ok(false)` when promtool is not installed, so a developer
/// machine without it still runs the rest of the test; any parse error or lint problem is an
/// `Err` carrying promtool's report.
pub fn promtool_check(text: &str) -> anyhow::Result<bool> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("promtool not installed (apt-get install prometheus): scrape not validated");
            return Ok(false);
        }
        Err(e) => return Err(e).context("spawning promtool"),
    };
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())
        .context("writing the scrape to promtool")?;
    let output = child.wait_with_output().context("waiting for promtool")?;
    if !output.status.success() {
        bail!(
            "promtool check metrics failed ({}):\n{}{}\n--- scrape ---\n{text}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(true)
}

/// The value of the first sample of metric `name` whose labels include all of `labels`
/// (`None` when there is none). `name` is the full sample name, e.g. `x_bucket` or `x_count`
/// for a histogram.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all_match = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all_match.then(|| value.parse().ok()).flatten()
        })
}
