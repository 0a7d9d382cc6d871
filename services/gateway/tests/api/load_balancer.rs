//! A gateway killed (SIGKILL, not a graceful stop) under load behind nginx with the committed
//! retry policy of `deploy/nginx/hubcache.conf`: the other replica answers every request.
//!
//! Two real gateway processes over one seeded Redis and a real nginx (the `nginx` command: Debian's
//! package, which `scripts/test.sh` installs) with the `proxy_*` directives of the committed
//! configuration. `scripts/compose-test.sh` covers the graceful stop of a replica in compose.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::future::join_all;
use hubcache_testkit::{eventually, free_port};

use crate::helpers::{ORG, org_body, spawn_app};

/// A process killed (SIGKILL) when the test ends or drops it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    Running(child)
}

#[tokio::test]
async fn a_gateway_killed_under_load_costs_no_request_through_the_load_balancer() {
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
    // One nginx process (no master and workers): killing it when the test ends leaves nothing
    // behind, where a killed master would orphan its workers.
    let conf = format!(
        "master_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\nevents {{}}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir};\n  proxy_temp_path {dir};\n\
         fastcgi_temp_path {dir};\n  uwsgi_temp_path {dir};\n  scgi_temp_path {dir};\n\
         upstream gateways {{\n    server 127.0.0.1:{};\n    server 127.0.0.1:{};\n  }}\n\
         server {{\n    listen 127.0.0.1:{lb_port};\n    location / {{\n      proxy_pass http://gateways;\n      {}\n    }}\n  }}\n}}\n",
        ports[0],
        ports[1],
        committed_proxy_directives().join("\n      "),
        dir = dir.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx config");
    let nginx = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the nginx command (Debian package nginx; scripts/test.sh installs it)");
    let _nginx = Running(nginx);
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
