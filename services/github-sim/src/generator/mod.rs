//! The deterministic dataset generator: an org with N repositories and M members whose objects
//! carry GitHub's field sets, values varied like a real org's (and with ties, so consumers'
//! tie-breaking gets exercised).
//!
//! Everything derives from a seeded SplitMix64 stream and fixed calendar bounds, never from the
//! clock, so the same options give byte-identical bodies on every run.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::dataset::{Dataset, JsonObject, OrgRecord, UserRecord, string_field};

mod github_format;
mod rng;
mod root_document;
mod words;

use github_format::{avatar_url, into_object, node_id, timestamp};
pub(crate) use rng::{SplitMix64, stable_hash};
pub(crate) use root_document::root_document;
use words::{
    BIOS, COMPONENT_WORDS, EXTENSIONS, FIRST_NAMES, LANGUAGES, LAST_NAMES, LOCATIONS, OPENINGS,
    PROJECT_WORDS, PURPOSES, SUFFIXES, THINGS, TOPICS, TRAILERS, UPSTREAM_ORGS,
};

/// Where `html_url`s and clone URLs point, as on github.com.
const HTML_BASE: &str = "https://github.com";
/// Earliest generated `created_at` (2011-01-01T00:00:00Z).
const FIRST_CREATED_AT: i64 = 1_293_840_000;
/// Latest generated `created_at` (2023-12-31T00:00:00Z); updates run until `LAST_UPDATED_AT`.
const LAST_CREATED_AT: i64 = 1_703_980_800;
/// Latest generated `updated_at` (2025-06-30T00:00:00Z).
const LAST_UPDATED_AT: i64 = 1_751_241_600;
const DAY: i64 = 86_400;

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct GeneratorOptions {
    /// How many repositories (each org).
    pub(crate) repos: usize,
    /// How many members (each org).
    pub(crate) members: usize,
    /// Seed of the pseudo-random stream.
    pub(crate) seed: u64,
    /// Base of the API URLs inside bodies (`https://api.github.com`), without trailing slash.
    pub(crate) api_base: String,
}

/// Builds the whole dataset: each org, its repos and members, a user entry per member and one
/// for the org itself (GitHub serves orgs at `/users/{org}` too), and the root document.
///
/// Each org comes from its own seeded stream: the first org's bytes are the same as when it is
/// generated alone, so adding orgs never changes the first one's data. Member logins are unique
/// across the orgs (one `/users/{login}` each) and repository ids are kept apart by a billion
/// per org.
pub(crate) fn generate(options: &GeneratorOptions, orgs: &[String]) -> Dataset {
    let api = options.api_base.as_str();
    let mut logins = HashSet::new();
    let mut records = Vec::with_capacity(orgs.len());
    let mut users = Vec::new();
    for (index, login) in orgs.iter().enumerate() {
        let (record, org_users) = generate_org(options, login, index as u64, &mut logins);
        records.push(record);
        users.extend(org_users);
    }
    Dataset {
        root: Some(root_document(api)),
        orgs: records,
        users,
        paths: Default::default(),
    }
}

/// One org's record and its users; `index` keeps its repository ids apart from other orgs'.
fn generate_org(
    options: &GeneratorOptions,
    login: &str,
    index: u64,
    logins: &mut HashSet<String>,
) -> (OrgRecord, Vec<UserRecord>) {
    let api = options.api_base.as_str();
    let mut rng = SplitMix64::new(options.seed ^ stable_hash(login));
    let org = organization(api, login, options.repos, &mut rng);
    let owner = owner_from_org(api, &org);

    let mut repos: Vec<JsonObject> = Vec::with_capacity(options.repos);
    let mut names = HashSet::new();
    let mut repo_id = rng.between(2_000_000, 3_000_000) + index * 1_000_000_000;
    let span = (LAST_CREATED_AT - FIRST_CREATED_AT) as u64;
    let mean_gap = (span / options.repos.max(1) as u64).max(1);
    let mut created_at = FIRST_CREATED_AT;
    for _ in 0..options.repos {
        let name = unique_name(&mut rng, &mut names);
        let mut repo = full_repository(api, &owner, repo_id, &name, created_at, &mut rng);
        if let Some(previous) = repos.last() {
            copy_sometimes(&mut rng, previous, &mut repo, "updated_at");
            if copy_sometimes(&mut rng, previous, &mut repo, "stargazers_count") {
                let stars = repo["stargazers_count"].clone();
                repo.insert("watchers_count".into(), stars.clone());
                repo.insert("watchers".into(), stars);
            }
        }
        repos.push(repo);
        repo_id += rng.between(1, 2_000_000);
        // Clamped: with few repos the random gaps could otherwise run past the last update date.
        created_at = (created_at + rng.between(0, 2 * mean_gap) as i64).min(LAST_CREATED_AT);
    }

    let mut members = Vec::with_capacity(options.members);
    let mut users = Vec::with_capacity(options.members + 1);
    for _ in 0..options.members {
        let (member, user) = member(api, login, logins, &mut rng);
        members.push(member);
        users.push(UserRecord { user, orgs: None });
    }
    users.push(UserRecord {
        user: org_as_user(&org),
        orgs: None,
    });

    (
        OrgRecord {
            org,
            repos,
            members,
        },
        users,
    )
}

