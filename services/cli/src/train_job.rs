//! `faasconf train-job`: trains in a running policy service (`StartTraining`: twin samples, and
//! first a calibration of the twin from the measured windows in the service's store with
//! `--calibrate`), follows the job under a progress bar, promotes the model it registered with
//! `--promote`, and cancels the job on Ctrl-C or SIGTERM (`CancelTraining`). What an operator
//! uses where the policy runs as a pod and its store lives on the pod's volume.

use std::time::Duration;

use anyhow::{Result, bail};
use faasconf_proto::states::{job_is_active, job_state_name};
use faasconf_proto::v1::{self, TrainingJobState};
use serde_json::json;

use crate::args::TrainJobArgs;
use crate::policy::{connect, workflow_name};
use crate::sim::progress_bar;

/// `faasconf train-job` (see the module doc).
pub async fn train_job(args: &TrainJobArgs) -> Result<()> {
    let workflow = workflow_name(&args.workflow)?;
    let stop = faasconf_server::shutdown_signal()?;
    let mut stop = std::pin::pin!(stop);
    let mut client = connect(&args.connection).await?;
    let endpoint = &args.connection.endpoint;
    let rpc = |call: &str, s: tonic::Status| {
        anyhow::anyhow!("{call} at {endpoint}: {:?}: {}", s.code(), s.message())
    };
    let job = client
        .start_training(v1::StartTrainingRequest {
            workflow: workflow.clone(),
            samples: args.samples,
            epochs: args.epochs,
            seed: args.seed,
            algorithm: args.algorithm.clone(),
            calibrate: args.calibrate,
            calibration_evaluations: args.calibration_evaluations,
        })
        .await
        .map_err(|s| rpc("StartTraining", s))?
        .into_inner();
    eprintln!(
        "training job {} on {workflow} at {endpoint}; Ctrl-C cancels it",
        job.job_id
    );
    let bar = progress_bar(1000, "training");
    let mut cancelling = false;
    let status = loop {
        let status = client
            .get_training_status(v1::GetTrainingStatusRequest {
                job_id: job.job_id.clone(),
            })
            .await
            .map_err(|s| rpc("GetTrainingStatus", s))?
            .into_inner();
        bar.set_position((status.progress.clamp(0.0, 1.0) * 1000.0) as u64);
        if !job_is_active(status.state()) {
            break status;
        }
        tokio::select! {
            () = &mut stop, if !cancelling => {
                cancelling = true;
                bar.suspend(|| eprintln!("cancelling training job {}", job.job_id));
                client
                    .cancel_training(v1::CancelTrainingRequest { job_id: job.job_id.clone() })
                    .await
                    .map_err(|s| rpc("CancelTraining", s))?;
            }
            () = tokio::time::sleep(Duration::from_millis(args.poll_ms)) => {}
        }
    };
    bar.finish_and_clear();
    let mut promoted = false;
    if status.state() == TrainingJobState::Done && args.promote {
        client
            .promote_model(v1::PromoteModelRequest {
                workflow: workflow.clone(),
                version: status.model_version.clone(),
            })
            .await
            .map_err(|s| rpc("PromoteModel", s))?;
        promoted = true;
    }
    println!("{}", summary(&status, promoted, args.json));
    match status.state() {
        TrainingJobState::Done => Ok(()),
        TrainingJobState::Cancelled if cancelling => Ok(()),
        _ => bail!(
            "training job {} ended {}: {}",
            status.job_id,
            job_state_name(status.state()),
            status.message
        ),
    }
}

/// The job's end as a line, or as a JSON object with `--json`.
fn summary(s: &v1::TrainingStatus, promoted: bool, json: bool) -> String {
    let calibration = s.calibration.as_ref();
    if json {
        return json!({
            "job_id": s.job_id,
            "state": job_state_name(s.state()),
            "model_version": s.model_version,
            "promoted": promoted,
            "message": s.message,
            "calibration": calibration.map(|c| json!({
                "fitted_windows": c.fitted_windows,
                "held_out_windows": c.held_out_windows,
                "open_loop_windows": c.open_loop_windows,
                "held_out_e2e_error_before": c.held_out_e2e_error_before,
                "held_out_e2e_error_after": c.held_out_e2e_error_after,
                "held_out_e2e_spearman_before": c.held_out_e2e_spearman_before,
                "held_out_e2e_spearman_after": c.held_out_e2e_spearman_after,
                "adopted": c.adopted,
                "twin_fingerprint": c.twin_fingerprint,
            })),
        })
        .to_string();
    }
    let mut line = format!("{}: job {}", job_state_name(s.state()), s.job_id);
    if !s.model_version.is_empty() {
        line.push_str(&format!(", model version {}", s.model_version));
        if promoted {
            line.push_str(" (promoted)");
        }
    }
    if let Some(c) = calibration {
        line.push_str(&format!(
            "; calibration on {} windows ({} held out): median error {:.1}% -> {:.1}%, {}",
            c.fitted_windows,
            c.held_out_windows,
            100.0 * c.held_out_e2e_error_before,
            100.0 * c.held_out_e2e_error_after,
            if c.adopted { "adopted" } else { "not adopted" }
        ));
    }
    if !s.message.is_empty() {
        line.push_str(&format!(" ({})", s.message));
    }
    line
}
