//! Request counters for `GET /_sim/stats`: what reached the GitHub routes, so tests and
//! benchmarks can assert how many upstream calls hubcache made (control routes are not counted).

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use serde::Serialize;

/// The counters. One lock, held for a few increments per request.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    total: u64,
    by_path: HashMap<String, u64>,
    by_method: HashMap<String, u64>,
    not_modified: u64,
    rate_limit_used: u64,
    rate_limited: u64,
    faults_served: u64,
    authorization_seen: u64,
    by_credential: HashMap<String, u64>,
    by_path_credential: HashMap<String, HashMap<String, u64>>,
}

/// The counters as `GET /_sim/stats` returns them.
#[derive(Debug, Serialize)]
pub(crate) struct StatsSnapshot {
    total: u64,
    /// Requests per path (without query).
    by_path: BTreeMap<String, u64>,
    by_method: BTreeMap<String, u64>,
    /// 304 answers to conditional requests.
    not_modified: u64,
    /// Rate limit units spent.
    rate_limit_used: u64,
    /// 403s because the primary budget was spent.
    rate_limited: u64,
    /// Requests that hit an injected fault.
    faults_served: u64,
    /// Requests carrying an `Authorization` header (its value is never kept).
    authorization_seen: u64,
    /// The same count as `authorization_seen`, under the name the first control API used.
    authorized: u64,
    /// Requests per credential label (`anonymous`, or the first 8 hex digits of the SHA-256 of
    /// the `Authorization` value; see [`crate::credential_label`]).
    by_credential: BTreeMap<String, u64>,
    /// Requests per path, then per credential label: which request carried which credential.
    by_path_credential: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Stats {
    /// Counts a request to a GitHub route, with its credential's label (never the secret).
    pub(crate) fn request(&self, path: &str, method: &str, credential: &str, authorized: bool) {
        let mut counters = self.counters.lock();
        counters.total += 1;
        bump(&mut counters.by_path, path);
        bump(&mut counters.by_method, method);
        if authorized {
            counters.authorization_seen += 1;
        }
        bump(&mut counters.by_credential, credential);
        match counters.by_path_credential.get_mut(path) {
            Some(by_credential) => bump(by_credential, credential),
            None => {
                let by_credential = HashMap::from([(credential.to_owned(), 1)]);
                counters
                    .by_path_credential
                    .insert(path.to_owned(), by_credential);
            }
        }
    }

    pub(crate) fn not_modified(&self) {
        self.counters.lock().not_modified += 1;
    }

    pub(crate) fn rate_limit_spent(&self) {
        self.counters.lock().rate_limit_used += 1;
    }

    pub(crate) fn rate_limited(&self) {
        self.counters.lock().rate_limited += 1;
    }

    pub(crate) fn fault_served(&self) {
        self.counters.lock().faults_served += 1;
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let counters = self.counters.lock();
        let sorted = |map: &HashMap<String, u64>| {
            map.iter()
                .map(|(key, count)| (key.clone(), *count))
                .collect()
        };
        StatsSnapshot {
            total: counters.total,
            by_path: sorted(&counters.by_path),
            by_method: sorted(&counters.by_method),
            not_modified: counters.not_modified,
            rate_limit_used: counters.rate_limit_used,
            rate_limited: counters.rate_limited,
            faults_served: counters.faults_served,
            authorization_seen: counters.authorization_seen,
            authorized: counters.authorization_seen,
            by_credential: sorted(&counters.by_credential),
            by_path_credential: counters
                .by_path_credential
                .iter()
                .map(|(path, by_credential)| (path.clone(), sorted(by_credential)))
                .collect(),
        }
    }

    pub(crate) fn reset(&self) {
        *self.counters.lock() = Counters::default();
    }
}

fn bump(map: &mut HashMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}
