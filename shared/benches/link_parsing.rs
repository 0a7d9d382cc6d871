//! Micro-benchmarks of `Link` header parsing (issue 8): the fetcher parses one header per page of
//! every list refresh and the gateway builds page links per response, so parsing must stay cheap
//! next to an HTTP round trip. Run with `cargo bench -p hubcache-shared --bench link_parsing`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hubcache_shared::github::parse_link_header;

/// What GitHub sends on a middle page of an org's repositories (four relations, by org id).
const GITHUB_MIDDLE_PAGE: &str = "<https://api.github.com/organizations/913567/repos?per_page=100&page=6>; rel=\"next\", \
<https://api.github.com/organizations/913567/repos?per_page=100&page=10>; rel=\"last\", \
<https://api.github.com/organizations/913567/repos?per_page=100&page=1>; rel=\"first\", \
<https://api.github.com/organizations/913567/repos?per_page=100&page=4>; rel=\"prev\"";

/// The first page: only `next` and `last`.
const GITHUB_FIRST_PAGE: &str = "<https://api.github.com/organizations/913567/repos?per_page=100&page=2>; rel=\"next\", \
<https://api.github.com/organizations/913567/repos?per_page=100&page=10>; rel=\"last\"";

/// The tolerant paths: unquoted and multi-valued rels, extra parameters, an unknown relation
/// and a comma inside a URL.
const UNUSUAL: &str = "<https://example.test/a?x=1,2&page=3>; title=\"x\"; rel=next, \
<https://example.test/a?page=9>; rel=\"last alternate\", <https://example.test/h>; rel=\"help\"";

fn link_parsing(c: &mut Criterion) {
    // Benchmark the intended paths: every input parses to what the fetcher would use.
    let middle = parse_link_header(GITHUB_MIDDLE_PAGE);
    assert!(
        middle.next.is_some()
            && middle.prev.is_some()
            && middle.first.is_some()
            && middle.last.is_some()
    );
    let unusual = parse_link_header(UNUSUAL);
    assert_eq!(
        unusual.next.as_deref(),
        Some("https://example.test/a?x=1,2&page=3")
    );
    assert_eq!(
        unusual.last.as_deref(),
        Some("https://example.test/a?page=9")
    );
    let mut group = c.benchmark_group("parse_link_header");
    for (name, header) in [
        ("github_middle_page", GITHUB_MIDDLE_PAGE),
        ("github_first_page", GITHUB_FIRST_PAGE),
        ("unusual", UNUSUAL),
        ("empty", ""),
    ] {
        group.bench_function(name, |b| b.iter(|| parse_link_header(black_box(header))));
    }
    group.finish();
}

criterion_group!(benches, link_parsing);
criterion_main!(benches);
