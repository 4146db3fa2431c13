//! A large batch against a simulator that limits creates to R per second: how close
//! `Client::batch` comes to the ideal (items ÷ R, plus one render), and that no item fails on
//! a `429`.

use std::time::{Duration, Instant};

use cometapi_runway::{
    mock::{MockServer, Route},
    BatchItem, BatchOptions, ImageToVideo, PollPolicy, WaitOptions,
};
use futures_util::StreamExt;

use crate::stats::{heading, verdict};

/// The batch's poll interval here.
const POLL: Duration = Duration::from_millis(250);

pub struct Sizes {
    pub items: usize,
    /// Creates allowed per second (the bucket holds one second's worth).
    pub rate: u32,
    pub pending: Duration,
    pub running: Duration,
    /// `BatchOptions::concurrency`: creates in flight at most.
    pub concurrency: usize,
}

pub const FULL: Sizes = Sizes {
    items: 1_000,
    rate: 50,
    pending: Duration::from_millis(500),
    running: Duration::from_secs(2),
    concurrency: 16,
};
pub const SMOKE: Sizes = Sizes {
    items: 40,
    rate: 20,
    pending: Duration::from_millis(50),
    running: Duration::from_millis(200),
    concurrency: 8,
};

/// Returns whether every item was saved, each by exactly one task.
pub fn run(sizes: &Sizes) -> bool {
    heading(&format!("Batch: {} items against a simulator allowing {} creates/s", sizes.items, sizes.rate));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(batch(sizes))
}

async fn batch(sizes: &Sizes) -> bool {
    let server = MockServer::builder()
        .create_rate_limit(f64::from(sizes.rate), sizes.rate)
        .pending_for(sizes.pending)
        .running_for(sizes.running)
        .start()
        .await;
    // Polls every 250 ms (as the CLI's --mock does): the default schedule is tuned for renders of
    // tens of seconds and would measure the poll policy here, not the batch's pacing.
    let wait = WaitOptions::default().poll_policy(PollPolicy::fixed(POLL));
    let client = server.client().wait_options(wait).build().expect("a client");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let items: Vec<BatchItem> = (0..sizes.items)
        .map(|i| {
            let request = ImageToVideo::new(format!("https://example.com/{i}.jpg")).seed(i as u64);
            BatchItem::named_by_task(request, dir.path(), format!("{i:04}-"))
        })
        .collect();
    let options = BatchOptions::default()
        .concurrency(sizes.concurrency)
        .max_active(sizes.items)
        .journal(dir.path().join("journal.jsonl"));
    let started = Instant::now();
    let results: Vec<_> = client.batch(items, options).expect("the journal opens").collect().await;
    let elapsed = started.elapsed().as_secs_f64();

    let saved = results.iter().filter(|r| r.is_ok()).count();
    let created = server.tasks_created();
    let refused = server.requests_on(Route::Create).len().saturating_sub(created);
    let ideal = sizes.items as f64 / f64::from(sizes.rate) + (sizes.pending + sizes.running).as_secs_f64();
    let ratio = elapsed / ideal;
    println!(
        "simulator: token bucket of {rate}/s (burst {rate}), 429 with Retry-After; pending {:?}, running {:?}; \
         polls every {POLL:?}; BatchOptions::concurrency({}), journal on disk, every video downloaded",
        sizes.pending,
        sizes.running,
        sizes.concurrency,
        rate = sizes.rate,
    );
    println!();
    println!("| items | R (creates/s) | ideal (items ÷ R + one render) | measured | measured ÷ ideal | saved | tasks created | creates refused with 429 |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {ideal:.2} s | {elapsed:.2} s | {ratio:.3} | {saved} | {created} | {refused} |",
        sizes.items, sizes.rate
    );
    println!();
    println!(
        "target: within 1.1x of the ideal, no item failed by 429: {}",
        verdict(ratio <= 1.1 && saved == sizes.items)
    );
    saved == sizes.items && created == sizes.items
}