/// A repository for `POST /_sim/orgs/{org}/repos`: generated like the others, its stream derived
/// from the seed and the name, so adding the same repo twice to equal states gives equal bytes.
pub(crate) fn added_repository(
    api: &str,
    seed: u64,
    org: &JsonObject,
    id: u64,
    name: &str,
    created_at: i64,
) -> JsonObject {
    let mut rng = SplitMix64::new(seed ^ stable_hash(name));
    full_repository(
        api,
        &owner_from_org(api, org),
        id,
        name,
        created_at,
        &mut rng,
    )
}

/// The latest `created_at` among `repos`, as Unix seconds (the generator's first date if none).
pub(crate) fn latest_created_at(repos: &[JsonObject]) -> i64 {
    repos
        .iter()
        .filter_map(|repo| string_field(repo, "created_at"))
        .filter_map(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|at| at.unix_timestamp())
        .max()
        .unwrap_or(FIRST_CREATED_AT)
}

/// Copies `field` from `previous` with a small probability, to create ties; tells whether it did.
fn copy_sometimes(
    rng: &mut SplitMix64,
    previous: &JsonObject,
    repo: &mut JsonObject,
    field: &str,
) -> bool {
    if !rng.chance(0.07) {
        return false;
    }
    if let Some(value) = previous.get(field) {
        repo.insert(field.to_owned(), value.clone());
    }
    true
}

/// The public view of an organization (`GET /orgs/{org}` without admin rights).
fn organization(api: &str, login: &str, repo_count: usize, rng: &mut SplitMix64) -> JsonObject {
    let id = rng.between(100_000, 90_000_000);
    let created_at = FIRST_CREATED_AT - rng.between(30, 900) as i64 * DAY;
    let lower = login.to_ascii_lowercase();
    let object = json!({
        "login": login,
        "id": id,
        "node_id": node_id("Organization", id),
        "url": format!("{api}/orgs/{login}"),
        "repos_url": format!("{api}/orgs/{login}/repos"),
        "events_url": format!("{api}/orgs/{login}/events"),
        "hooks_url": format!("{api}/orgs/{login}/hooks"),
        "issues_url": format!("{api}/orgs/{login}/issues"),
        "members_url": format!("{api}/orgs/{login}/members{{/member}}"),
        "public_members_url": format!("{api}/orgs/{login}/public_members{{/member}}"),
        "avatar_url": avatar_url(id),
        "description": format!("{login} open source software"),
        "name": login,
        "company": null,
        "blog": format!("https://{lower}.github.io/"),
        "location": rng.pick(LOCATIONS),
        "email": null,
        "twitter_username": format!("{lower}oss"),
        "is_verified": true,
        "has_organization_projects": true,
        "has_repository_projects": true,
        "public_repos": repo_count,
        "public_gists": 0,
        "followers": rng.heavy_tail(30_000.0),
        "following": 0,
        "html_url": format!("{HTML_BASE}/{login}"),
        "created_at": timestamp(created_at),
        "updated_at": timestamp(LAST_UPDATED_AT - rng.between(1, 200) as i64 * DAY),
        "archived_at": null,
        "type": "Organization",
    });
    into_object(object)
}

