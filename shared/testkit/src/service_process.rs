//! A service binary running as a child process, for lifecycle tests: signals and exit codes
//! can only be checked on a real process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::Exited;

/// A running service binary with only the given environment; its stdout and stderr are
/// collected (by threads, so a chatty process never blocks on a full pipe). Killed on drop.
pub struct ServiceProcess {
    binary: PathBuf,
    child: Child,
    output: Vec<JoinHandle<String>>,
}

impl ServiceProcess {
    /// Starts `binary` with only `env` (no inherited variables) and no arguments.
    pub fn start(binary: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("stdout piped")?;
        let stderr = child.stderr.take().context("stderr piped")?;
        let output = vec![collect(stdout), collect(stderr)];
        Ok(Self {
            binary: binary.to_path_buf(),
            child,
            output,
        })
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM (what `docker stop` and Kubernetes send), with the system's `kill`.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -TERM failed: {status}");
        Ok(())
    }

    /// Waits until it exits and returns its status and output; fails (killing it) if it still
    /// runs after `timeout`.
    pub fn wait_for_exit(mut self, timeout: Duration) -> anyhow::Result<Exited> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let output = self.take_output();
                bail!(
                    "{} still running {timeout:?} later; its output:\n{output}",
                    self.binary.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Exited {
            status,
            output: self.take_output(),
        })
    }

    /// Everything it wrote so far (waits for the pipes to close, so only once it exited).
    fn take_output(&mut self) -> String {
        self.output
            .drain(..)
            .map(|reader| reader.join().unwrap_or_default())
            .collect()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut pipe: impl std::io::Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Time a service binary may take to start on a loaded machine, on top of its shutdown timeout.
const STARTUP_SLACK: Duration = Duration::from_secs(20);

/// Asserts the lifecycle contract for a failure: `binary`, started with `env` plus the
/// test-only `HUBCACHE_TEST_PANIC_TASK=task`, exits with a failure status within its shutdown
/// timeout (plus start-up time), and logs the cause exactly once.
pub fn assert_task_panic_exits_non_zero(
    binary: &Path,
    env: &[(&str, &str)],
    task: &str,
    shutdown_timeout: Duration,
) {
    let mut env = env.to_vec();
    env.push(("HUBCACHE_TEST_PANIC_TASK", task));
    let process = ServiceProcess::start(binary, &env).expect("the binary starts");
    let exited = process
        .wait_for_exit(shutdown_timeout + STARTUP_SLACK)
        .unwrap_or_else(|e| panic!("a panicking task `{task}` must stop the process: {e:#}"));
    assert!(
        !exited.status.success(),
        "a panicking task must make the process exit non-zero: {}\n{}",
        exited.status,
        exited.output
    );
    assert_eq!(
        exited.output.matches("stopped unexpectedly").count(),
        1,
        "the cause is logged once: {}",
        exited.output
    );
    assert!(
        exited.output.contains(&format!("task `{task}` panicked")),
        "the log names the task and the panic: {}",
        exited.output
    );
}

/// Asserts the lifecycle contract for a requested stop: `binary`, started with `env`, answers
/// `GET /livez` with 200 on `livez_port`, and after SIGTERM exits 0 within its shutdown timeout.
pub async fn assert_sigterm_exits_zero(
    binary: &Path,
    env: &[(&str, &str)],
    livez_port: u16,
    shutdown_timeout: Duration,
) {
    let mut process = ServiceProcess::start(binary, env).expect("the binary starts");
    crate::eventually(STARTUP_SLACK, "GET /livez answering 200", || {
        assert!(
            process.is_running(),
            "the binary exited before /livez answered"
        );
        async move { (livez_status(livez_port).await == Some(200)).then_some(()) }
    })
    .await
    .expect("the service comes up and reports itself alive");
    process.terminate().expect("SIGTERM sent");
    let exited = tokio::task::spawn_blocking(move || {
        process.wait_for_exit(shutdown_timeout + Duration::from_secs(5))
    })
    .await
    .expect("no panic")
    .expect("SIGTERM stops the service within its shutdown timeout");
    assert!(
        exited.status.success(),
        "a clean SIGTERM exits 0: {}\n{}",
        exited.status,
        exited.output
    );
    assert!(
        exited.output.contains("SIGTERM received"),
        "the signal is logged: {}",
        exited.output
    );
}

/// The status of `GET /livez` on loopback `port`, `None` while nothing answers there.
async fn livez_status(port: u16) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    // "HTTP/1.1 200 OK"
    std::str::from_utf8(response.get(9..12)?).ok()?.parse().ok()
}
