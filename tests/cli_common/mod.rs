//! What the CLI tests share: the binary, a command for it that takes nothing from the user's
//! environment and stays out of their cache folder, and a simulator on its own runtime.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::{
    path::Path,
    process::{Child, Stdio},
    time::Duration,
};

use cometapi_runway::mock::{MockServer, MockServerBuilder, Route};
use serde_json::Value;
use tokio::runtime::Runtime;

pub const BIN: &str = env!("CARGO_BIN_EXE_cometapi-runway");

/// The binary, run in `dir`, with no key or base URL from the environment, and learning off:
/// timings learned from a simulator stay out of the user's cache folder.
pub fn process(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("COMETAPI_KEY")
        .env_remove("COMETAPI_BASE_URL")
        .env("COMETAPI_RUNWAY_NO_LEARN", "1");
    cmd
}

/// [`process`] as an `assert_cmd` command, killed if it runs past a minute.
pub fn command(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::from_std(process(dir));
    cmd.timeout(Duration::from_secs(60));
    cmd
}

/// A simulator running on its own runtime for as long as this value lives.
pub struct Sim {
    pub server: MockServer,
    _rt: Runtime,
}

impl Sim {
    pub fn start(builder: MockServerBuilder) -> Sim {
        let rt = Runtime::new().unwrap();
        let server = rt.block_on(builder.start());
        Sim { server, _rt: rt }
    }

    /// The flags pointing the binary at this simulator, polling every 10 ms.
    pub fn args(&self) -> Vec<String> {
        ["--base-url", self.server.base_url(), "--api-key", self.server.api_key(), "--poll-interval", "10ms"]
            .map(String::from)
            .to_vec()
    }

    /// The binary pointed at this simulator, in `dir`.
    pub fn cmd(&self, dir: &Path) -> assert_cmd::Command {
        let mut cmd = command(dir);
        cmd.args(self.args());
        cmd
    }

    /// The binary pointed at this simulator with `args`, started in the background with its
    /// output piped.
    pub fn spawn(&self, dir: &Path, args: &[&str]) -> Child {
        process(dir)
            .args(self.args())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The bodies of the creates the simulator received, in order.
    pub fn create_bodies(&self) -> Vec<Value> {
        self.server.requests_on(Route::Create).iter().map(|r| r.body_json().unwrap()).collect()
    }
}
