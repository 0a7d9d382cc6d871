//! The served data: the dataset indexed by the addresses GitHub serves it at, and a cache of the
//! serialized bodies (with their ETags) so that hot pages are served as ready-made bytes.
//!
//! Every mutation clears the body cache. ETags are hashes of the bodies, so the pages a mutation
//! did not touch come back with the same ETags, and only the affected ones change.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::Mutex;
use percent_encoding::percent_decode_str;
use serde_json::Value;

mod patch;
mod render;

use patch::{adjust_public_repos, merge};
use render::{ListedRepository, json_array, single};

use crate::conditional::weak_etag;
use crate::dataset::{
    Dataset, JsonObject, OrgRecord, UserOrg, UserRecord, repo_name, string_field,
};
use crate::generator;
use crate::pagination::PageRequest;

/// Fields of an org's simple object (as in `/users/{user}/orgs`).
const ORG_SIMPLE_FIELDS: [&str; 12] = [
    "login",
    "id",
    "node_id",
    "url",
    "repos_url",
    "events_url",
    "hooks_url",
    "issues_url",
    "members_url",
    "public_members_url",
    "avatar_url",
    "description",
];

/// When the rendered bodies exceed this many bytes the cache starts over (a client walking every
/// `per_page` value would otherwise keep many copies of the whole org).
const RENDER_CACHE_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// One day, for placing added repositories after the newest one.
const DAY_SECS: i64 = 86_400;

/// A body ready to serve, with its validators.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) body: Bytes,
    pub(crate) etag: String,
    pub(crate) last_modified: Option<SystemTime>,
}

/// What a GitHub path resolved to.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) rendered: Arc<Rendered>,
    /// Present for lists: what the `Link` header needs.
    pub(crate) listing: Option<Listing>,
}

/// Where a list page sits in its list.
#[derive(Debug)]
pub(crate) struct Listing {
    /// The path the `Link` URLs use (GitHub links org lists by numeric id).
    pub(crate) link_path: String,
    pub(crate) page: u64,
    pub(crate) last_page: u64,
}

/// Why a control-API mutation was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    #[error("organization {0:?} not found")]
    OrgNotFound(String),
    #[error("repository {0:?} not found")]
    RepoNotFound(String),
    #[error("a repository needs \"name\": a non-empty string without '/'")]
    InvalidName,
    #[error("name already exists on this account: {0:?}")]
    NameTaken(String),
}

/// An org as its webhook payloads describe it.
#[derive(Debug, Clone)]
pub(crate) struct EventContext {
    /// The org's login as the dataset spells it.
    pub(crate) login: String,
    /// The org's numeric id.
    pub(crate) id: u64,
    /// The org's simple object.
    pub(crate) organization: JsonObject,
    /// A simple-user object for the acting user.
    pub(crate) sender: JsonObject,
}

