//! One refresh is one trace across processes: the real fetcher, views and gateway export spans
//! over OTLP/HTTP to a receiver in this test, and the views' and gateway's spans are children
//! of the fetcher's poll (the W3C `traceparent` travels in the stream events).
//!
//! Each service installs its global tracing subscriber once, so each runs in a process of its
//! own: the gateway's binary (`CARGO_BIN_EXE_gateway`), and the fetcher and views as this test
//! binary started again to run only [`service_process`], which runs the service as its `main`
//! does. So the test needs no binary of another package and runs under any `cargo test` or
//! `cargo nextest run`, of the gateway alone or of the workspace.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use hubcache_shared::SettingsSource;
use hubcache_testkit::{RedisServer, eventually, free_port};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use parking_lot::Mutex;
use prost::Message as _;

use crate::helpers::gateway_redis_user;

/// One received span, reduced to what the links need.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

async fn receive(body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut spans = received.lock();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse is an empty protobuf message.
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

/// A service binary killed when the test ends.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Which service [`service_process`] runs (unset: none, it returns at once).
const SERVICE_VAR: &str = "HUBCACHE_TRACE_TEST_SERVICE";

fn start(binary: PathBuf, args: &[&str], env: &[(&str, String)]) -> Service {
    let child = Command::new(&binary)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    Service(child)
}

/// Starts `service` (`fetcher` or `views`) in a child process: this test binary, running only
/// [`service_process`].
fn start_service(service: &str, env: &[(&str, String)]) -> Service {
    let mut env = env.to_vec();
    env.push((SERVICE_VAR, service.to_owned()));
    let this_binary = std::env::current_exe().expect("the test binary's path");
    start(
        this_binary,
        &[
            "--exact",
            "traces::service_process",
            "--ignored",
            "--nocapture",
        ],
        &env,
    )
}

/// The fetcher or the views service as its binary runs it (telemetry, settings from the
/// environment, `run_until_stopped`), in a child process started by [`start_service`].
#[tokio::test(flavor = "multi_thread")]
#[ignore = "not a test: the fetcher or views process of the trace test, which starts it"]
async fn service_process() {
    let Ok(service) = std::env::var(SERVICE_VAR) else {
        return;
    };
    let source = SettingsSource::from_vars(std::env::vars());
    match service.as_str() {
        "fetcher" => {
            let _guard = hubcache_shared::telemetry::init("fetcher").expect("telemetry");
            let settings = fetcher::Settings::load(&source).expect("fetcher settings");
            let app = fetcher::Application::build(settings)
                .await
                .expect("fetcher builds");
            app.run_until_stopped().await.expect("fetcher runs");
        }
        "views" => {
            let _guard = hubcache_shared::telemetry::init("views").expect("telemetry");
            let settings = views::Settings::load(&source).expect("views settings");
            let app = views::Application::build(settings)
                .await
                .expect("views builds");
            app.run_until_stopped().await.expect("views runs");
        }
        other => panic!("{SERVICE_VAR}={other}: no such service"),
    }
}

/// Whether some client of `redis` is blocked in `command` (`xread`, `xreadgroup`): a stream
/// reader that will see the next event rather than load what is there.
async fn blocked_in(redis: &RedisServer, command: &str) -> bool {
    let Ok(mut conn) = redis.client().get_multiplexed_async_connection().await else {
        return false;
    };
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .expect("CLIENT LIST");
    let wanted = format!("cmd={command}");
    clients.lines().any(|client| {
        let fields: Vec<&str> = client.split_whitespace().collect();
        fields.contains(&wanted.as_str())
            && fields.iter().any(|f| {
                f.strip_prefix("flags=")
                    .is_some_and(|flags| flags.contains('b'))
            })
    })
}

#[tokio::test]
async fn a_refresh_is_one_trace_from_the_fetchers_poll_to_views_and_gateway() {
    let received: Received = Arc::default();
    let data = web::Data::new(Arc::clone(&received));
    let otlp_port = free_port().expect("free port");
    let receiver = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
            .route("/v1/traces", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", otlp_port))
    .expect("bind the OTLP receiver")
    .run();
    let receiver_handle = receiver.handle();
    tokio::spawn(receiver);

    let gateway_user = gateway_redis_user();
    let redis = RedisServer::start_with_users(&[&gateway_user], &[])
        .await
        .expect("redis-server starts");
    let sim = github_sim::Application::build(github_sim::SimConfig {
        port: 0,
        org: "acme".to_owned(),
        generate_repos: 5,
        generate_members: 3,
        workers: 2,
        ..github_sim::SimConfig::default()
    })
    .await
    .expect("github-sim builds");
    let sim_url = sim.base_url().to_owned();
    tokio::spawn(sim.run_until_stopped());

    let env = |extra: &[(&'static str, String)]| {
        let mut env = vec![
            ("REDIS_URL", redis.url()),
            ("GITHUB_API_URL", sim_url.clone()),
            ("GITHUB_ORG", "acme".to_owned()),
            ("REFRESH_INTERVAL_SECS", "1".to_owned()),
            ("KEY_PREFIX", "tracetest".to_owned()),
            ("METRICS_PORT", "0".to_owned()),
            ("SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{otlp_port}"),
            ),
            // Export every 100 ms instead of the default 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ];
        env.extend(extra.iter().cloned());
        env
    };
    let gateway_port = free_port().expect("free port");
    // The gateway and views first, so they see the fetcher's events rather than load at start.
    let _gateway = start(
        PathBuf::from(env!("CARGO_BIN_EXE_gateway")),
        &[],
        &env(&[
            ("PORT", gateway_port.to_string()),
            ("WORKERS", "1".to_owned()),
            ("REDIS_URL", gateway_user.url(redis.port())),
        ]),
    );
    let _views = start_service("views", &env(&[]));
    eventually(
        Duration::from_secs(30),
        "the views' XREADGROUP and the gateway's XREAD blocked on the streams",
        || async {
            (blocked_in(&redis, "xreadgroup").await && blocked_in(&redis, "xread").await)
                .then_some(())
        },
    )
    .await
    .expect("views and gateway follow the streams");
    let _fetcher = start_service("fetcher", &env(&[]));

    let links = eventually(
        Duration::from_secs(30),
        "views and gateway spans parented by the fetcher's poll",
        || async {
            let spans = received.lock().clone();
            let poll = spans.iter().find(|s| {
                s.service == "fetcher"
                    && s.name == "poll"
                    && spans.iter().any(|v| {
                        v.service == "views"
                            && v.name == "views.refresh"
                            && v.trace_id == s.trace_id
                            && v.parent_span_id == s.span_id
                    })
            })?;
            let views = spans.iter().find(|v| {
                v.service == "views"
                    && v.name == "views.refresh"
                    && v.parent_span_id == poll.span_id
            })?;
            let snapshot_reload = spans.iter().find(|g| {
                g.service == "gateway"
                    && g.name == "gateway.reload_snapshot"
                    && g.trace_id == poll.trace_id
            })?;
            let views_reload = spans.iter().find(|g| {
                g.service == "gateway"
                    && g.name == "gateway.reload_views"
                    && g.trace_id == poll.trace_id
            })?;
            Some((
                poll.clone(),
                views.clone(),
                snapshot_reload.clone(),
                views_reload.clone(),
            ))
        },
    )
    .await
    .unwrap_or_else(|e| {
        let spans = received.lock();
        let names: Vec<_> = spans
            .iter()
            .map(|s| format!("{}:{}", s.service, s.name))
            .collect();
        panic!("{e}; received {names:?}")
    });
    let (poll, views, snapshot_reload, views_reload) = links;
    assert_eq!(views.trace_id, poll.trace_id);
    assert_eq!(
        snapshot_reload.parent_span_id, poll.span_id,
        "the gateway's reload continues the fetcher's poll"
    );
    assert_eq!(
        views_reload.parent_span_id, views.span_id,
        "the gateway's views reload continues the views refresh"
    );

    // Each request the gateway answers is a server span named after its route template.
    let response = reqwest::get(format!(
        "http://127.0.0.1:{gateway_port}/view/top/3/stars?x=1"
    ))
    .await
    .expect("gateway answers");
    assert!(response.status().is_success(), "{}", response.status());
    eventually(
        Duration::from_secs(10),
        "the gateway's request span is exported",
        || async {
            received
                .lock()
                .iter()
                .any(|s| s.service == "gateway" && s.name == "GET /view/top/{n}/{view}")
                .then_some(())
        },
    )
    .await
    .expect("request span exported");
    receiver_handle.stop(false).await;
}
