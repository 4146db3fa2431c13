//! `Client::batch` against the simulator: pacing, the journal's resume rules, failure classes
//! and expired output URLs.

use std::{path::Path, time::Duration};

use cometapi_runway::{
    mock::{Fault, MockServer, Outcome, Route, SAMPLE_MP4},
    BatchItem, BatchOptions, BatchOutcome, BatchResult, DownloadOptions, Error, ImageToVideo,
};
use futures_util::StreamExt;

fn items(dir: &Path, n: usize) -> Vec<BatchItem> {
    (0..n)
        .map(|i| {
            BatchItem::new(ImageToVideo::new(format!("https://example.com/{i}.jpg")), dir.join(format!("{i}.mp4")))
        })
        .collect()
}

async fn run(server: &MockServer, items: Vec<BatchItem>, options: BatchOptions) -> Vec<BatchResult> {
    let client = server.client().build().unwrap();
    let mut results: Vec<BatchResult> = client.batch(items, options).unwrap().collect().await;
    results.sort_by_key(|r| r.index);
    results
}

fn journal(dir: &Path) -> std::path::PathBuf {
    dir.join("journal.jsonl")
}

#[tokio::test]
async fn a_batch_saves_every_item_once_and_journals_each_step() {
    let server = MockServer::builder().not_found_polls(1).start().await;
    let dir = tempfile::tempdir().unwrap();
    let results = run(&server, items(dir.path(), 5), BatchOptions::default().journal(journal(dir.path()))).await;

    assert!(results.iter().all(BatchResult::is_ok), "{results:?}");
    assert_eq!(server.tasks_created(), 5);
    for r in &results {
        assert_eq!(std::fs::read(&r.output).unwrap(), SAMPLE_MP4);
        assert!(r.task_id.is_some());
    }
    let lines = std::fs::read_to_string(journal(dir.path())).unwrap();
    for event in ["intent", "created", "saved"] {
        assert_eq!(lines.matches(&format!("\"event\":\"{event}\"")).count(), 5, "{lines}");
    }
}

#[tokio::test]
async fn a_rerun_skips_saved_items_and_pays_for_nothing() {
    let server = MockServer::builder().not_found_polls(1).start().await;
    let dir = tempfile::tempdir().unwrap();
    let options = || BatchOptions::default().journal(journal(dir.path()));
    run(&server, items(dir.path(), 3), options()).await;
    server.clear_requests();

    let again = run(&server, items(dir.path(), 3), options()).await;
    assert!(again.iter().all(|r| matches!(r.outcome, BatchOutcome::AlreadySaved { .. })), "{again:?}");
    assert_eq!(server.tasks_created(), 3);
    assert!(server.requests().is_empty(), "nothing sent at all");
}

#[tokio::test]
async fn a_changed_item_is_a_new_item_and_a_missing_file_is_fetched_again_from_its_task() {
    let server = MockServer::builder().not_found_polls(1).start().await;
    let dir = tempfile::tempdir().unwrap();
    let options = || BatchOptions::default().journal(journal(dir.path()));
    run(&server, items(dir.path(), 2), options()).await;
    std::fs::remove_file(dir.path().join("1.mp4")).unwrap();
    let mut changed = items(dir.path(), 2);
    changed[0] = BatchItem::new(ImageToVideo::new("https://example.com/other.jpg"), dir.path().join("0.mp4"));

    let again = run(&server, changed, options()).await;
    assert!(matches!(again[0].outcome, BatchOutcome::Saved { .. }), "{:?}", again[0]);
    assert!(matches!(again[1].outcome, BatchOutcome::Saved { .. }), "{:?}", again[1]);
    assert_eq!(server.tasks_created(), 3, "only the changed item was created again");
}

#[tokio::test]
async fn an_item_whose_create_answer_was_lost_is_uncertain_and_not_created_again_unless_asked() {
    let server = MockServer::builder()
        .not_found_polls(1)
        .fault(Fault::ServerError { status: 502, times: 1, on: Route::Create })
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let options = || BatchOptions::default().journal(journal(dir.path()));

    let first = run(&server, items(dir.path(), 1), options()).await;
    assert!(matches!(first[0].outcome, BatchOutcome::Uncertain { error: Some(_) }), "{first:?}");
    assert_eq!(server.tasks_created(), 1, "the simulator made the task; its id was lost");

    let second = run(&server, items(dir.path(), 1), options()).await;
    assert!(matches!(second[0].outcome, BatchOutcome::Uncertain { error: None }), "{second:?}");
    assert_eq!(server.tasks_created(), 1, "not created again");

    let third = run(&server, items(dir.path(), 1), options().resubmit_uncertain(true)).await;
    assert!(third[0].is_ok(), "{third:?}");
    assert_eq!(server.tasks_created(), 2);
}

#[tokio::test]
async fn a_second_run_on_the_same_journal_is_refused() {
    let server = MockServer::builder().not_found_polls(1).start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = server.client().build().unwrap();
    let _running = client.batch(items(dir.path(), 1), BatchOptions::default().journal(journal(dir.path()))).unwrap();
    let err = client.batch(items(dir.path(), 1), BatchOptions::default().journal(journal(dir.path()))).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}

#[tokio::test]
async fn rate_limited_creates_are_paced_and_no_item_fails() {
    let server = MockServer::builder().not_found_polls(1).create_rate_limit(100.0, 6).start().await;
    let dir = tempfile::tempdir().unwrap();
    let results = run(&server, items(dir.path(), 12), BatchOptions::default().concurrency(8)).await;

    assert!(results.iter().all(BatchResult::is_ok), "{results:?}");
    assert_eq!(server.tasks_created(), 12);
    let limited = server.requests_on(Route::Create).len() - 12;
    assert!(limited > 0, "the limit was reached");
}

