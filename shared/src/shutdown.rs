//! Graceful shutdown and task supervision, one approach for every service (as in mini-redis and
//! linkerd2-proxy).
//!
//! Each service's `run_until_stopped` makes a token that [`cancel_on_signal`] cancels on
//! SIGINT/SIGTERM and hands it to `run`, which spawns its long-lived tasks on a [`Supervisor`]
//! (each task `select!`s between its work and the token) and calls [`Supervisor::supervise`]:
//!
//! - a task that ends before shutdown was requested (returning `Ok` early, an error, or a
//!   panic) is a failure: its cause is logged once, the token is cancelled so every other task
//!   stops, and `supervise` returns a [`SupervisionError`];
//! - after cancellation (a signal or a failure) the tasks are drained, at most
//!   `SHUTDOWN_TIMEOUT_SECS`; stragglers are aborted and that is a failure too;
//! - a clean, signal-initiated shutdown returns `Ok`.
//!
//! `main` turns the result into the exit code with [`exit_code`]: non-zero whenever anything
//! failed, so an orchestrator restarts the process instead of it hanging half alive.

use std::collections::HashMap;
use std::future::Future;
use std::process::ExitCode;
use std::task::Poll;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
pub use tokio_util::sync::CancellationToken;

/// Test-only hook: when this environment variable names a supervised task, that task panics
/// right after it started (after its first poll). It exists so the integration tests can
/// prove that a crashing task stops the real binaries with a failure exit code; the name is
/// deliberately loud, and the supervisor logs a warning whenever it is set. Never set it in a
/// deployment.
pub const TEST_PANIC_TASK_VAR: &str = "HUBCACHE_TEST_PANIC_TASK";

/// Why a supervised service stopped other than by a clean, requested shutdown.
#[derive(Debug, thiserror::Error)]
pub enum SupervisionError {
    /// A task returned `Ok` although nobody asked it to stop: a task must run until cancelled.
    #[error("task `{task}` ended before shutdown was requested")]
    EndedEarly {
        /// The task's name.
        task: &'static str,
    },
    /// A task returned an error.
    #[error("task `{task}` failed: {cause:#}")]
    Failed {
        /// The task's name.
        task: &'static str,
        /// What it returned.
        cause: anyhow::Error,
    },
    /// A task panicked.
    #[error("task `{task}` panicked: {message}")]
    Panicked {
        /// The task's name.
        task: &'static str,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// Tasks were still running `timeout` after cancellation and were aborted.
    #[error("tasks {tasks:?} did not stop within {timeout:?} and were aborted")]
    DrainTimedOut {
        /// The names of the tasks that were aborted.
        tasks: Vec<&'static str>,
        /// The shutdown timeout that elapsed.
        timeout: Duration,
    },
    /// The supervisor itself lost track of a task (a bug).
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Named tasks that stop together: the first one to end unexpectedly cancels the rest.
///
/// Spawn every long-lived task of a service on it with [`Supervisor::spawn`], giving each
/// `task` a clone of the token it was built with, then await [`Supervisor::supervise`].
#[derive(Debug)]
pub struct Supervisor {
    stop: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, &'static str>,
    test_panic_task: Option<String>,
}

impl Supervisor {
    /// A supervisor whose tasks stop when `stop` is cancelled, which it also cancels itself
    /// when one of them fails.
    pub fn new(stop: CancellationToken) -> Self {
        let test_panic_task = std::env::var(TEST_PANIC_TASK_VAR).ok();
        if let Some(task) = &test_panic_task {
            tracing::warn!(
                task = %task,
                "{TEST_PANIC_TASK_VAR} is set: that task will panic on purpose (test-only hook)"
            );
        }
        Self {
            stop,
            tasks: JoinSet::new(),
            names: HashMap::new(),
            test_panic_task,
        }
    }

    /// The token the tasks stop on (cancelled on a signal or on the first failure).
    pub fn token(&self) -> &CancellationToken {
        &self.stop
    }

    /// Spawns `task` under `name` (used in logs and errors; keep it short and fixed). The task
    /// must run until the token is cancelled and then return `Ok` promptly.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handle = if self.test_panic_task.as_deref() == Some(name) {
            self.tasks.spawn(panic_after_start(name, task))
        } else {
            self.tasks.spawn(task)
        };
        self.names.insert(handle.id(), name);
    }

