//! Criterion micro-benchmarks of the gateway's hot paths (issue 8): view slicing and the
//! pass-through cache lookup. Run: `cargo bench -p gateway --bench hot_paths`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gateway::hot_paths::{
    CachePolicy, CoalescingCache, Direction, Fetched, ServedViews, TopN, Weigh,
};
use hubcache_shared::{ViewEntry, ViewName, ViewSet, ViewValue};

/// A views set like the 1,000-repository benchmark org's.
fn view_set(repos: usize) -> ViewSet {
    let entries = |value: &dyn Fn(usize) -> ViewValue| -> Vec<ViewEntry> {
        (0..repos)
            .map(|i| ViewEntry(format!("Netflix/repo-{i:04}"), value(i)))
            .collect()
    };
    ViewSet {
        version: 1,
        source_hash: "0123456789abcdef0123456789abcdef".into(),
        views: ViewName::ALL
            .into_iter()
            .map(|name| {
                let list = match name {
                    ViewName::LastUpdated => entries(&|i| {
                        ViewValue::Timestamp(format!(
                            "2024-01-01T00:{:02}:{:02}Z",
                            i / 60 % 60,
                            i % 60
                        ))
                    }),
                    _ => entries(&|i| ViewValue::Count((repos - i) as i64)),
                };
                (name, list)
            })
            .collect(),
    }
}

/// `/view/top/{N}/stars`: the first request of an N renders and stores the slice, later ones
/// are a cache lookup; both are measured.
fn view_slicing(c: &mut Criterion) {
    let set = view_set(1000);
    let mut group = c.benchmark_group("view_slice");
    group.bench_function("prepare_1000_repos", |b| {
        b.iter(|| ServedViews::prepare(black_box(&set)))
    });
    let served = ServedViews::prepare(&set);
    for n in [10usize, 100, 1000] {
        let top: TopN = n.to_string().parse().expect("positive");
        group.bench_with_input(BenchmarkId::new("repeat_top", n), &top, |b, top| {
            b.iter(|| served.slice(ViewName::Stars, Direction::Top, black_box(*top)))
        });
        group.bench_with_input(BenchmarkId::new("first_bottom", n), &top, |b, top| {
            // A fresh ServedViews per batch, so every iteration renders.
            b.iter_batched(
                || ServedViews::prepare(&set),
                |fresh| fresh.slice(ViewName::Forks, Direction::Bottom, black_box(*top)),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A pass-through body as the cache weighs it.
struct Body(Vec<u8>);
impl Weigh for Body {
    fn weight(&self) -> usize {
        self.0.len()
    }
}

/// Pass-through cache: a hit on a warm key among 10,000 entries (the default bound), and a hit
/// under concurrent lookups of other keys (the mutex).
fn cache_lookup(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cache: CoalescingCache<String, Body, std::convert::Infallible> =
        CoalescingCache::new(CachePolicy {
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
            stale_while_revalidate: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(10),
            max_fetches: 256,
        });
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("GET /repos/Netflix/repo-{i:04}"))
        .collect();
    runtime.block_on(async {
        for key in &keys {
            cache
                .get_or_fetch(key.clone(), |_| async {
                    Ok(Fetched::Store {
                        value: Body(vec![b'x'; 6 * 1024]),
                        ttl: Duration::from_secs(3600),
                    })
                })
                .await
                .expect("stored");
        }
    });
    // Never called for a warm key (a hit returns before the fetch is used).
    let never = |_: Option<Arc<Body>>| async {
        Ok::<_, std::convert::Infallible>(Fetched::NotModified {
            ttl: Duration::from_secs(3600),
        })
    };
    let mut group = c.benchmark_group("passthrough_cache");
    group.bench_function("hit_warm_key_of_10000", |b| {
        b.to_async(&runtime)
            .iter(|| cache.get_or_fetch(black_box(keys[4242].clone()), never))
    });
    group.bench_function("hit_rotating_keys", |b| {
        let mut i = 0usize;
        b.to_async(&runtime).iter(|| {
            i = (i + 7919) % keys.len();
            cache.get_or_fetch(keys[i].clone(), never)
        })
    });
    group.finish();
}

criterion_group!(benches, view_slicing, cache_lookup);
criterion_main!(benches);
