//! [`RedisTarget`]: where Redis is, as the settings describe it; never shows a password.

use std::fmt;

/// Where Redis is: what the settings (`REDIS_URL`, `REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`)
/// describe, validated (see `CommonSettings::redis_target`).
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One Redis at `REDIS_URL`.
    Single {
        /// `redis://[user:password@]host[:port][/db]`.
        url: String,
    },
    /// A Redis Cluster reached through any of its nodes; `url` supplies credentials only.
    Cluster {
        /// Seed nodes' `host:port` addresses (`REDIS_CLUSTER_NODES`); the rest is discovered.
        nodes: Vec<(String, u16)>,
        /// `REDIS_URL`: its user and password are used on every node; its host is ignored.
        url: String,
    },
    /// A master found through Redis Sentinel; `url` supplies credentials and database only.
    Sentinel {
        /// The sentinels' `host:port` addresses (`REDIS_SENTINELS`).
        sentinels: Vec<(String, u16)>,
        /// The monitored master's name (`REDIS_SENTINEL_MASTER`).
        master: String,
        /// `REDIS_URL`: its user, password and db are used on the master; its host is ignored.
        url: String,
    },
}

impl fmt::Debug for RedisTarget {
    // The URL may carry a password: show only where Redis is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single { url } => f
                .debug_struct("Single")
                .field("url", &redact_url(url))
                .finish(),
            Self::Cluster { nodes, .. } => f.debug_struct("Cluster").field("nodes", nodes).finish(),
            Self::Sentinel {
                sentinels, master, ..
            } => f
                .debug_struct("Sentinel")
                .field("sentinels", sentinels)
                .field("master", master)
                .finish(),
        }
    }
}

/// `url` without its password (for logs and error messages).
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let target = RedisTarget::Single {
            url: "redis://user:hunter2@127.0.0.1:6379/1".to_owned(),
        };
        let debug = format!("{target:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("127.0.0.1"), "{debug}");
    }
}
