//! `cometapi-runway`: image to video from the command line, against CometAPI or the built-in
//! simulator. Parses, dispatches, and turns every outcome into an exit code.

mod args;
mod commands;
mod exit;
mod image;
mod output;
mod progress;
mod simulator;

use std::{io::IsTerminal, process::ExitCode};

use clap::Parser;
use serde_json::json;

use crate::{
    args::{Cli, Command},
    commands::Session,
    exit::Failure,
    progress::Progress,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return bad_command_line(e),
    };
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.global.json;
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            output::failure(&failure, json);
            failure.code.into()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let global = &cli.global;
    match &cli.command {
        Command::Generate { request: args, wait } => {
            let request = commands::request(args)?;
            commands::check_output(wait)?;
            if args.check_image {
                commands::check_images(&request, &Progress::new(global.quiet, global.verbose > 0)).await?;
            }
            if args.dry_run {
                return commands::dry_run(&request);
            }
            Session::connect(global).await?.generate(&request, wait).await
        }
        Command::Create { request: args } => {
            let request = commands::request(args)?;
            if args.check_image {
                commands::check_images(&request, &Progress::new(global.quiet, global.verbose > 0)).await?;
            }
            if args.dry_run {
                return commands::dry_run(&request);
            }
            Session::connect(global).await?.create(&request).await
        }
        Command::Status { id } => Session::connect(global).await?.status(id).await,
        Command::Wait { id, wait } => {
            commands::check_output(wait)?;
            Session::connect(global).await?.wait(id, wait).await
        }
        Command::Ratios => {
            commands::ratios::run(global.json);
            Ok(())
        }
        Command::Models => {
            commands::models::run(global.json);
            Ok(())
        }
        Command::MockServer(args) => commands::mock_server::run(args, global.json, global.quiet).await,
        Command::Schema => commands::schema::run(global.json),
    }
}

/// clap's own report (help and version included); with `--json` an error is also the one
/// JSON object on stdout, so scripts never have to parse clap's text.
fn bad_command_line(e: clap::Error) -> ExitCode {
    let _ = e.print();
    let wants_json = std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    if wants_json && e.use_stderr() {
        let rendered = e.render().to_string();
        let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ");
        output::json_line(&json!({"error": {"kind": "usage", "message": message, "exit_code": e.exit_code()}}));
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// `-v`: the library's request log; `-vv`: everything it traces. Only the library's own
/// events are shown: it never records the key, and no arguments are ever logged here.
fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!("cometapi_runway={level}")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