#[tokio::test]
async fn a_failed_task_is_resubmitted_once_with_a_new_seed_only_if_a_retry_may_help() {
    for (code, expected_tasks) in [("INTERNAL.BAD_OUTPUT.CODE01", 2), ("SAFETY.INPUT.IMAGE", 1), ("ASSET.INVALID", 1)] {
        let server = MockServer::builder().not_found_polls(1).outcome(Outcome::fail(code, "no")).start().await;
        let dir = tempfile::tempdir().unwrap();
        let item = BatchItem::new(ImageToVideo::new("https://example.com/a.jpg").seed(7), dir.path().join("a.mp4"));
        let results = run(&server, vec![item], BatchOptions::default().resubmit_failed(true)).await;

        assert!(matches!(&results[0].outcome, BatchOutcome::Failed(Error::TaskFailed { .. })), "{results:?}");
        assert_eq!(server.tasks_created(), expected_tasks, "{code}");
        let seeds: Vec<_> =
            server.requests_on(Route::Create).iter().map(|r| r.body_json().unwrap()["seed"].clone()).collect();
        if expected_tasks == 2 {
            assert_ne!(seeds[0], seeds[1], "a new seed");
        }
    }
}

#[tokio::test]
async fn without_resubmit_failed_a_failed_task_is_not_paid_for_twice() {
    let server = MockServer::builder().not_found_polls(1).outcome(Outcome::fail("INTERNAL", "oops")).start().await;
    let dir = tempfile::tempdir().unwrap();
    let results = run(&server, items(dir.path(), 1), BatchOptions::default().journal(journal(dir.path()))).await;
    assert!(matches!(&results[0].outcome, BatchOutcome::Failed(e) if e.retry_may_help()), "{results:?}");
    let again = run(&server, items(dir.path(), 1), BatchOptions::default().journal(journal(dir.path()))).await;
    assert!(matches!(&again[0].outcome, BatchOutcome::Failed(Error::TaskFailed { .. })), "{again:?}");
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn an_expired_output_url_is_refreshed_by_polling_the_task_again() {
    let server = MockServer::builder().not_found_polls(1).output_url_ttl(Duration::from_millis(50)).start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = server.client().build().unwrap();
    let task = client.generate(&ImageToVideo::new("https://example.com/a.jpg")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;

    let stale = client.download(&task.output[0], dir.path().join("stale.mp4")).await.unwrap_err();
    assert!(stale.is_expired_output(), "{stale:?}");
    let bytes = client.download_output(&task, dir.path().join("a.mp4"), &DownloadOptions::default()).await.unwrap();
    assert_eq!(bytes, SAMPLE_MP4.len() as u64);
    let by_id =
        client.download_task_output(&task.id, dir.path().join("b.mp4"), &DownloadOptions::default()).await.unwrap();
    assert_eq!(by_id, bytes);
}

#[tokio::test]
async fn stopping_a_batch_creates_nothing_more_and_leaves_rendering_tasks_to_a_rerun() {
    let server = MockServer::builder()
        .not_found_polls(1)
        .running_for(Duration::from_secs(30))
        .fault_on(Route::Create, Fault::Slow { delay: Duration::from_millis(80), times: 100 })
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let client = server.client().build().unwrap();
    let mut batch = client
        .batch(items(dir.path(), 6), BatchOptions::default().concurrency(1).journal(journal(dir.path())))
        .unwrap();
    let stopper = batch.stopper();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stopper.stop();
    });
    let mut results: Vec<BatchResult> = (&mut batch).collect().await;
    results.sort_by_key(|r| r.index);
    let created = server.tasks_created();
    assert!((1..6).contains(&created), "{created}");
    let interrupted = results.iter().filter(|r| matches!(r.outcome, BatchOutcome::Interrupted)).count();
    assert_eq!(interrupted, created, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.is_ok() || r.task_id.is_some() || matches!(r.outcome, BatchOutcome::NotStarted { .. })));
}

#[tokio::test]
async fn a_download_cut_short_by_a_killed_run_leaves_no_partial_file_after_the_rerun() {
    let server = MockServer::builder().not_found_polls(1).start().await;
    let dir = tempfile::tempdir().unwrap();
    // What a SIGKILL mid-download leaves: the temporary file no destructor removed.
    let partial = dir.path().join(".cometapi-download-AbC123.part");
    std::fs::write(&partial, b"half a vid").unwrap();
    let results = run(&server, items(dir.path(), 1), BatchOptions::default().journal(journal(dir.path()))).await;
    assert!(results[0].is_ok(), "{results:?}");
    assert!(!partial.exists());
}

#[tokio::test]
async fn a_resubmit_whose_answer_was_lost_stays_uncertain_and_is_not_made_again() {
    let server = MockServer::builder().not_found_polls(1).outcome(Outcome::fail("INTERNAL", "oops")).start().await;
    let dir = tempfile::tempdir().unwrap();
    let options = || BatchOptions::default().journal(journal(dir.path())).resubmit_failed(true);
    run(&server, items(dir.path(), 1), BatchOptions::default().journal(journal(dir.path()))).await;
    assert_eq!(server.tasks_created(), 1);

    server.add_fault(Fault::ServerError { status: 502, times: 1, on: Route::Create });
    let second = run(&server, items(dir.path(), 1), options()).await;
    assert!(matches!(second[0].outcome, BatchOutcome::Uncertain { error: Some(_) }), "{second:?}");
    assert_eq!(server.tasks_created(), 2, "the resubmit reached the service; its answer did not");

    let third = run(&server, items(dir.path(), 1), options()).await;
    assert!(matches!(third[0].outcome, BatchOutcome::Uncertain { error: None }), "{third:?}");
    assert_eq!(server.tasks_created(), 2, "not a third task");
}
