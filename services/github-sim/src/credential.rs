//! Which credential a request carried, as a non-secret label: the control API records requests
//! by it and keeps one rate-limit budget per credential, as GitHub does.

use sha2::{Digest, Sha256};

/// The label of requests without an `Authorization` header.
pub const ANONYMOUS: &str = "anonymous";

/// The label of a request's credential: [`ANONYMOUS`] without one, else the first 8 hex digits
/// of the SHA-256 of the whole `Authorization` value (`token x`, `Bearer y`). Public so tests can
/// name the credential they expect without the simulator ever keeping or printing the secret.
pub fn credential_label(authorization: Option<&[u8]>) -> String {
    match authorization {
        None => ANONYMOUS.to_owned(),
        Some(value) => hex::encode(&Sha256::digest(value)[..4]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_stable_and_never_the_secret() {
        assert_eq!(credential_label(None), "anonymous");
        let label = credential_label(Some(b"token secret"));
        assert_eq!(label.len(), 8);
        assert!(!label.contains("secret"));
        assert_eq!(label, credential_label(Some(b"token secret")));
        assert_ne!(label, credential_label(Some(b"token other")));
    }
}
