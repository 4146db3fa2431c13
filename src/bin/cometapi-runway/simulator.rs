//! The built-in simulator of the service as `--mock` starts it (`mock-server` has its own file).

use std::time::Duration;

use cometapi_runway::mock::{MockServer, MockServerBuilder};

/// Timings for `--mock`: short enough to try, long enough to watch the progress move; invisible
/// for the simulator's default second after creation, like the real route.
pub fn for_cli() -> MockServerBuilder {
    MockServer::builder().pending_for(Duration::from_millis(500)).running_for(Duration::from_secs(2))
}
