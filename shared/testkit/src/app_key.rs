//! A throwaway GitHub App key pair for tests: an RSA key generated at test time with
//! `openssl genrsa` (never a committed private key), written into a temporary directory removed
//! on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// A fresh RSA key pair: the private key (PEM) hubcache signs with, the public key (PEM)
/// github-sim verifies with.
#[derive(Debug)]
pub struct AppKeyPair {
    dir: PathBuf,
}

impl AppKeyPair {
    /// Generates a 2048-bit RSA key pair with `openssl`.
    pub fn generate() -> anyhow::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hubcache-app-key-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).context("creating the key directory")?;
        let pair = Self { dir };
        run(Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(pair.private_key_path())
            .arg("2048"))?;
        run(Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(pair.private_key_path())
            .arg("-out")
            .arg(pair.public_key_path()))?;
        Ok(pair)
    }

    /// The private key file (PEM), for `GITHUB_APP_PRIVATE_KEY_FILE`.
    pub fn private_key_path(&self) -> PathBuf {
        self.dir.join("app.private-key.pem")
    }

    /// The private key's PEM text, for `GITHUB_APP_PRIVATE_KEY`.
    pub fn private_key_pem(&self) -> String {
        std::fs::read_to_string(self.private_key_path()).expect("the generated key is readable")
    }

    /// The public key file (PEM), for github-sim's `--app-public-key`.
    pub fn public_key_path(&self) -> PathBuf {
        self.dir.join("app.public-key.pem")
    }

    /// The directory holding both files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for AppKeyPair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .context("running openssl (needed to generate a test App key)")?;
    if !output.status.success() {
        bail!(
            "openssl failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
