//! A gateway killed (SIGKILL, not a graceful stop) under load behind nginx with the committed
//! retry policy of `deploy/nginx/hubcache.conf`: the other replica answers every request.
//!
//! Two real gateway processes over one seeded Redis, nginx from the same image the compose file
//! uses, run by Docker on the host network. Skipped (with a message) where Docker or that image
//! is not available; `scripts/compose-test.sh` covers the graceful stop of a replica.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::future::join_all;
use hubcache_testkit::{eventually, free_port};

use crate::helpers::{ORG, org_body, spawn_app};

/// The compose file's default `NGINX_IMAGE`.
const NGINX_IMAGE: &str = "nginx:1.27-bookworm";

/// A process or container removed when the test ends.
enum Running {
    Process(Child),
    Container(String),
}

impl Drop for Running {
    fn drop(&mut self) {
        match self {
            Running::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::Container(id) => {
                let _ = Command::new("docker")
                    .args(["rm", "-f", id.as_str()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

fn docker_has_nginx() -> bool {
    Command::new("docker")
        .args(["image", "inspect", NGINX_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `proxy_*` directives of the committed load balancer's `location /`, except the target:
/// the test uses the retry policy that is deployed, not a copy of it.
fn committed_proxy_directives() -> Vec<String> {
    let conf = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/hubcache.conf"),
    )
    .expect("deploy/nginx/hubcache.conf");
    let location = conf
        .split("location / {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("a location / block");
    location
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("proxy_") && !l.starts_with("proxy_pass"))
        .map(str::to_owned)
        .collect()
}

fn start_gateway(redis_url: &str, sim_url: &str, port: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .envs([
            ("REDIS_URL", redis_url),
            ("GITHUB_API_URL", sim_url),
            ("GITHUB_ORG", ORG),
            ("PORT", &port.to_string()),
            ("WORKERS", "1"),
            ("RUST_LOG", "warn"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the gateway binary");
    Running::Process(child)
}

#[tokio::test]
async fn a_gateway_killed_under_load_costs_no_request_through_the_load_balancer() {
    if !docker_has_nginx() {
        eprintln!("docker or the {NGINX_IMAGE} image is not available: skipping");
        return;
    }
    let app = spawn_app().await;
    let ports = [free_port().expect("port"), free_port().expect("port")];
    let mut gateways: Vec<Running> = ports
        .iter()
        .map(|port| start_gateway(&app.redis.url(), &app.sim_url, *port))
        .collect();
    for port in ports {
        eventually(Duration::from_secs(20), "a gateway ready", || async {
            let url = format!("http://127.0.0.1:{port}/healthcheck");
            let response = app.client.get(url).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await
        .expect("both gateways ready");
    }

    let lb_port = free_port().expect("port");
    let dir = std::env::temp_dir().join(format!("hubcache-lb-{}-{lb_port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("config dir");
    let conf = format!(
        "upstream gateways {{\n  server 127.0.0.1:{};\n  server 127.0.0.1:{};\n}}\n\
         server {{\n  listen 127.0.0.1:{lb_port};\n  location / {{\n    proxy_pass http://gateways;\n    {}\n  }}\n}}\n",
        ports[0],
        ports[1],
        committed_proxy_directives().join("\n    ")
    );
    std::fs::write(dir.join("default.conf"), conf).expect("nginx config");
    let output = Command::new("docker")
        .args(["run", "-d", "--rm", "--network", "host", "-v"])
        .arg(format!(
            "{}:/etc/nginx/conf.d/default.conf:ro",
            dir.join("default.conf").display()
        ))
        .arg(NGINX_IMAGE)
        .output()
        .expect("docker run");
    assert!(
        output.status.success(),
        "nginx starts: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _nginx = Running::Container(String::from_utf8_lossy(&output.stdout).trim().to_owned());
    let lb = format!("http://127.0.0.1:{lb_port}");
    eventually(Duration::from_secs(20), "nginx up", || async {
        let response = app.client.get(format!("{lb}/livez")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await
    .expect("the load balancer answers");

    // Eight clients for 6 s; one replica is killed after 2 s.
    let started = Instant::now();
    let load = join_all((0..8).map(|i| {
        let client = app.client.clone();
        let lb = lb.clone();
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while started.elapsed() < Duration::from_secs(6) {
                let path = if i % 2 == 0 {
                    format!("/orgs/{ORG}")
                } else {
                    "/view/top/3/stars".to_owned()
                };
                match client.get(format!("{lb}{path}")).send().await {
                    Ok(r) if r.status() == 200 => {
                        if i % 2 == 0 {
                            assert_eq!(r.text().await.expect("body"), org_body(1));
                        }
                        ok += 1;
                    }
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }
    }));
    let kill = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let victim = gateways.remove(0);
        drop(victim); // SIGKILL
    };
    let (results, ()) = tokio::join!(load, kill);
    let ok: u32 = results.iter().map(|(ok, _)| ok).sum();
    let failed: Vec<&String> = results.iter().flat_map(|(_, f)| f).collect();
    eprintln!(
        "gateway killed under load behind nginx: {ok} requests answered 200, {} failed",
        failed.len()
    );
    assert!(ok > 100, "load ran: {ok}");
    assert!(failed.is_empty(), "no request fails: {failed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
