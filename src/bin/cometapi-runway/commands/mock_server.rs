//! `mock-server`: the simulator of the service, standalone.

use cometapi_runway::mock::MockServer;
use serde_json::json;

use crate::{
    args::{FaultArg, MockServerArgs},
    exit::{Code, Failure},
    output,
};

/// `mock-server`: serves until Ctrl-C, after printing where and with which key.
pub async fn run(args: &MockServerArgs, json: bool, quiet: bool) -> Result<(), Failure> {
    let mut builder = MockServer::builder()
        .api_key(args.key.clone())
        .port(args.port)
        .shape(args.shape.into())
        .invisible_for(args.invisible_for)
        .throttled_for(args.throttled_for)
        .pending_for(args.pending_for)
        .running_for(args.running_for)
        .report_progress(!args.no_progress)
        .outcome(args.outcome.clone())
        .check_models(!args.no_model_checks);
    if let Some((rate, burst)) = args.create_rate {
        builder = builder.create_rate_limit(rate, burst);
    }
    if let Some(ttl) = args.output_url_ttl {
        builder = builder.output_url_ttl(ttl);
    }
    if let Some(n) = args.not_found_polls {
        builder = builder.not_found_polls(n);
    }
    for FaultArg { fault, route } in &args.faults {
        builder = match route {
            Some(route) => builder.fault_on(*route, fault.clone()),
            None => builder.fault(fault.clone()),
        };
    }
    let server = builder.try_start().await.map_err(|e| {
        Failure::new(Code::Api, "io", format!("cannot listen on 127.0.0.1:{}: {e}; try another --port", args.port))
    })?;
    // The key is printed on purpose: it is the simulator's own, never the user's COMETAPI_KEY.
    if json {
        output::json_line(&json!({"base_url": server.base_url(), "api_key": server.api_key()}));
    } else {
        output::text(&format!("COMETAPI_BASE_URL={}\nCOMETAPI_KEY={}", server.base_url(), server.api_key()));
    }
    if !quiet {
        eprintln!("simulator of CometAPI's Runway routes listening on {}; Ctrl-C to stop", server.base_url());
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = server.run_forever() => {
            return Err(Failure::new(Code::Api, "error", "the simulator stopped unexpectedly"));
        }
    }
    Ok(())
}
