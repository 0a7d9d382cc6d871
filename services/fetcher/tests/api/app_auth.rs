//! GitHub App authentication end to end against github-sim: two orgs, two installations, each
//! org polled with its own installation token (its own budget), tokens renewed before they
//! expire with no failed poll, and a revoked installation reported for its org only.

use std::time::Duration;

use hubcache_testkit::{AppKeyPair, eventually};

use crate::helpers::{APP_ID, TestOptions, spawn_app_with};

#[tokio::test]
async fn two_orgs_use_their_installations_renew_in_time_and_a_revocation_stays_local() {
    let keys = AppKeyPair::generate().expect("an App key");
    let app = spawn_app_with(TestOptions {
        sim_orgs: "alpha,beta",
        app_public_key: Some(keys.public_key_path()),
        installation_token_ttl_secs: 3,
        ..TestOptions::default()
    })
    .await;
    let mut settings = app.settings_for(&["alpha", "beta"], None);
    settings.common.github_app_id = Some(APP_ID.to_owned());
    settings.common.github_app_private_key_file = Some(keys.private_key_path());
    let fetcher = app.start_fetcher_from(settings).await;
    let alpha = app.sim.installation_of("alpha").await;
    let beta = app.sim.installation_of("beta").await;

    // Each org's requests carry its own installation's token (and spend its own budget).
    eventually(
        Duration::from_secs(20),
        "each org polled with its installation",
        || async {
            (app.sim
                .requests_with("/orgs/alpha", &format!("installation-{alpha}"))
                .await
                > 0
                && app
                    .sim
                    .requests_with("/orgs/beta", &format!("installation-{beta}"))
                    .await
                    > 0)
            .then_some(())
        },
    )
    .await
    .expect("both installations used");
    assert_eq!(
        app.sim
            .requests_with("/orgs/alpha", &format!("installation-{beta}"))
            .await,
        0
    );

    // Tokens live 3 s: several renewals happen, and no poll fails at a switch.
    eventually(Duration::from_secs(20), "renewed tokens", || async {
        (app.sim.tokens_issued(alpha).await >= 3).then_some(())
    })
    .await
    .expect("tokens renewed");
    assert!(
        app.status_of("alpha", "/orgs/alpha")
            .await
            .failing_reason()
            .is_none()
    );
    assert_eq!(app.sim.stat("rate_limited").await, 0);

    // Revoke beta's installation: reported for beta, alpha goes on.
    app.sim.revoke_installation(beta).await;
    let status = eventually(
        Duration::from_secs(20),
        "beta's revocation reported",
        || async {
            let status = app.status_of("beta", "/orgs/beta").await;
            (status.last_error_reason.as_deref() == Some("installation_revoked")).then_some(status)
        },
    )
    .await
    .expect("revocation reported");
    assert!(status.last_error.is_some_and(|e| !e.contains("ghs_")));
    let before = app.sim.tokens_issued(alpha).await;
    eventually(
        Duration::from_secs(20),
        "alpha still renewed and polled",
        || async { (app.sim.tokens_issued(alpha).await > before).then_some(()) },
    )
    .await
    .expect("alpha unaffected");
    assert!(
        app.status_of("alpha", "/orgs/alpha")
            .await
            .failing_reason()
            .is_none()
    );
    fetcher.stop().await;
}

#[tokio::test]
async fn one_installations_spent_limit_pauses_its_org_only() {
    let keys = AppKeyPair::generate().expect("an App key");
    let app = spawn_app_with(TestOptions {
        sim_orgs: "alpha,beta",
        app_public_key: Some(keys.public_key_path()),
        ..TestOptions::default()
    })
    .await;
    let mut settings = app.settings_for(&["alpha", "beta"], None);
    settings.common.github_app_id = Some(APP_ID.to_owned());
    settings.common.github_app_private_key_file = Some(keys.private_key_path());
    let beta = app.sim.installation_of("beta").await;
    let beta_label = format!("installation-{beta}");
    // Beta's installation has spent its limit for the next ten minutes; alpha's is untouched.
    app.sim
        .set_rate_limit(serde_json::json!({
            "credential": beta_label, "remaining": 0, "reset_in_secs": 600
        }))
        .await;
    let fetcher = app.start_fetcher_from(settings).await;

    let status = eventually(
        Duration::from_secs(20),
        "beta's refusal recorded",
        || async {
            let status = app.status_of("beta", "/orgs/beta").await;
            (status.failing_reason() == Some("rate_limited")).then_some(status)
        },
    )
    .await
    .expect("beta rate limited");
    assert!(status.last_error.is_some_and(|e| !e.contains("ghs_")));
    let beta_sent = app.sim.stats().await["by_credential"][&beta_label].clone();
    // Alpha goes on polling at its interval (1 s) with its own budget ...
    let alpha_label = format!("installation-{}", app.sim.installation_of("alpha").await);
    let alpha_before = app.sim.requests_with("/orgs/alpha", &alpha_label).await;
    eventually(Duration::from_secs(20), "alpha polled again", || async {
        (app.sim.requests_with("/orgs/alpha", &alpha_label).await >= alpha_before + 3).then_some(())
    })
    .await
    .expect("alpha unaffected");
    // ... while nothing more went to GitHub with beta's spent installation.
    assert_eq!(
        app.sim.stats().await["by_credential"][&beta_label],
        beta_sent,
        "no request into beta's spent limit, on any of its paths"
    );
    assert!(
        app.status_of("alpha", "/orgs/alpha")
            .await
            .failing_reason()
            .is_none()
    );
    fetcher.stop().await;
}