/// The simple-user object GitHub uses for an org as repository `owner` and `organization`.
pub(crate) fn owner_from_org(api: &str, org: &JsonObject) -> JsonObject {
    let login = string_field(org, "login").unwrap_or_default();
    let id = org.get("id").and_then(Value::as_u64).unwrap_or_default();
    let mut owner = simple_user(api, login, id, "Organization");
    for field in ["node_id", "avatar_url"] {
        if let Some(value) = org.get(field) {
            owner.insert(field.into(), value.clone());
        }
    }
    owner
}

/// The org as `/users/{org}` shows it: a user-shaped object of type `Organization`.
fn org_as_user(org: &JsonObject) -> JsonObject {
    let api_url = string_field(org, "url").unwrap_or_default();
    let api = api_url.split("/orgs/").next().unwrap_or_default();
    let mut user = owner_from_org(api, org);
    for (field, from) in [
        ("name", "name"),
        ("company", "company"),
        ("blog", "blog"),
        ("location", "location"),
        ("email", "email"),
        ("hireable", "hireable"),
        ("bio", "description"),
        ("twitter_username", "twitter_username"),
        ("public_repos", "public_repos"),
        ("public_gists", "public_gists"),
        ("followers", "followers"),
        ("following", "following"),
        ("created_at", "created_at"),
        ("updated_at", "updated_at"),
    ] {
        user.insert(field.into(), org.get(from).cloned().unwrap_or(Value::Null));
    }
    user
}

