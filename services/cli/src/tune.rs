//! `faasconf tune`: starts a tuning session against a cluster's actuator, follows it — one line
//! per iteration (cost, latency, QoS verdict, what changed) under a progress bar, or JSON Lines
//! with `--json` — and stops it on Ctrl-C or SIGTERM (`StopTuning`, then the session's summary).
//! `faasconf demo` follows its session with the same lines ([`follow`], [`iteration_line`]).

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, bail};
use faasconf_proto::states::{tuning_is_active, tuning_state_name};
use faasconf_proto::v1::{self, TuningSessionState, policy_client::PolicyClient};
use faasconf_server::security::AuthChannel;
use serde_json::{Value, json};

use crate::args::{LoadModelChoice, TuneArgs};
use crate::policy::{connect, workflow_name};
use crate::sim::progress_bar;

/// The column heads of [`iteration_line`].
pub const HEADER: &str = "iter     cost e2e_mean_s  success  qos  what changed";

/// `faasconf tune` (see the module doc).
pub async fn tune(args: &TuneArgs) -> Result<()> {
    let workflow = workflow_name(&args.workflow)?;
    // Installed before the session starts: a signal from then on stops it.
    let stop = faasconf_server::shutdown_signal()?;
    let mut client = connect(&args.connection).await?;
    let endpoint = &args.connection.endpoint;
    let session = client
        .start_tuning(start_request(args, &workflow))
        .await
        .map_err(|s| rpc_error("StartTuning", endpoint, &s))?
        .into_inner();
    if !args.json {
        println!(
            "tuning session {} on {} (up to {} iterations, QoS {}); Ctrl-C stops it",
            session.session_id,
            workflow,
            args.iterations,
            qos_text(session.qos.as_ref())
        );
        println!("{HEADER}");
    }
    let bar = progress_bar(args.iterations as usize, "iterations");
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let poll = Duration::from_millis(args.poll_ms);
    let status = follow(
        &mut client,
        &session.session_id,
        poll,
        stop,
        |i, previous| {
            if args.json {
                println!("{}", iteration_json(i, previous));
            } else {
                // Not `bar.println`: that prints nothing while the bar is hidden (no terminal).
                bar.suspend(|| println!("{}", iteration_line(i, previous)));
            }
            bar.inc(1);
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{endpoint}: {e:#}"))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", summary_json(&status));
    } else {
        println!("{}", summary_line(&status));
    }
    if status.state() == TuningSessionState::Failed {
        bail!("the tuning session failed: {}", status.message);
    }
    Ok(())
}

fn start_request(args: &TuneArgs, workflow: &str) -> v1::StartTuningRequest {
    let load_model = match args.load_model {
        None => v1::LoadModel::Unspecified,
        Some(LoadModelChoice::Measured) => v1::LoadModel::Measured,
        Some(LoadModelChoice::OpenLoop) => v1::LoadModel::OpenLoop,
        Some(LoadModelChoice::ClosedLoop) => v1::LoadModel::ClosedLoop,
    };
    v1::StartTuningRequest {
        workflow: workflow.to_owned(),
        actuator_endpoint: args.actuator.clone(),
        qos: Some(v1::Qos {
            mean_latency_ms: args.qos_latency_ms.unwrap_or(0.0),
            min_success_ratio: args.min_success_ratio.unwrap_or(0.0),
        }),
        max_iterations: args.iterations,
        rollback_after_windows: args.rollback_after,
        no_twin_screening: args.no_twin_screening,
        model_version: args.model_version.clone(),
        converge_after: args.converge_after,
        seed: args.seed,
        load_model: load_model as i32,
        define_start: args.define_start,
        reactive: args.reactive,
    }
}

/// A failed call, with the service's code and message.
fn rpc_error(call: &str, endpoint: &str, s: &tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{call} at {endpoint}: {:?}: {}", s.code(), s.message())
}

/// Reads the session's status every `poll` until it ends, handing each new iteration (and the
/// one before it) to `each`. When `stop` resolves the session is stopped (`StopTuning`) and
/// followed to its end. Returns the final status.
pub async fn follow(
    client: &mut PolicyClient<AuthChannel>,
    session_id: &str,
    poll: Duration,
    stop: impl Future<Output = ()>,
    mut each: impl FnMut(&v1::TuningIteration, Option<&v1::TuningIteration>),
) -> Result<v1::TuningStatus> {
    let mut stop = std::pin::pin!(stop);
    let mut stopping = false;
    let mut printed = 0;
    loop {
        let status = client
            .get_tuning_status(v1::GetTuningStatusRequest {
                session_id: session_id.to_owned(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("GetTuningStatus: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        for (k, i) in status.history.iter().enumerate().skip(printed) {
            each(i, k.checked_sub(1).and_then(|p| status.history.get(p)));
        }
        printed = printed.max(status.history.len());
        if !tuning_is_active(status.state()) {
            return Ok(status);
        }
        tokio::select! {
            () = &mut stop, if !stopping => {
                stopping = true;
                eprintln!("stopping tuning session {session_id}");
                client
                    .stop_tuning(v1::StopTuningRequest { session_id: session_id.to_owned() })
                    .await
                    .map_err(|s| anyhow::anyhow!("StopTuning: {:?}: {}", s.code(), s.message()))?;
            }
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// One iteration as a line under [`HEADER`].
pub fn iteration_line(i: &v1::TuningIteration, previous: Option<&v1::TuningIteration>) -> String {
    format!(
        "{:>4} {:>8.3} {:>10.2} {:>8.3} {:>4}  {}",
        i.iteration,
        i.cost,
        i.e2e_mean_seconds,
        i.success_ratio,
        if i.qos_met { "met" } else { "MISS" },
        what_changed(i, previous)
    )
}

/// What the configuration of iteration `i` changed from the one before: `start` for the first,
/// `kept` when nothing, else each changed knob (`function knob before->after`), after
/// `rollback:` or `safe exploration:` when that is how it came about.
fn what_changed(i: &v1::TuningIteration, previous: Option<&v1::TuningIteration>) -> String {
    let Some(previous) = previous else {
        return "start".into();
    };
    let changes = changes(previous.config.as_ref(), i.config.as_ref());
    let text = if changes.is_empty() {
        "kept".to_owned()
    } else {
        changes.join(", ")
    };
    match (i.rollback, i.ses_replaced) {
        (true, _) => format!("rollback: {text}"),
        (false, true) => format!("safe exploration: {text}"),
        _ => text,
    }
}

/// Each knob that differs between `before` and `after`, as `function knob before->after`.
fn changes(before: Option<&v1::WorkflowConfig>, after: Option<&v1::WorkflowConfig>) -> Vec<String> {
    let Some(after) = after else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in &after.functions {
        let Some(b) = before.and_then(|c| c.functions.iter().find(|b| b.function == f.function))
        else {
            out.push(format!("{} new", f.function));
            continue;
        };
        for (knob, was, now) in [
            ("cpu_millis", b.cpu_millis, f.cpu_millis),
            ("memory_mib", b.memory_mib, f.memory_mib),
            ("replicas", b.replicas, f.replicas),
            ("max_inflight", b.concurrency, f.concurrency),
        ] {
            if was != now {
                out.push(format!("{} {knob} {was}->{now}", f.function));
            }
        }
    }
    out
}

fn config_json(c: Option<&v1::WorkflowConfig>) -> Value {
    c.map(|c| {
        c.functions
            .iter()
            .map(|f| {
                (
                    f.function.clone(),
                    json!({"cpu_millis": f.cpu_millis, "memory_mib": f.memory_mib, "replicas": f.replicas, "concurrency": f.concurrency}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    })
    .unwrap_or(Value::Null)
}

/// One iteration as a JSON object (a line of `tune --json`).
fn iteration_json(i: &v1::TuningIteration, previous: Option<&v1::TuningIteration>) -> Value {
    json!({
        "iteration": i.iteration,
        "config": config_json(i.config.as_ref()),
        "cost": i.cost,
        "e2e_mean_s": i.e2e_mean_seconds,
        "success_ratio": i.success_ratio,
        "qos_met": i.qos_met,
        "rollback": i.rollback,
        "ses_replaced": i.ses_replaced,
        "twin_error": i.twin_error,
        "changes": previous.map(|p| changes(p.config.as_ref(), i.config.as_ref())),
    })
}

/// The session's summary as a JSON object (the last line of `tune --json`).
fn summary_json(s: &v1::TuningStatus) -> Value {
    json!({
        "session_id": s.session_id,
        "workflow": s.workflow,
        "state": tuning_state_name(s.state()),
        "iterations": s.iterations,
        "qos_violations": s.qos_violations,
        "rollbacks": s.rollbacks,
        "best_cost": s.best_config.as_ref().map(|_| s.best_cost),
        "best_config": config_json(s.best_config.as_ref()),
        "twin_wrong": s.twin_wrong,
        "qos": s.qos.as_ref().map(|q| json!({
            "mean_latency_ms": q.mean_latency_ms,
            "min_success_ratio": q.min_success_ratio,
        })),
        "message": s.message,
    })
}

/// The session's QoS target, e.g. `mean < 13.0 s, success >= 0.90`.
fn qos_text(qos: Option<&v1::Qos>) -> String {
    qos.map_or_else(
        || "the policy's default".into(),
        |q| {
            format!(
                "mean < {:.1} s, success >= {:.2}",
                q.mean_latency_ms / 1000.0,
                q.min_success_ratio
            )
        },
    )
}

/// The session's summary as a line.
fn summary_line(s: &v1::TuningStatus) -> String {
    let best = match &s.best_config {
        Some(_) => format!("best cost {:.3}", s.best_cost),
        None => "no best (nothing held QoS)".into(),
    };
    let mut line = format!(
        "{}: {} iterations, {} QoS violations, {} rollbacks, {best}",
        tuning_state_name(s.state()),
        s.iterations,
        s.qos_violations,
        s.rollbacks
    );
    if !s.message.is_empty() {
        line.push_str(&format!(" ({})", s.message));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, cpu: u32, replicas: u32) -> v1::FunctionConfig {
        v1::FunctionConfig {
            function: name.into(),
            cpu_millis: cpu,
            memory_mib: 512,
            replicas,
            concurrency: 4,
        }
    }

    fn iteration(
        n: u32,
        functions: Vec<v1::FunctionConfig>,
        rollback: bool,
    ) -> v1::TuningIteration {
        v1::TuningIteration {
            iteration: n,
            config: Some(v1::WorkflowConfig { functions }),
            cost: 1.0,
            e2e_mean_seconds: 10.0,
            success_ratio: 0.95,
            qos_met: n != 2,
            rollback,
            ..Default::default()
        }
    }

    #[test]
    fn a_line_says_what_changed_knob_by_knob() {
        let first = iteration(1, vec![function("a", 500, 1), function("b", 500, 2)], false);
        let second = iteration(2, vec![function("a", 700, 1), function("b", 500, 3)], false);
        let third = iteration(3, second.config.clone().unwrap().functions, false);
        let back = iteration(4, first.config.clone().unwrap().functions, true);
        assert!(iteration_line(&first, None).ends_with("met  start"));
        let line = iteration_line(&second, Some(&first));
        assert!(
            line.ends_with("MISS  a cpu_millis 500->700, b replicas 2->3"),
            "{line}"
        );
        assert!(iteration_line(&third, Some(&second)).ends_with("kept"));
        assert!(
            iteration_line(&back, Some(&third))
                .ends_with("rollback: a cpu_millis 700->500, b replicas 3->2")
        );
        let j = iteration_json(&second, Some(&first));
        assert_eq!(
            j["changes"],
            json!(["a cpu_millis 500->700", "b replicas 2->3"])
        );
        assert_eq!(j["config"]["a"]["cpu_millis"], 700);
        assert_eq!(iteration_json(&first, None)["changes"], Value::Null);
    }
}
