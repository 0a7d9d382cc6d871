//! Verifying GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256
//! of the raw body keyed with the webhook secret, compared in constant time before anything in
//! the body is looked at.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Why a delivery's signature was refused (the delivery is then ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    #[error("X-Hub-Signature-256 is missing")]
    Missing,
    #[error("X-Hub-Signature-256 is not \"sha256=\" and 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// The configured webhook secret (`GITHUB_WEBHOOK_SECRET`). Never logged: `Debug` is redacted.
#[derive(Debug, Clone)]
pub(crate) struct WebhookSecret(SecretString);

impl WebhookSecret {
    /// Wraps a secret.
    pub(crate) fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// Checks `header` (the `X-Hub-Signature-256` value, if any) against `body`.
    pub(crate) fn verify(&self, body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let digest = header
            .strip_prefix(b"sha256=")
            .filter(|hex| hex.len() == 64)
            .and_then(|hex| hex::decode(hex).ok())
            .ok_or(SignatureError::Malformed)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes())
            .map_err(|_| SignatureError::Mismatch)?;
        mac.update(body);
        // `verify_slice` compares in constant time (the `subtle` crate underneath).
        mac.verify_slice(&digest)
            .map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::new(SecretString::from("It's a Secret to Everybody"))
    }

    /// GitHub's documented example ("Validating webhook deliveries").
    const EXAMPLE: &[u8] =
        b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_example_verifies() {
        assert_eq!(secret().verify(b"Hello, World!", Some(EXAMPLE)), Ok(()));
    }

    #[test]
    fn anything_else_is_refused() {
        let s = secret();
        assert_eq!(
            s.verify(b"Hello, World!", None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            s.verify(b"Hello, World?", Some(EXAMPLE)),
            Err(SignatureError::Mismatch)
        );
        let upper = String::from_utf8_lossy(EXAMPLE)
            .to_uppercase()
            .replace("SHA256=", "sha256=");
        assert_eq!(s.verify(b"Hello, World!", Some(upper.as_bytes())), Ok(()));
        for bad in [
            &b"sha1=757107ea0eb2509fc211221cce984b8a37570b6d"[..],
            b"sha256=757107ea",
            b"sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            b"",
        ] {
            assert_eq!(
                s.verify(b"Hello, World!", Some(bad)),
                Err(SignatureError::Malformed)
            );
        }
        let other = WebhookSecret::new(SecretString::from("another"));
        assert_eq!(
            other.verify(b"Hello, World!", Some(EXAMPLE)),
            Err(SignatureError::Mismatch)
        );
        assert!(!format!("{s:?}").contains("Secret to Everybody"));
    }
}
