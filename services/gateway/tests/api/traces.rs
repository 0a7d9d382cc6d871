//! One refresh is one trace across processes: the real fetcher, views and gateway binaries
//! export spans over OTLP/HTTP to a receiver in this test, and the views' and gateway's spans
//! are children of the fetcher's poll (the W3C `traceparent` travels in the stream events).
//!
//! The binaries are the ones cargo built next to this test (`target/<profile>/`): the gateway's
//! own through `CARGO_BIN_EXE_gateway`, the fetcher and views beside it (`cargo build --bins` or
//! a workspace test run builds them). Each binary installs its global tracing subscriber once,
//! which is why this cannot run in-process.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use hubcache_testkit::{RedisServer, eventually, free_port};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use parking_lot::Mutex;
use prost::Message as _;

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

fn binary(name: &str) -> Option<PathBuf> {
    let gateway = PathBuf::from(env!("CARGO_BIN_EXE_gateway"));
    let path = gateway.with_file_name(name);
    path.exists().then_some(path)
}

fn start(binary: PathBuf, env: &[(&str, String)]) -> Service {
    let child = Command::new(&binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    Service(child)
}

#[tokio::test]
async fn a_refresh_is_one_trace_from_the_fetchers_poll_to_views_and_gateway() {
    let (Some(fetcher), Some(views)) = (binary("fetcher"), binary("views")) else {
        // `cargo test -p gateway` alone does not build the other packages' binaries;
        // scripts/test.sh (a workspace run) does, so in CI a missing binary is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the fetcher/views binaries were not built next to the gateway"
        );
        eprintln!("fetcher/views binaries not built next to the gateway: skipping");
        return;
    };
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

    let redis = RedisServer::start().await.expect("redis-server starts");
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
        &env(&[
            ("PORT", gateway_port.to_string()),
            ("WORKERS", "1".to_owned()),
        ]),
    );
    let _views = start(views, &env(&[]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _fetcher = start(fetcher, &env(&[]));

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