/// How repositories added through the control API are generated.
#[derive(Debug, Clone)]
pub(crate) struct NewRepoDefaults {
    /// Base of the API URLs in their bodies.
    pub(crate) api_base: String,
    /// The generator seed.
    pub(crate) seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum UserRef {
    /// An entry of the dataset's `users`.
    Listed(usize),
    /// An org member without a `users` entry.
    Member { org: usize, member: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Resource {
    Root,
    Org(usize),
    OrgRepos(usize),
    OrgMembers(usize),
    Repo { org: usize, repo: usize },
    User(UserRef),
    UserOrgs(UserRef),
    Path(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RenderKey {
    resource: Resource,
    page: Option<PageRequest>,
}

#[derive(Debug, Default)]
struct RenderCache {
    entries: HashMap<RenderKey, Arc<Rendered>>,
    bytes: usize,
}

/// The dataset, its indexes and the body cache.
#[derive(Debug)]
pub(crate) struct Catalog {
    root: Value,
    orgs: Vec<OrgRecord>,
    users: Vec<UserRecord>,
    paths: Vec<(String, Value)>,
    org_by_login: HashMap<String, usize>,
    org_by_id: HashMap<u64, usize>,
    /// `owner/name`, lowercased.
    repo_by_name: HashMap<String, (usize, usize)>,
    user_by_login: HashMap<String, UserRef>,
    user_by_id: HashMap<u64, UserRef>,
    path_index: HashMap<String, usize>,
    new_repos: NewRepoDefaults,
    rendered: Mutex<RenderCache>,
}

impl Catalog {
    /// Indexes a validated dataset.
    pub(crate) fn new(dataset: Dataset, new_repos: NewRepoDefaults) -> Self {
        let root = dataset
            .root
            .unwrap_or_else(|| generator::root_document(&new_repos.api_base));
        let mut catalog = Self {
            root,
            orgs: dataset.orgs,
            users: dataset.users,
            paths: dataset.paths.into_iter().collect(),
            org_by_login: HashMap::new(),
            org_by_id: HashMap::new(),
            repo_by_name: HashMap::new(),
            user_by_login: HashMap::new(),
            user_by_id: HashMap::new(),
            path_index: HashMap::new(),
            new_repos,
            rendered: Mutex::default(),
        };
        catalog.reindex();
        catalog
    }

    /// How many repositories the orgs hold, for the startup log.
    pub(crate) fn repo_count(&self) -> usize {
        self.orgs.iter().map(|org| org.repos.len()).sum()
    }

    /// The body for a GitHub `path` (no query), or `None` when GitHub would answer 404.
    pub(crate) fn resolve(&self, path: &str, page: PageRequest) -> Option<Served> {
        let resource = self.route(path)?;
        let Some(len) = self.list_len(resource) else {
            let rendered = self.rendered(RenderKey {
                resource,
                page: None,
            });
            return Some(Served {
                rendered,
                listing: None,
            });
        };
        let last_page = page.last_page(len);
        // Every page past the end is the same `[]`: cache it once.
        let cached_page = PageRequest {
            page: page.page.min(last_page + 1),
            ..page
        };
        let rendered = self.rendered(RenderKey {
            resource,
            page: Some(cached_page),
        });
        Some(Served {
            rendered,
            listing: Some(Listing {
                link_path: self.link_path(resource),
                page: page.page,
                last_page,
            }),
        })
    }

    /// Merges `patch` into a repository (objects recursively, other values replaced).
    pub(crate) fn patch_repo(
        &mut self,
        owner: &str,
        name: &str,
        patch: JsonObject,
    ) -> Result<JsonObject, CatalogError> {
        let (org, repo) = self
            .find_repo(owner, name)
            .ok_or_else(|| CatalogError::RepoNotFound(format!("{owner}/{name}")))?;
        let mut updated = self.orgs[org].repos[repo].clone();
        merge(&mut updated, patch);
        let new_name = repo_name(&updated).ok_or(CatalogError::InvalidName)?;
        if let Some(&(_, clash)) = self.repo_by_name.get(&repo_key(
            string_field(&self.orgs[org].org, "login").unwrap_or_default(),
            new_name,
        )) && clash != repo
        {
            return Err(CatalogError::NameTaken(new_name.to_owned()));
        }
        self.orgs[org].repos[repo] = updated.clone();
        self.invalidate();
        Ok(updated)
    }

    /// Appends a generated repository named by `fields["name"]`, with `fields` merged over it.
    pub(crate) fn add_repo(
        &mut self,
        org_login: &str,
        fields: JsonObject,
    ) -> Result<JsonObject, CatalogError> {
        let org = *self
            .org_by_login
            .get(&org_login.to_ascii_lowercase())
            .ok_or_else(|| CatalogError::OrgNotFound(org_login.to_owned()))?;
        let name = repo_name(&fields).ok_or(CatalogError::InvalidName)?;
        let login = string_field(&self.orgs[org].org, "login").unwrap_or_default();
        if self.repo_by_name.contains_key(&repo_key(login, name)) {
            return Err(CatalogError::NameTaken(name.to_owned()));
        }
        let id = self
            .orgs
            .iter()
            .flat_map(|org| &org.repos)
            .filter_map(|repo| repo.get("id").and_then(Value::as_u64))
            .max()
            .unwrap_or(0)
            + 1;
        let record = &mut self.orgs[org];
        let created_at = generator::latest_created_at(&record.repos) + DAY_SECS;
        let mut repo = generator::added_repository(
            &self.new_repos.api_base,
            self.new_repos.seed,
            &record.org,
            id,
            name,
            created_at,
        );
        merge(&mut repo, fields);
        record.repos.push(repo.clone());
        adjust_public_repos(&mut record.org, 1);
        self.invalidate();
        Ok(repo)
    }

    /// Removes a repository; returns it as it was (a webhook payload carries it).
    pub(crate) fn delete_repo(
        &mut self,
        owner: &str,
        name: &str,
    ) -> Result<JsonObject, CatalogError> {
        let (org, repo) = self
            .find_repo(owner, name)
            .ok_or_else(|| CatalogError::RepoNotFound(format!("{owner}/{name}")))?;
        let record = &mut self.orgs[org];
        let removed = record.repos.remove(repo);
        adjust_public_repos(&mut record.org, -1);
        self.invalidate();
        Ok(removed)
    }

    /// The event context of every org, in dataset order (`--webhook-url` hooks them all).
    pub(crate) fn org_contexts(&self) -> Vec<EventContext> {
        self.orgs
            .iter()
            .filter_map(|record| string_field(&record.org, "login"))
            .filter_map(|login| self.event_context(login))
            .collect()
    }

    /// A repository as `GET /repos/{owner}/{name}` serves it.
    pub(crate) fn repo(&self, owner: &str, name: &str) -> Option<&JsonObject> {
        let (org, repo) = self.find_repo(owner, name)?;
        Some(&self.orgs[org].repos[repo])
    }

    /// What an org's webhook payloads carry about it: its login and id, its simple object (the
    /// payloads' `organization`) and the acting user (`sender`: the first member, or the org
    /// itself when it has none).
    pub(crate) fn event_context(&self, org_login: &str) -> Option<EventContext> {
        let org = *self.org_by_login.get(&org_login.to_ascii_lowercase())?;
        let record = &self.orgs[org];
        let sender =
            record.members.first().cloned().unwrap_or_else(|| {
                generator::owner_from_org(&self.new_repos.api_base, &record.org)
            });
        Some(EventContext {
            login: string_field(&record.org, "login")
                .unwrap_or_default()
                .to_owned(),
            id: record.org.get("id").and_then(Value::as_u64).unwrap_or(0),
            organization: self.org_simple(org),
            sender,
        })
    }

    /// The current state in the dataset format (mutations included).
    pub(crate) fn to_dataset(&self) -> Dataset {
        Dataset {
            root: Some(self.root.clone()),
            orgs: self.orgs.clone(),
            users: self.users.clone(),
            paths: self.paths.iter().cloned().collect(),
        }
    }

    fn invalidate(&mut self) {
        self.reindex();
        *self.rendered.get_mut() = RenderCache::default();
    }

    fn reindex(&mut self) {
        self.org_by_login.clear();
        self.org_by_id.clear();
        self.repo_by_name.clear();
        self.user_by_login.clear();
        self.user_by_id.clear();
        self.path_index.clear();
        for (o, record) in self.orgs.iter().enumerate() {
            let login = string_field(&record.org, "login").unwrap_or_default();
            self.org_by_login.insert(login.to_ascii_lowercase(), o);
            if let Some(id) = record.org.get("id").and_then(Value::as_u64) {
                self.org_by_id.insert(id, o);
            }
            for (r, repo) in record.repos.iter().enumerate() {
                if let Some(name) = repo_name(repo) {
                    self.repo_by_name.insert(repo_key(login, name), (o, r));
                }
            }
            for (m, member) in record.members.iter().enumerate() {
                let user = UserRef::Member { org: o, member: m };
                index_user(&mut self.user_by_login, &mut self.user_by_id, member, user);
            }
        }
        // Listed users win over member objects of the same login.
        for (u, record) in self.users.iter().enumerate() {
            self.user_by_login.remove(
                &string_field(&record.user, "login")
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
            );
            index_user(
                &mut self.user_by_login,
                &mut self.user_by_id,
                &record.user,
                UserRef::Listed(u),
            );
        }
        for (i, (path, _)) in self.paths.iter().enumerate() {
            self.path_index.insert(path.clone(), i);
        }
    }

    fn route(&self, path: &str) -> Option<Resource> {
        if let Some(&index) = self.path_index.get(path) {
            return Some(Resource::Path(index));
        }
        if path == "/" {
            return Some(Resource::Root);
        }
        let segments: Vec<Cow<'_, str>> = path
            .strip_prefix('/')?
            .split('/')
            .map(|segment| percent_decode_str(segment).decode_utf8_lossy())
            .collect();
        let segments: Vec<&str> = segments.iter().map(AsRef::as_ref).collect();
        let org = |login: &str| self.org_by_login.get(&login.to_ascii_lowercase()).copied();
        let org_by_id = |id: &str| self.org_by_id.get(&id.parse().ok()?).copied();
        let user = |login: &str| self.user_by_login.get(&login.to_ascii_lowercase()).copied();
        Some(match segments.as_slice() {
            ["orgs", login] => Resource::Org(org(login)?),
            ["orgs", login, "repos"] => Resource::OrgRepos(org(login)?),
            ["orgs", login, "members"] => Resource::OrgMembers(org(login)?),
            ["organizations", id, "repos"] => Resource::OrgRepos(org_by_id(id)?),
            ["organizations", id, "members"] => Resource::OrgMembers(org_by_id(id)?),
            ["repos", owner, name] => {
                let (org, repo) = self.find_repo(owner, name)?;
                Resource::Repo { org, repo }
            }
            ["users", login] => Resource::User(user(login)?),
            ["users", login, "orgs"] => Resource::UserOrgs(user(login)?),
            ["user", id, "orgs"] => Resource::UserOrgs(*self.user_by_id.get(&id.parse().ok()?)?),
            _ => return None,
        })
    }

    fn find_repo(&self, owner: &str, name: &str) -> Option<(usize, usize)> {
        self.repo_by_name.get(&repo_key(owner, name)).copied()
    }

    fn list_len(&self, resource: Resource) -> Option<usize> {
        match resource {
            Resource::OrgRepos(org) => Some(self.orgs[org].repos.len()),
            Resource::OrgMembers(org) => Some(self.orgs[org].members.len()),
            Resource::UserOrgs(user) => Some(self.user_orgs(user).len()),
            Resource::Path(index) => self.paths[index].1.as_array().map(Vec::len),
            Resource::Root | Resource::Org(_) | Resource::Repo { .. } | Resource::User(_) => None,
        }
    }

    fn link_path(&self, resource: Resource) -> String {
        let org_id = |org: usize| self.orgs[org].org.get("id").and_then(Value::as_u64);
        match resource {
            Resource::OrgRepos(org) => format!("/organizations/{}/repos", org_id(org).unwrap_or(0)),
            Resource::OrgMembers(org) => {
                format!("/organizations/{}/members", org_id(org).unwrap_or(0))
            }
            Resource::UserOrgs(user) => {
                let object = self.user_object(user);
                match object.get("id").and_then(Value::as_u64) {
                    Some(id) => format!("/user/{id}/orgs"),
                    None => format!(
                        "/users/{}/orgs",
                        string_field(object, "login").unwrap_or_default()
                    ),
                }
            }
            Resource::Path(index) => self.paths[index].0.clone(),
            Resource::Root | Resource::Org(_) | Resource::Repo { .. } | Resource::User(_) => {
                String::new()
            }
        }
    }

    fn rendered(&self, key: RenderKey) -> Arc<Rendered> {
        if let Some(hit) = self.rendered.lock().entries.get(&key) {
            return Arc::clone(hit);
        }
        // Rendered outside the cache lock: the catalog's read lock already keeps it consistent.
        let fresh = Arc::new(self.render(key));
        let mut cache = self.rendered.lock();
        if cache.bytes + fresh.body.len() > RENDER_CACHE_BUDGET_BYTES {
            *cache = RenderCache::default();
        }
        if let Some(raced) = cache.entries.get(&key) {
            return Arc::clone(raced);
        }
        cache.bytes += fresh.body.len();
        cache.entries.insert(key, Arc::clone(&fresh));
        fresh
    }

    fn render(&self, key: RenderKey) -> Rendered {
        let window = |len: usize| key.page.map_or(0..len, |page| page.window(len));
        let (body, last_modified) = match key.resource {
            Resource::Root => single(&self.root),
            Resource::Org(org) => single(&self.orgs[org].org),
            Resource::Repo { org, repo } => single(&self.orgs[org].repos[repo]),
            Resource::User(user) => single(self.user_object(user)),
            Resource::OrgRepos(org) => {
                let repos = &self.orgs[org].repos;
                (
                    json_array(repos[window(repos.len())].iter().map(ListedRepository)),
                    None,
                )
            }
            Resource::OrgMembers(org) => {
                let members = &self.orgs[org].members;
                (json_array(members[window(members.len())].iter()), None)
            }
            Resource::UserOrgs(user) => {
                let orgs = self.user_orgs(user);
                (json_array(orgs[window(orgs.len())].iter()), None)
            }
            Resource::Path(index) => match &self.paths[index].1 {
                Value::Array(items) => (json_array(items[window(items.len())].iter()), None),
                other => single(other),
            },
        };
        Rendered {
            etag: weak_etag(&body),
            body: Bytes::from(body),
            last_modified,
        }
    }

    fn user_object(&self, user: UserRef) -> &JsonObject {
        match user {
            UserRef::Listed(index) => &self.users[index].user,
            UserRef::Member { org, member } => &self.orgs[org].members[member],
        }
    }

    /// A user's orgs: the listed ones, or else the orgs that have the user as a member.
    fn user_orgs(&self, user: UserRef) -> Vec<Cow<'_, JsonObject>> {
        if let UserRef::Listed(index) = user
            && let Some(orgs) = &self.users[index].orgs
        {
            return orgs
                .iter()
                .filter_map(|org| match org {
                    UserOrg::Object(object) => Some(Cow::Borrowed(object)),
                    UserOrg::Login(login) => self
                        .org_by_login
                        .get(&login.to_ascii_lowercase())
                        .map(|&o| Cow::Owned(self.org_simple(o))),
                })
                .collect();
        }
        let login = string_field(self.user_object(user), "login").unwrap_or_default();
        (0..self.orgs.len())
            .filter(|&o| {
                self.orgs[o].members.iter().any(|member| {
                    string_field(member, "login").is_some_and(|m| m.eq_ignore_ascii_case(login))
                })
            })
            .map(|o| Cow::Owned(self.org_simple(o)))
            .collect()
    }

    fn org_simple(&self, org: usize) -> JsonObject {
        let object = &self.orgs[org].org;
        ORG_SIMPLE_FIELDS
            .iter()
            .filter_map(|&field| Some((field.to_owned(), object.get(field)?.clone())))
            .collect()
    }
}

fn index_user(
    by_login: &mut HashMap<String, UserRef>,
    by_id: &mut HashMap<u64, UserRef>,
    object: &JsonObject,
    user: UserRef,
) {
    if let Some(login) = string_field(object, "login") {
        by_login.entry(login.to_ascii_lowercase()).or_insert(user);
    }
    if let Some(id) = object.get("id").and_then(Value::as_u64) {
        by_id.insert(id, user);
    }
}

fn repo_key(owner: &str, name: &str) -> String {
    format!(
        "{}/{}",
        owner.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn catalog() -> Catalog {
        let dataset: Dataset = serde_json::from_value(json!({
            "orgs": [{
                "org": {"login": "Acme", "id": 7, "public_repos": 2},
                "repos": [
                    {"name": "one", "id": 1, "network_count": 3, "owner": {"login": "Acme"}},
                    {"name": "two", "id": 2}
                ],
                "members": [{"login": "ann", "id": 11}]
            }],
            "users": [{"user": {"login": "bob", "id": 12}, "orgs": ["acme"]}],
            "paths": {"/meta": [1, 2, 3]}
        }))
        .expect("dataset json");
        dataset.validate().expect("valid dataset");
        Catalog::new(
            dataset,
            NewRepoDefaults {
                api_base: "https://api.github.com".into(),
                seed: 1,
            },
        )
    }

    fn body(catalog: &Catalog, path: &str, query: &str) -> Option<Value> {
        let served = catalog.resolve(path, PageRequest::from_query(query))?;
        Some(serde_json::from_slice(&served.rendered.body).expect("served JSON"))
    }

    #[test]
    fn routes_are_case_insensitive_and_lists_drop_full_only_fields() {
        let catalog = catalog();
        assert_eq!(
            body(&catalog, "/orgs/ACME", "").map(|o| o["id"].clone()),
            Some(json!(7))
        );
        let list = body(&catalog, "/organizations/7/repos", "").expect("list");
        assert_eq!(list[0].get("network_count"), None);
        let full = body(&catalog, "/repos/acme/ONE", "").expect("repo");
        assert_eq!(full["network_count"], json!(3));
        assert_eq!(body(&catalog, "/repos/acme/three", ""), None);
        assert_eq!(body(&catalog, "/orgs/acme/teams", ""), None);
    }

    #[test]
    fn users_come_from_the_list_or_from_memberships() {
        let catalog = catalog();
        assert_eq!(
            body(&catalog, "/users/ANN", "").map(|u| u["id"].clone()),
            Some(json!(11))
        );
        let orgs = body(&catalog, "/user/11/orgs", "").expect("member orgs");
        assert_eq!(orgs[0]["login"], json!("Acme"));
        let orgs = body(&catalog, "/users/bob/orgs", "").expect("listed orgs");
        assert_eq!(orgs, json!([{"login": "Acme", "id": 7}]));
    }

    #[test]
    fn extra_path_arrays_are_paginated() {
        let catalog = catalog();
        assert_eq!(
            body(&catalog, "/meta", "per_page=2&page=2"),
            Some(json!([3]))
        );
    }

    #[test]
    fn mutations_keep_names_unique_and_counts_right() {
        let mut catalog = catalog();
        let renamed = catalog.patch_repo(
            "acme",
            "one",
            json!({"name": "TWO"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert!(matches!(renamed, Err(CatalogError::NameTaken(_))));
        let added = catalog
            .add_repo(
                "acme",
                json!({"name": "three", "stargazers_count": 5})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
            .expect("added");
        assert_eq!(added["id"], json!(3));
        assert_eq!(added["stargazers_count"], json!(5));
        assert_eq!(
            body(&catalog, "/orgs/acme", "").map(|o| o["public_repos"].clone()),
            Some(json!(3))
        );
        catalog.delete_repo("ACME", "one").expect("deleted");
        assert_eq!(body(&catalog, "/repos/acme/one", ""), None);
        let names: Vec<Value> = body(&catalog, "/orgs/acme/repos", "")
            .and_then(|list| list.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|repo| repo["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("two"), json!("three")]);
    }
}
