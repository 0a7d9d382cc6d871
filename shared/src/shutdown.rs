//! Graceful shutdown, one approach for every service (as in mini-redis and linkerd2-proxy).
//!
//! `main` creates a [`CancellationToken`] and hands a clone to every task; each task `select!`s
//! between its work and `token.cancelled()`. On SIGINT/SIGTERM ([`signal`]) main cancels the
//! token, then waits for the tasks with [`drain`], giving up after `SHUTDOWN_TIMEOUT_SECS`.

use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

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

/// Waits for `tasks` to finish after cancellation, at most `timeout`. Returns whether all
/// finished in time; stragglers are aborted.
pub async fn drain(tasks: Vec<tokio::task::JoinHandle<()>>, timeout: Duration) -> bool {
    let aborters: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let all = futures_join_all(tasks);
    match tokio::time::timeout(timeout, all).await {
        Ok(()) => true,
        Err(_) => {
            tracing::warn!(?timeout, "tasks did not stop in time; aborting them");
            for a in aborters {
                a.abort();
            }
            false
        }
    }
}

async fn futures_join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        if let Err(e) = task.await
            && e.is_panic()
        {
            tracing::error!(error = %e, "a task panicked");
        }
    }
}
