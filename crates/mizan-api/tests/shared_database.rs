#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Two servers on one PostgreSQL database: what one of them keeps in memory (a
//! session, a freeze) follows what the other writes, within the writer's idle
//! interval (`mizan_api::state::SHARED_DATABASE_IDLE_MS`).

mod common;

use std::time::{Duration, Instant};

use common::*;

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.me(token).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_through_one_server_is_refused_by_the_other() {
    let store = tokio::task::spawn_blocking(TestStore::postgres)
        .await
        .unwrap();
    let mut config = test_config();
    store.configure_vault_keys(&mut config);
    let shared = store.sharing();
    let first = spawn_app_in(store, config.clone()).await;
    let second = spawn_app_in(shared, config).await;

    let token = first.person("amina").await;
    // The second server reads the session (and keeps it) ...
    for _ in 0..3 {
        assert_eq!(me_status(&second, &token).await, 200);
    }
    // ... which the first ends: a rows-only commit, no money moved.
    let ended = first
        .client
        .delete(first.url("/v1/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    assert_eq!(me_status(&first, &token).await, 401);
    let started = Instant::now();
    while me_status(&second, &token).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the second server still accepts the ended session"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    second.stop().await;
    first.stop().await;
}
