#!/usr/bin/env python3
"""PyGithub, a real GitHub client, pointed at a running hubcache gateway.

Usage: pygithub-check.py GATEWAY_URL UPSTREAM_URL ORG

The gateway must run with PUBLIC_URL=GATEWAY_URL: PyGithub follows absolute URLs found in
bodies (an organisation's `url`, a user's `url`) and in Link headers, and refuses any that
leave its base URL. UPSTREAM_URL is the gateway's GITHUB_API_URL (github-sim): the ground truth
every answer is compared with, fetched straight from it with plain HTTP.

Checks, through the gateway: the org, all its repos and members (whole lists, and walked page
by page with per_page, following Link `next`, including GitHub's own
/organizations/{id}/repos form), one repo read in full, a user and that user's orgs. Every
mismatch is printed; the exit status is 1 if there was any, 0 otherwise.

scripts/test.sh runs it in a virtualenv with PyGithub installed from PyPI
(scripts/pygithub-requirements.txt); run by hand the same way.
"""

import importlib.metadata
import json
import sys
import urllib.request

from github import Github
from github.PaginatedList import PaginatedList
from github.Repository import Repository

# Page sizes that do not divide the repo count (150 in test.sh), so the last page is partial.
PAGE_SIZES = (7, 100)

failures = 0
checks = 0


def check(description, actual, expected):
    """Records one comparison; prints both values on a mismatch."""
    global failures, checks
    checks += 1
    if actual == expected:
        print(f"  ok   {description}")
    else:
        failures += 1
        print(f"  FAIL {description}\n       got:  {actual!r}\n       want: {expected!r}", file=sys.stderr)


def fetch_json(url):
    """GET url (no proxy); returns (parsed body, Link header)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.github+json"})
    with opener.open(request, timeout=20) as response:
        return json.load(response), response.headers.get("Link")


def next_link(link):
    """The rel="next" URL of a Link header value, if any."""
    for part in (link or "").split(","):
        url, _, params = part.strip().partition(";")
        if 'rel="next"' in params:
            return url.strip()[1:-1]
    return None


def truth_list(upstream, path):
    """Every element of a list, straight from the upstream, walking its pages."""
    url = f"{upstream}{path}?per_page=100"
    items = []
    while url:
        page, link = fetch_json(url)
        items.extend(page)
        url = next_link(link)
    return items


def truth(upstream, path):
    """An object straight from the upstream."""
    return fetch_json(f"{upstream}{path}")[0]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    gateway, upstream, org_login = (a.rstrip("/") for a in sys.argv[1:])
    print(f"PyGithub {importlib.metadata.version('PyGithub')} against {gateway} (org {org_login}, truth from {upstream})")

    want_org = truth(upstream, f"/orgs/{org_login}")
    want_repos = [r["full_name"] for r in truth_list(upstream, f"/orgs/{org_login}/repos")]
    want_members = [m["login"] for m in truth_list(upstream, f"/orgs/{org_login}/members")]
    if len(want_repos) <= max(PAGE_SIZES) or not want_members:
        sys.exit(f"the upstream org is too small to test paging: {len(want_repos)} repos, {len(want_members)} members")

    # Anonymous, no retries (a failure must show, not be retried away), default page size: the
    # gateway answers the whole merged list in one response.
    gh = Github(base_url=gateway, retry=None, timeout=20)
    org = gh.get_organization(org_login)
    check("the org's login", org.login, want_org["login"])
    check("the org's id", org.id, want_org["id"])
    check("the org's url points at the gateway", org.url, f"{gateway}/orgs/{want_org['login']}")
    check("the org's public_repos", org.public_repos, want_org.get("public_repos"))

    repos = [r.full_name for r in org.get_repos()]
    check("all repos, in order (default page size)", repos, want_repos)
    members = [m.login for m in org.get_members()]
    check("all members, in order (default page size)", members, want_members)

    for per_page in PAGE_SIZES:
        paged = Github(base_url=gateway, retry=None, timeout=20, per_page=per_page)
        paged_org = paged.get_organization(org_login)
        listed = paged_org.get_repos()
        # A page really is per_page long, so the walk below follows Link `next` page after page.
        check(f"per_page={per_page}: the first page holds {per_page} repos", len(listed.get_page(0)), per_page)
        names = [r.full_name for r in listed]
        check(f"per_page={per_page}: every repo exactly once, in order", names, want_repos)
        check(f"per_page={per_page}: no repo twice", len(set(names)), len(names))
        # totalCount asks for per_page=1 and reads the page number of the Link rel="last".
        check(f"per_page={per_page}: totalCount from the Link header", listed.totalCount, len(want_repos))
        # GitHub's own Link headers name the org's lists by id: walk that form too.
        by_id = PaginatedList(Repository, paged.requester, f"{gateway}/organizations/{paged_org.id}/repos", None)
        check(f"per_page={per_page}: /organizations/{{id}}/repos pages hold {per_page}", len(by_id.get_page(0)), per_page)
        check(
            f"per_page={per_page}: /organizations/{{id}}/repos walks every repo once",
            [r.full_name for r in by_id],
            want_repos,
        )
        check(
            f"per_page={per_page}: all members",
            [m.login for m in paged_org.get_members()],
            want_members,
        )
        past_end = listed.get_page(len(want_repos) // per_page + 5)
        check(f"per_page={per_page}: a page past the end is empty", past_end, [])

    # One repo from the list, completed lazily: PyGithub fetches its `url` (from the cached list
    # body) for the fields a list entry lacks, so that URL must lead back to the gateway.
    listed_repo = next(r for r in org.get_repos() if r.full_name == want_repos[len(want_repos) // 2])
    want_repo = truth(upstream, f"/repos/{listed_repo.full_name}")
    check("a listed repo's url points at the gateway", listed_repo.url, f"{gateway}/repos/{want_repo['full_name']}")
    for field in ("full_name", "id", "stargazers_count", "forks_count", "open_issues_count", "watchers_count",
                  "default_branch", "description", "network_count", "subscribers_count"):
        check(f"listed repo, completed: {field}", getattr(listed_repo, field), want_repo.get(field))

    repo = gh.get_repo(want_repos[0])
    want_repo = truth(upstream, f"/repos/{want_repos[0]}")
    for field in ("full_name", "id", "name", "stargazers_count", "forks_count", "network_count", "pushed_at"):
        got = getattr(repo, field)
        if field == "pushed_at" and got is not None:
            got = got.strftime("%Y-%m-%dT%H:%M:%SZ")
        check(f"get_repo({want_repos[0]}): {field}", got, want_repo.get(field))
    check("the repo's owner is the org", repo.owner.login, want_org["login"])
    check("the repo's organization", repo.organization.login, want_org["login"])

    login = want_members[-1]
    user = gh.get_user(login)
    want_user = truth(upstream, f"/users/{login}")
    check(f"get_user({login}): login", user.login, want_user["login"])
    check(f"get_user({login}): id", user.id, want_user["id"])
    want_orgs = [o["login"] for o in truth_list(upstream, f"/users/{login}/orgs")]
    check(f"{login}'s orgs", [o.login for o in user.get_orgs()], want_orgs)
    check(f"{login} is in {org_login}", org_login in [o.login for o in user.get_orgs()], True)
    # Paged user orgs: the upstream's Link (GitHub's /user/{id}/orgs form) is rewritten to the
    # gateway by the pass-through.
    paged_user = Github(base_url=gateway, retry=None, timeout=20, per_page=1).get_user(login)
    check(f"{login}'s orgs, one per page", [o.login for o in paged_user.get_orgs()], want_orgs)

    print(f"pygithub: {checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
