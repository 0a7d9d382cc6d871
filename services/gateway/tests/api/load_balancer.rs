//! A gateway killed (SIGKILL, not a graceful stop) under load behind nginx with the committed
//! retry policy of `deploy/nginx/hubcache.conf`: the other replica answers every request.
//!
//! Two real gateway processes over one seeded Redis and a real nginx (the `nginx` command: Debian's
//! package, which `scripts/test.sh` installs) with the `proxy_*` directives of the committed
//! configuration. `scripts/compose-test.sh` covers the graceful stop of a replica in compose.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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
        .map(|port| start_gateway(&app.gateway_redis_url(), &app.sim_url, *port))
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

    // Eight clients; one replica is killed once 200 requests were answered, and the load goes
    // on for 400 more answers after the kill.
    let answered = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let load = join_all((0..8).map(|i| {
        let client = app.client.clone();
        let lb = lb.clone();
        let (answered, done) = (&answered, &done);
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !done.load(Ordering::SeqCst) {
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
                answered.fetch_add(1, Ordering::SeqCst);
            }
            (ok, failed)
        }
    }));
    let kill = async {
        let answers = |at_least: u64| {
            let answered = &answered;
            eventually(
                Duration::from_secs(60),
                "answers through the load balancer",
                move || async move { (answered.load(Ordering::SeqCst) >= at_least).then_some(()) },
            )
        };
        answers(200).await.expect("the load runs before the kill");
        let victim = gateways.remove(0);
        drop(victim); // SIGKILL
        let at_kill = answered.load(Ordering::SeqCst);
        answers(at_kill + 400)
            .await
            .expect("the load runs on after the kill");
        done.store(true, Ordering::SeqCst);
    };
    let (results, ()) = tokio::join!(load, kill);
    let ok: u32 = results.iter().map(|(ok, _)| ok).sum();
    let failed: Vec<&String> = results.iter().flat_map(|(_, f)| f).collect();
    eprintln!(
        "gateway killed under load behind nginx: {ok} requests answered 200, {} failed",
        failed.len()
    );
    assert!(ok >= 600, "load ran: {ok}");
    assert!(failed.is_empty(), "no request fails: {failed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