/// A simple-user object (`owner`, list members).
fn simple_user(api: &str, login: &str, id: u64, kind: &str) -> JsonObject {
    let user = format!("{api}/users/{login}");
    into_object(json!({
        "login": login,
        "id": id,
        "node_id": node_id(kind, id),
        "avatar_url": avatar_url(id),
        "gravatar_id": "",
        "url": user,
        "html_url": format!("{HTML_BASE}/{login}"),
        "followers_url": format!("{user}/followers"),
        "following_url": format!("{user}/following{{/other_user}}"),
        "gists_url": format!("{user}/gists{{/gist_id}}"),
        "starred_url": format!("{user}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{user}/subscriptions"),
        "organizations_url": format!("{user}/orgs"),
        "repos_url": format!("{user}/repos"),
        "events_url": format!("{user}/events{{/privacy}}"),
        "received_events_url": format!("{user}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false,
    }))
}

/// An org member: the simple-user object listed by `/orgs/{org}/members` and the full user object
/// served at `/users/{login}`.
fn member(
    api: &str,
    org: &str,
    logins: &mut HashSet<String>,
    rng: &mut SplitMix64,
) -> (JsonObject, JsonObject) {
    let first = rng.pick(FIRST_NAMES);
    let last = rng.pick(LAST_NAMES);
    let mut login = match rng.between(0, 3) {
        0 => format!("{first}{last}"),
        1 => format!("{first}-{last}"),
        2 => format!("{}{last}{}", &first[..1], rng.between(1, 99)),
        _ => format!("{last}{first}"),
    }
    .to_ascii_lowercase();
    while !logins.insert(login.clone()) {
        login = format!("{login}{}", rng.between(0, 9));
    }
    let id = rng.between(100_000, 150_000_000);
    let simple = simple_user(api, &login, id, "User");
    let created_at = FIRST_CREATED_AT - 400 * DAY + rng.between(0, 4_000) as i64 * DAY;
    let mut full = simple.clone();
    let details = json!({
        "name": format!("{}{} {}", first[..1].to_ascii_uppercase(), &first[1..], last),
        "company": if rng.chance(0.6) { Value::String(format!("@{org}")) } else { Value::Null },
        "blog": if rng.chance(0.4) { format!("https://{login}.dev") } else { String::new() },
        "location": if rng.chance(0.7) { Value::from(rng.pick(LOCATIONS)) } else { Value::Null },
        "email": null,
        "hireable": null,
        "bio": if rng.chance(0.5) { Value::from(rng.pick(BIOS)) } else { Value::Null },
        "twitter_username": null,
        "public_repos": rng.heavy_tail(300.0),
        "public_gists": rng.heavy_tail(60.0),
        "followers": rng.heavy_tail(5_000.0),
        "following": rng.heavy_tail(300.0),
        "created_at": timestamp(created_at),
        "updated_at": timestamp(LAST_UPDATED_AT - rng.between(1, 700) as i64 * DAY),
    });
    full.extend(into_object(details));
    (simple, full)
}

/// A full repository object (`GET /repos/{owner}/{repo}`); list pages serve it without the
/// full-only fields (`FULL_REPOSITORY_ONLY` in `catalog::render`).
fn full_repository(
    api: &str,
    owner: &JsonObject,
    id: u64,
    name: &str,
    created_at: i64,
    rng: &mut SplitMix64,
) -> JsonObject {
    let fork = rng.chance(0.08);
    let mut repo = repository_item(api, owner, id, name, created_at, fork, rng);
    let forks_count = repo["forks_count"].clone();
    let stars = repo["stargazers_count"].as_u64().unwrap_or_default();
    repo.insert("temp_clone_token".into(), Value::Null);
    repo.insert("custom_properties".into(), json!({}));
    repo.insert("organization".into(), Value::Object(owner.clone()));
    repo.insert("network_count".into(), forks_count);
    repo.insert(
        "subscribers_count".into(),
        Value::from(stars / 25 + rng.heavy_tail(40.0)),
    );
    if fork {
        let upstream_login = rng.pick(UPSTREAM_ORGS);
        let upstream_id = rng.between(10_000, 2_000_000);
        let upstream = simple_user(api, upstream_login, upstream_id, "Organization");
        let parent_id = rng.between(1_000_000, id.max(1_000_001));
        let parent_created = created_at - rng.between(30, 1_500) as i64 * DAY;
        let parent = repository_item(api, &upstream, parent_id, name, parent_created, false, rng);
        repo.insert("parent".into(), Value::Object(parent.clone()));
        repo.insert("source".into(), Value::Object(parent));
    }
    repo
}

/// The fields of a repository as list pages show them (GitHub's minimal-repository set).
fn repository_item(
    api: &str,
    owner: &JsonObject,
    id: u64,
    name: &str,
    created_at: i64,
    fork: bool,
    rng: &mut SplitMix64,
) -> JsonObject {
    const URL_TEMPLATES: [(&str, &str); 36] = [
        ("forks_url", "/forks"),
        ("keys_url", "/keys{/key_id}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("teams_url", "/teams"),
        ("hooks_url", "/hooks"),
        ("issue_events_url", "/issues/events{/number}"),
        ("events_url", "/events"),
        ("assignees_url", "/assignees{/user}"),
        ("branches_url", "/branches{/branch}"),
        ("tags_url", "/tags"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("trees_url", "/git/trees{/sha}"),
        ("statuses_url", "/statuses/{sha}"),
        ("languages_url", "/languages"),
        ("stargazers_url", "/stargazers"),
        ("contributors_url", "/contributors"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("commits_url", "/commits{/sha}"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("comments_url", "/comments{/number}"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("contents_url", "/contents/{+path}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("merges_url", "/merges"),
        ("archive_url", "/{archive_format}{/ref}"),
        ("downloads_url", "/downloads"),
        ("issues_url", "/issues{/number}"),
        ("pulls_url", "/pulls{/number}"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("labels_url", "/labels{/name}"),
        ("releases_url", "/releases{/id}"),
        ("deployments_url", "/deployments"),
    ];
    let login = string_field(owner, "login").unwrap_or_default();
    let full_name = format!("{login}/{name}");
    let url = format!("{api}/repos/{full_name}");
    let html_url = format!("{HTML_BASE}/{full_name}");

    let stars = if rng.chance(0.12) {
        0
    } else {
        rng.heavy_tail(40_000.0)
    };
    let forks = stars / rng.between(3, 12) + rng.heavy_tail(20.0);
    let open_issues = rng.heavy_tail(400.0);
    let archived = rng.chance(0.06);
    let updated_at = created_at + rng.between(0, (LAST_UPDATED_AT - created_at) as u64) as i64;
    let pushed_at = (updated_at - rng.between(0, 40) as i64 * DAY).max(created_at);
    let homepage = match rng.between(0, 9) {
        0..=3 => Value::Null,
        4 => Value::String(String::new()),
        _ => Value::String(format!(
            "https://{}.github.io/{name}",
            login.to_ascii_lowercase()
        )),
    };
    let language = if rng.chance(0.1) {
        Value::Null
    } else {
        Value::from(rng.pick(LANGUAGES))
    };
    let topic_count = rng.between(0, 6) as usize;
    let mut topics: Vec<&str> = (0..topic_count).map(|_| rng.pick(TOPICS)).collect();
    topics.sort_unstable();
    topics.dedup();

    let mut repo = JsonObject::new();
    let mut put = |field: &str, value: Value| {
        repo.insert(field.to_owned(), value);
    };
    put("id", Value::from(id));
    put("node_id", Value::from(node_id("Repository", id)));
    put("name", Value::from(name));
    put("full_name", Value::from(full_name.as_str()));
    put("private", Value::Bool(false));
    put("owner", Value::Object(owner.clone()));
    put("html_url", Value::from(html_url.as_str()));
    put("description", description(rng));
    put("fork", Value::Bool(fork));
    put("url", Value::from(url.as_str()));
    for (field, suffix) in URL_TEMPLATES {
        put(field, Value::String(format!("{url}{suffix}")));
    }
    put("created_at", Value::from(timestamp(created_at)));
    put("updated_at", Value::from(timestamp(updated_at)));
    put("pushed_at", Value::from(timestamp(pushed_at)));
    put(
        "git_url",
        Value::String(format!("git://github.com/{full_name}.git")),
    );
    put(
        "ssh_url",
        Value::String(format!("git@github.com:{full_name}.git")),
    );
    put("clone_url", Value::String(format!("{html_url}.git")));
    put("svn_url", Value::from(html_url.as_str()));
    put("homepage", homepage);
    put("size", Value::from(rng.heavy_tail(800_000.0)));
    put("stargazers_count", Value::from(stars));
    put("watchers_count", Value::from(stars));
    put("language", language);
    put("has_issues", Value::Bool(!rng.chance(0.1)));
    put("has_projects", Value::Bool(rng.chance(0.7)));
    put("has_downloads", Value::Bool(true));
    put("has_wiki", Value::Bool(rng.chance(0.6)));
    put("has_pages", Value::Bool(rng.chance(0.2)));
    put("has_discussions", Value::Bool(rng.chance(0.15)));
    put("forks_count", Value::from(forks));
    put("mirror_url", Value::Null);
    put("archived", Value::Bool(archived));
    put("disabled", Value::Bool(false));
    put("open_issues_count", Value::from(open_issues));
    put("license", license(api, rng));
    put("allow_forking", Value::Bool(true));
    put("is_template", Value::Bool(rng.chance(0.03)));
    put("web_commit_signoff_required", Value::Bool(false));
    put("topics", json!(topics));
    put("visibility", Value::from("public"));
    put("forks", Value::from(forks));
    put("open_issues", Value::from(open_issues));
    put("watchers", Value::from(stars));
    put(
        "default_branch",
        Value::from(if rng.chance(0.55) { "main" } else { "master" }),
    );
    repo
}

/// A repository name, unique in the org (case-insensitively, like GitHub).
fn unique_name(rng: &mut SplitMix64, taken: &mut HashSet<String>) -> String {
    let base = match rng.between(0, 5) {
        0 => rng.pick(PROJECT_WORDS).to_owned(),
        1 | 2 => format!("{}-{}", rng.pick(PROJECT_WORDS), rng.pick(COMPONENT_WORDS)),
        3 => format!(
            "{}-{}-{}",
            rng.pick(PROJECT_WORDS),
            rng.pick(COMPONENT_WORDS),
            rng.pick(SUFFIXES)
        ),
        4 => format!("{}_{}", rng.pick(PROJECT_WORDS), rng.pick(COMPONENT_WORDS)),
        _ => format!("{}.{}", rng.pick(PROJECT_WORDS), rng.pick(EXTENSIONS)),
    };
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.to_ascii_lowercase()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn description(rng: &mut SplitMix64) -> Value {
    if rng.chance(0.08) {
        return Value::Null;
    }
    let mut text = format!(
        "{} {} for {}",
        rng.pick(OPENINGS),
        rng.pick(THINGS),
        rng.pick(PURPOSES)
    );
    if rng.chance(0.5) {
        text.push_str(", ");
        text.push_str(rng.pick(TRAILERS));
    }
    text.push('.');
    Value::String(text)
}

fn license(api: &str, rng: &mut SplitMix64) -> Value {
    // (key, name, spdx_id, GitHub's license number for the node id)
    const LICENSES: [(&str, &str, &str, u64); 5] = [
        ("apache-2.0", "Apache License 2.0", "Apache-2.0", 2),
        ("mit", "MIT License", "MIT", 13),
        (
            "bsd-3-clause",
            "BSD 3-Clause \"New\" or \"Revised\" License",
            "BSD-3-Clause",
            5,
        ),
        ("gpl-3.0", "GNU General Public License v3.0", "GPL-3.0", 9),
        ("other", "Other", "NOASSERTION", 0),
    ];
    let roll = rng.unit();
    let index = match roll {
        r if r < 0.55 => 0,
        r if r < 0.70 => 1,
        r if r < 0.75 => 2,
        r if r < 0.78 => 3,
        r if r < 0.83 => 4,
        _ => return Value::Null,
    };
    let (key, name, spdx_id, number) = LICENSES[index];
    let url = if key == "other" {
        Value::Null
    } else {
        Value::String(format!("{api}/licenses/{key}"))
    };
    json!({
        "key": key,
        "name": name,
        "spdx_id": spdx_id,
        "url": url,
        "node_id": node_id("License", number),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_match_githubs() {
        assert_eq!(node_id("User", 1), "MDQ6VXNlcjE=");
        assert_eq!(
            node_id("Repository", 1_296_269),
            "MDEwOlJlcG9zaXRvcnkxMjk2MjY5"
        );
        assert_eq!(node_id("License", 13), "MDc6TGljZW5zZTEz");
        assert_eq!(
            node_id("Organization", 913_567),
            "MDEyOk9yZ2FuaXphdGlvbjkxMzU2Nw=="
        );
    }

    #[test]
    fn timestamps_use_githubs_format() {
        assert_eq!(timestamp(1_507_651_200), "2017-10-10T16:00:00Z");
    }

    #[test]
    fn tiny_orgs_generate_valid_dates() {
        for repos in [1, 2, 3, 5, 20] {
            for seed in 1..20 {
                let dataset = generate(
                    &GeneratorOptions {
                        repos,
                        members: 3,
                        seed,
                        api_base: "https://api.github.com".into(),
                    },
                    &["Netflix".to_owned()],
                );
                for repo in &dataset.orgs[0].repos {
                    let updated = repo["updated_at"].as_str().unwrap_or_default();
                    assert!(updated.starts_with("20"), "{updated}");
                }
            }
        }
    }

    #[test]
    fn several_orgs_keep_the_first_orgs_bytes_and_share_no_login_or_repo_id() {
        let options = GeneratorOptions {
            repos: 50,
            members: 30,
            seed: 1,
            api_base: "https://api.github.com".into(),
        };
        let one = generate(&options, &["Netflix".to_owned()]);
        let orgs: Vec<String> = ["Netflix", "acme", "octo-org"].map(String::from).to_vec();
        let three = generate(&options, &orgs);
        assert_eq!(three.orgs.len(), 3);
        assert_eq!(
            three.orgs[0], one.orgs[0],
            "adding orgs leaves the first unchanged"
        );
        let logins: Vec<&str> = three
            .users
            .iter()
            .filter_map(|u| u.user["login"].as_str())
            .collect();
        let unique: HashSet<&str> = logins.iter().copied().collect();
        assert_eq!(unique.len(), logins.len(), "one /users entry per login");
        let ids: Vec<u64> = three
            .orgs
            .iter()
            .flat_map(|o| o.repos.iter().filter_map(|r| r["id"].as_u64()))
            .collect();
        let unique_ids: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(unique_ids.len(), ids.len());
        assert_eq!(three.orgs[1].org["login"], "acme");
    }

    #[test]
    fn generated_repositories_are_unique_and_varied() {
        let dataset = generate(
            &GeneratorOptions {
                repos: 300,
                members: 5,
                seed: 1,
                api_base: "https://api.github.com".into(),
            },
            &["Netflix".to_owned()],
        );
        let repos = &dataset.orgs[0].repos;
        let names: HashSet<_> = repos
            .iter()
            .map(|repo| {
                repo["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            })
            .collect();
        assert_eq!(names.len(), 300);
        let stars: HashSet<_> = repos
            .iter()
            .map(|r| r["stargazers_count"].clone())
            .collect();
        assert!(
            stars.len() > 100,
            "stars should vary: {} values",
            stars.len()
        );
        assert!(stars.len() < 300, "stars should have ties");
        let updated: HashSet<_> = repos.iter().map(|r| r["updated_at"].clone()).collect();
        assert!(updated.len() < 300, "updated_at should have ties");
        assert!(updated.len() > 200, "updated_at should vary");
    }
}