    /// Waits until the token is cancelled or a task ends unexpectedly (which cancels the token),
    /// then waits for every task, at most `timeout`, aborting those still running.
    ///
    /// `Ok` only when shutdown was requested from outside and every task stopped cleanly in
    /// time. Otherwise the first cause, logged once here (later failures are logged as they
    /// come), so callers need not log it again.
    pub async fn supervise(mut self, timeout: Duration) -> Result<(), SupervisionError> {
        let mut first_failure = None;
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                Some(joined) = self.tasks.join_next_with_id() => {
                    if let Some(failure) = self.judge(joined) {
                        first_failure = Some(failure);
                        self.stop.cancel();
                        break;
                    }
                }
            }
        }
        let drained = tokio::time::timeout(timeout, async {
            while let Some(joined) = self.tasks.join_next_with_id().await {
                if let Some(failure) = self.judge(joined) {
                    first_failure.get_or_insert(failure);
                }
            }
        })
        .await;
        if drained.is_err() {
            let mut tasks: Vec<_> = self.names.values().copied().collect();
            tasks.sort_unstable();
            self.tasks.abort_all();
            let failure = SupervisionError::DrainTimedOut { tasks, timeout };
            tracing::error!(error = %failure, "shutdown timed out");
            first_failure.get_or_insert(failure);
        }
        match first_failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Classifies how a task ended (forgetting its name); logs and returns it if it is a failure.
    fn judge(
        &mut self,
        joined: Result<(Id, anyhow::Result<()>), JoinError>,
    ) -> Option<SupervisionError> {
        let (id, result) = match joined {
            Ok((id, result)) => (id, Ok(result)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(task) = self.names.remove(&id) else {
            let failure = SupervisionError::Unexpected(anyhow::anyhow!("an unnamed task ended"));
            tracing::error!(error = %failure, "supervisor bug");
            return Some(failure);
        };
        let failure = match result {
            Ok(Ok(())) if self.stop.is_cancelled() => {
                tracing::debug!(task, "task stopped");
                return None;
            }
            Ok(Ok(())) => SupervisionError::EndedEarly { task },
            Ok(Err(cause)) => SupervisionError::Failed { task, cause },
            Err(e) if e.is_panic() => SupervisionError::Panicked {
                task,
                message: panic_message(e.into_panic()),
            },
            Err(_) => SupervisionError::Unexpected(anyhow::anyhow!("task `{task}` was cancelled")),
        };
        tracing::error!(task, error = %failure, "task stopped unexpectedly; stopping the service");
        Some(failure)
    }
}

/// The test-only fault of [`TEST_PANIC_TASK_VAR`]: runs `task` until its first `Pending`, then
/// panics (a task that finishes in its first poll is left alone).
async fn panic_after_start<F>(name: &'static str, task: F) -> F::Output
where
    F: Future,
{
    let mut task = std::pin::pin!(task);
    if let Poll::Ready(output) = futures::poll!(task.as_mut()) {
        return output;
    }
    panic!("{TEST_PANIC_TASK_VAR}={name}: injected panic");
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// A fresh token that is cancelled on the first SIGINT or SIGTERM (see [`signal`]).
pub fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = signal() => trigger.cancel(),
            // Stopped for another reason: nothing left to watch for.
            () = trigger.cancelled() => {}
        }
    });
    token
}

/// The process exit code for what `run_until_stopped` returned: success only for a clean
/// shutdown. A [`SupervisionError`] was logged where it happened; any other error is logged
/// here, so every cause appears once in the log.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<SupervisionError>().is_none() {
                tracing::error!(error = %format!("{e:#}"), "stopped with an error");
            }
            ExitCode::FAILURE
        }
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (docker stop, Kubernetes).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOON: Duration = Duration::from_secs(5);

    /// A task that runs until `stop` is cancelled, then returns `Ok`.
    async fn well_behaved(stop: CancellationToken) -> anyhow::Result<()> {
        stop.cancelled().await;
        Ok(())
    }

    async fn supervise_with(
        stop: &CancellationToken,
        odd_one: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Result<(), SupervisionError> {
        let mut supervisor = Supervisor::new(stop.clone());
        supervisor.spawn("steady", well_behaved(stop.clone()));
        supervisor.spawn("odd", odd_one);
        tokio::time::timeout(SOON, supervisor.supervise(Duration::from_secs(1)))
            .await
            .expect("supervise returns within the drain timeout")
    }

    #[tokio::test]
    async fn a_requested_shutdown_with_clean_tasks_is_ok() {
        let stop = CancellationToken::new();
        let trigger = stop.clone();
        let supervised = tokio::spawn({
            let stop = stop.clone();
            async move { supervise_with(&stop, well_behaved(stop.clone())).await }
        });
        trigger.cancel();
        let result = supervised.await.expect("no panic");
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn a_panicking_task_stops_the_others_and_is_reported() {
        let stop = CancellationToken::new();
        let err = supervise_with(&stop, async { panic!("boom") })
            .await
            .expect_err("a panic is a failure");
        assert!(
            matches!(&err, SupervisionError::Panicked { task: "odd", message } if message == "boom"),
            "{err:?}"
        );
        assert!(stop.is_cancelled(), "the other tasks were told to stop");
    }

    #[tokio::test]
    async fn a_task_ending_early_or_failing_is_a_failure() {
        let stop = CancellationToken::new();
        let err = supervise_with(&stop, async { Ok(()) })
            .await
            .expect_err("early end");
        assert!(
            matches!(err, SupervisionError::EndedEarly { task: "odd" }),
            "{err:?}"
        );

        let stop = CancellationToken::new();
        let err = supervise_with(&stop, async { anyhow::bail!("redis went away") })
            .await
            .expect_err("an error");
        assert!(err.to_string().contains("redis went away"), "{err}");
        assert!(matches!(err, SupervisionError::Failed { task: "odd", .. }));
    }

    #[tokio::test]
    async fn a_task_ignoring_cancellation_is_aborted_after_the_timeout() {
        let stop = CancellationToken::new();
        stop.cancel();
        let err = supervise_with(&stop, std::future::pending())
            .await
            .expect_err("a drain timeout is a failure");
        assert!(
            matches!(&err, SupervisionError::DrainTimedOut { tasks, .. } if tasks == &["odd"]),
            "{err:?}"
        );
    }

    #[test]
    fn only_a_clean_shutdown_exits_zero() {
        assert_eq!(exit_code(Ok(())), ExitCode::SUCCESS);
        let logged = SupervisionError::EndedEarly { task: "x" };
        assert_eq!(exit_code(Err(logged.into())), ExitCode::FAILURE);
        assert_eq!(exit_code(Err(anyhow::anyhow!("other"))), ExitCode::FAILURE);
    }
}
