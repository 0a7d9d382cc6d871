//! The dataset file: everything the simulator serves, as one JSON document.
//!
//! The format is described in the crate documentation and in the crate's README; the types here
//! are its schema. Objects are kept as [`serde_json::Map`]s and served exactly as written, so a
//! dataset can hold any field GitHub has or will have.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object as served: field names to values.
pub type JsonObject = Map<String, Value>;

/// Everything the simulator serves. Read from `--dataset FILE`, built by the generator otherwise,
/// and returned by `GET /_sim/dataset` (so a generated or mutated state can be saved and replayed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The document served at `/`; the simulator builds GitHub's 33-key root when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Value>,
    /// Organizations with their repositories and members.
    #[serde(default)]
    pub orgs: Vec<OrgRecord>,
    /// Users served at `/users/{login}`; org members without an entry here are served too.
    #[serde(default)]
    pub users: Vec<UserRecord>,
    /// Extra paths (exact path, no query) served verbatim; arrays are paginated like lists.
    #[serde(default)]
    pub paths: BTreeMap<String, Value>,
}

/// One organization: what `/orgs/{org}`, `/orgs/{org}/repos` and `/orgs/{org}/members` serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgRecord {
    /// The organization object; needs `login` (string) and `id` (number, used by
    /// `/organizations/{id}/...` and the `Link` headers).
    pub org: JsonObject,
    /// Full repository objects, in list order; each needs `name`. Served whole at
    /// `/repos/{org}/{name}` and without the full-repository-only fields in list pages.
    #[serde(default)]
    pub repos: Vec<JsonObject>,
    /// Member simple-user objects, in list order; each needs `login`.
    #[serde(default)]
    pub members: Vec<JsonObject>,
}

/// One user: what `/users/{login}` and `/users/{login}/orgs` serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The user object; needs `login`, and a numeric `id` for `Link`s by id.
    pub user: JsonObject,
    /// The user's organizations; when absent, the orgs that list the user among their members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orgs: Option<Vec<UserOrg>>,
}

/// An entry of a user's organization list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserOrg {
    /// The login of an org in the dataset; served as that org's simple object.
    Login(String),
    /// An organization simple object, served verbatim.
    Object(JsonObject),
}

/// Why a dataset could not be used. Names the offending entry so the file can be fixed.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read.
    #[error("cannot read dataset {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not a dataset document.
    #[error("dataset {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Where and why parsing failed.
        source: serde_json::Error,
    },
    /// An entry lacks a field the simulator addresses it by, or has it with the wrong type.
    #[error("{entry} needs {field}")]
    MissingField {
        /// Which entry, e.g. `orgs[0].repos[3]`.
        entry: String,
        /// The field and its expected type, e.g. `"name" (a string without '/')`.
        field: &'static str,
    },
    /// Two entries would be served at the same address.
    #[error("{what} {name:?} appears twice")]
    Duplicate {
        /// The kind of entry.
        what: &'static str,
        /// The clashing name (compared case-insensitively, like GitHub).
        name: String,
    },
    /// A user's org list names an org the dataset does not have.
    #[error("users[{user}].orgs names unknown org {org:?}")]
    UnknownOrg {
        /// Index of the user entry.
        user: usize,
        /// The org login.
        org: String,
    },
    /// A key of `paths` is not an absolute path without query.
    #[error("paths key {0:?} must start with '/' and have no query")]
    InvalidPath(String),
}

impl Dataset {
    /// Reads and validates a dataset file.
    pub fn from_file(path: &Path) -> Result<Self, DatasetError> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| DatasetError::Read {
            path: shown.clone(),
            source,
        })?;
        let dataset: Dataset =
            serde_json::from_slice(&text).map_err(|source| DatasetError::Parse {
                path: shown,
                source,
            })?;
        dataset.validate()?;
        Ok(dataset)
    }

    /// Checks that every entry can be addressed and that no two share an address.
    pub fn validate(&self) -> Result<(), DatasetError> {
        let mut org_logins = HashSet::new();
        let mut org_ids = HashSet::new();
        for (o, record) in self.orgs.iter().enumerate() {
            let entry = || format!("orgs[{o}].org");
            let login = string_field(&record.org, "login")
                .filter(|login| is_path_segment(login))
                .ok_or_else(|| DatasetError::MissingField {
                    entry: entry(),
                    field: "\"login\" (a string without '/')",
                })?;
            let id = record
                .org
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| DatasetError::MissingField {
                    entry: entry(),
                    field: "\"id\" (a non-negative integer)",
                })?;
            if !org_logins.insert(login.to_ascii_lowercase()) {
                return Err(DatasetError::Duplicate {
                    what: "org login",
                    name: login.to_owned(),
                });
            }
            if !org_ids.insert(id) {
                return Err(DatasetError::Duplicate {
                    what: "org id",
                    name: id.to_string(),
                });
            }
            let mut repo_names = HashSet::new();
            for (r, repo) in record.repos.iter().enumerate() {
                let name = repo_name(repo).ok_or_else(|| DatasetError::MissingField {
                    entry: format!("orgs[{o}].repos[{r}]"),
                    field: "\"name\" (a string without '/')",
                })?;
                if !repo_names.insert(name.to_ascii_lowercase()) {
                    return Err(DatasetError::Duplicate {
                        what: "repository",
                        name: format!("{login}/{name}"),
                    });
                }
            }
            for (m, member) in record.members.iter().enumerate() {
                string_field(member, "login").ok_or_else(|| DatasetError::MissingField {
                    entry: format!("orgs[{o}].members[{m}]"),
                    field: "\"login\" (a string)",
                })?;
            }
        }
        let mut user_logins = HashSet::new();
        for (u, record) in self.users.iter().enumerate() {
            let login = string_field(&record.user, "login")
                .filter(|login| is_path_segment(login))
                .ok_or_else(|| DatasetError::MissingField {
                    entry: format!("users[{u}].user"),
                    field: "\"login\" (a string without '/')",
                })?;
            if !user_logins.insert(login.to_ascii_lowercase()) {
                return Err(DatasetError::Duplicate {
                    what: "user login",
                    name: login.to_owned(),
                });
            }
            for org in record.orgs.iter().flatten() {
                if let UserOrg::Login(org) = org
                    && !org_logins.contains(&org.to_ascii_lowercase())
                {
                    return Err(DatasetError::UnknownOrg {
                        user: u,
                        org: org.clone(),
                    });
                }
            }
        }
        if let Some(bad) = self
            .paths
            .keys()
            .find(|path| !path.starts_with('/') || path.contains('?'))
        {
            return Err(DatasetError::InvalidPath(bad.clone()));
        }
        Ok(())
    }
}

/// The `name` of a repository object, when it is usable in a path.
pub(crate) fn repo_name(repo: &JsonObject) -> Option<&str> {
    string_field(repo, "name").filter(|name| is_path_segment(name))
}

/// A string field of an object.
pub(crate) fn string_field<'a>(object: &'a JsonObject, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str)
}

/// Whether `name` can be one segment of a URL path.
pub(crate) fn is_path_segment(name: &str) -> bool {
    !name.is_empty() && !name.contains('/')
}
