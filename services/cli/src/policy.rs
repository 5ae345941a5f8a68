//! `faasconf train` and `faasconf recommend`.

use anyhow::{Context, Result, bail};
use faasconf_agents::{Algorithm, Scoring};
use faasconf_core::history::read_history;
use faasconf_core::{Qos, catalog};
use faasconf_proto::v1::{self, policy_client::PolicyClient};
use faasconf_server::security::AuthChannel;
use faasconf_store::Store;
use faasconf_training::{JobOutcome, JobSpec, Stage, TrainOptions, import_history, run_job};
use serde_json::{Value, json};

use crate::args::{
    AlgorithmChoice, PolicyConnection, RecommendArgs, RecommendFormat, ScoringChoice, TrainArgs,
};
use crate::sim::progress_bar;

/// The algorithm of a flag.
pub fn algorithm(choice: AlgorithmChoice) -> Algorithm {
    match choice {
        AlgorithmChoice::Attmf => Algorithm::AttMf,
        AlgorithmChoice::Mf => Algorithm::Mf,
        AlgorithmChoice::Maddpg => Algorithm::Maddpg,
        AlgorithmChoice::Ddpg => Algorithm::Ddpg,
    }
}

/// Imports a history CSV into the store (once: a file already imported is not stored twice),
/// saying how many rows it added.
pub(crate) fn import_history_file(
    store: &mut Store,
    workflow: &faasconf_core::Workflow,
    path: &std::path::Path,
    qos: &faasconf_core::Qos,
) -> Result<usize> {
    let rows =
        read_history(path, workflow).with_context(|| format!("--history {}", path.display()))?;
    let session = format!(
        "history:{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("csv")
    );
    let imported = import_history(store, workflow, &rows, &session, qos)?;
    eprintln!(
        "history: {imported} rows imported from {} ({} already stored)",
        path.display(),
        if imported == 0 { "all" } else { "none" }
    );
    Ok(imported)
}

/// Runs a training job with progress bars on standard error.
pub fn train_with_progress(
    store: &mut Store,
    workflow: &faasconf_core::Workflow,
    spec: &JobSpec,
    models: &std::path::Path,
    quiet: bool,
) -> Result<JobOutcome> {
    let calibrating = progress_bar(spec.calibrate.unwrap_or(0), "calibrating");
    let sampling = progress_bar(spec.samples, "twin samples");
    let training = progress_bar(
        usize::try_from(spec.train.updates + spec.train.online_steps).unwrap_or(usize::MAX),
        "updates",
    );
    if quiet || spec.calibrate.is_none() {
        calibrating.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    if quiet {
        sampling.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        training.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let outcome = run_job(
        store,
        workflow,
        spec,
        models,
        faasconf_agents::default_device(),
        &mut |stage| match stage {
            Stage::Calibrating(done, total) => {
                calibrating.set_length(total as u64);
                calibrating.set_position(done as u64);
            }
            Stage::Sampling(done, _) => sampling.set_position(done as u64),
            Stage::Training(p) => {
                if p.update.is_multiple_of(50) || p.update == p.total {
                    training.set_position(p.update);
                    training.set_message(format!("critic {:.4}", p.critic));
                }
            }
        },
    )?;
    calibrating.finish_and_clear();
    sampling.finish_and_clear();
    training.finish_and_clear();
    Ok(outcome)
}

pub fn train(args: &TrainArgs) -> Result<()> {
    let mut workflow = catalog::resolve(&args.workflow)
        .with_context(|| format!("--workflow {}", args.workflow))?;
    if let Some(path) = &args.profiles {
        let set = catalog::ProfileSet::read(path)
            .with_context(|| format!("--profiles {}", path.display()))?;
        workflow = workflow.with_profiles(&set);
    } else if let Some(adopted) =
        faasconf_training::calibration::with_adopted_twin(&args.store.models_dir(), &workflow)
            .context("the adopted twin (give --profiles to train on another)")?
    {
        eprintln!(
            "twin: the calibration adopted in {}",
            faasconf_training::calibration::adopted_twin_file(
                &args.store.models_dir(),
                &workflow.name
            )
            .display()
        );
        workflow = adopted;
    }
    let default = workflow.qos();
    let qos = Qos {
        mean_latency_seconds: args
            .qos_latency_ms
            .map_or(default.mean_latency_seconds, |ms| ms / 1000.0),
        min_success_ratio: args.min_success_ratio.unwrap_or(default.min_success_ratio),
    };
    qos.validate("qos")
        .context("--qos-latency-ms / --min-success-ratio")?;
    if args.loads.is_empty() || args.loads.contains(&0) {
        bail!("--loads: give user levels above 0, e.g. 10,20,30");
    }
    if !(0.0..1.0).contains(&args.gamma) {
        bail!("--gamma: {} is not a discount in [0, 1)", args.gamma);
    }
    if !(args.imitation.is_finite() && args.imitation >= 0.0) {
        bail!("--imitation: {} is not a weight >= 0", args.imitation);
    }
    let mut store = Store::open(&args.store.store)
        .with_context(|| format!("--store {}", args.store.store.display()))?;
    if let Some(path) = &args.history {
        import_history_file(&mut store, &workflow, path, &qos)?;
    }
    let spec = JobSpec {
        workflow: workflow.name.clone(),
        samples: args.samples,
        loads: args.loads.clone(),
        train: TrainOptions {
            algorithm: algorithm(args.algorithm),
            scoring: match args.scoring {
                ScoringChoice::Squared => Scoring::SquaredMasked,
                ScoringChoice::Softmax => Scoring::MaskedSoftmax,
            },
            updates: args.updates,
            imitation: args.imitation,
            gamma: args.gamma,
            online_steps: args.online_steps,
            qos,
            seed: args.seed,
            ..TrainOptions::default()
        },
        promote: args.promote,
        calibrate: args.calibrate.then_some(args.calibration_evaluations),
    };
    let outcome = train_with_progress(
        &mut store,
        &workflow,
        &spec,
        &args.store.models_dir(),
        false,
    )?;
    let report = &outcome.report;
    let promoted = store
        .models(Some(&workflow.name))?
        .iter()
        .any(|m| m.version == outcome.version && m.promoted);
    println!(
        "{}",
        json!({
            "model_version": outcome.version,
            "promoted": promoted,
            "path": outcome.path,
            "algorithm": spec.train.algorithm.name(),
            "twin_samples_drawn": outcome.drawn,
            "samples": report.samples,
            "transitions": report.transitions,
            "updates": spec.train.updates,
            "resumed_from": report.resumed_from,
            "seconds": report.seconds,
            "final_losses": report.losses.last(),
            "final_rewards": report.rewards.iter().rev().take(spec.loads.len()).collect::<Vec<_>>(),
            "evaluation": report.evaluation,
            "report": outcome.path.join("report.json"),
            "calibration": outcome.calibration.as_ref().map(|c| json!({
                "summary": c.summary(),
                "adopted": c.adopted,
                "fitted_windows": c.fitted,
                "held_out_windows": c.held_out,
                "held_out_e2e_error_before": c.before.e2e_median_ape,
                "held_out_e2e_error_after": c.after.e2e_median_ape,
                "twin_fingerprint": c.twin_fingerprint,
                "file": outcome.path.join("calibration.json"),
            })),
        })
    );
    Ok(())
}

/// A client of the policy service at `c.endpoint`, with its TLS and token (the flags name what
/// is wrong).
pub async fn connect(c: &PolicyConnection) -> Result<PolicyClient<AuthChannel>> {
    use faasconf_server::security::{ClientFlags, ClientSecurity, ClientSecurityFiles};
    let timeout = std::time::Duration::from_secs(c.timeout_seconds);
    let security = ClientSecurity::load(
        &ClientSecurityFiles {
            tls_ca: c.tls_ca.clone(),
            tls_client_cert: c.tls_client_cert.clone(),
            tls_client_key: c.tls_client_key.clone(),
            token_file: c.token_file.clone(),
        },
        ClientFlags {
            tls_ca: "--tls-ca",
            tls_client_cert: "--tls-client-cert",
            tls_client_key: "--tls-client-key",
            token_file: "--token-file",
            allow_plaintext_token: "--allow-plaintext-token",
        },
    )?
    .allow_plaintext_token(c.allow_plaintext_token);
    security
        .check_endpoint(&c.endpoint)
        .map_err(|e| anyhow::anyhow!("--endpoint {e}"))?;
    let channel = security
        .connect(&c.endpoint, timeout, Some(timeout))
        .await
        .with_context(|| {
            format!(
                "--endpoint {}: the policy service is unreachable (within --timeout-seconds {})",
                c.endpoint, c.timeout_seconds
            )
        })?;
    Ok(PolicyClient::new(channel))
}

/// The workflow's name: `--workflow` itself, or the name inside the topology file it names.
pub fn workflow_name(arg: &str) -> Result<String> {
    let path = std::path::Path::new(arg);
    let looks_like_a_file = [".yaml", ".yml", ".json"].iter().any(|e| arg.ends_with(e));
    if path.is_file() || looks_like_a_file {
        let workflow =
            catalog::load_file(path).map_err(|e| anyhow::anyhow!("--workflow {arg}: {e}"))?;
        return Ok(workflow.name);
    }
    if arg.trim().is_empty() {
        bail!("--workflow: empty");
    }
    Ok(arg.to_owned())
}

/// Calls `RecommendConfig` and prints it, or merges it into `--stack`, or writes patch files
/// into `--out-dir`.
pub async fn recommend(args: &RecommendArgs) -> Result<()> {
    if args.stack.is_some() && args.format != RecommendFormat::Openfaas {
        anyhow::bail!("--stack: only with --format openfaas");
    }
    if args.requests_equal_limits && args.stack.is_none() {
        anyhow::bail!("--requests-equal-limits: only with --stack");
    }
    if args.out_dir.is_some() && args.format != RecommendFormat::Patch {
        anyhow::bail!("--out-dir: only with --format patch");
    }
    let mut client = connect(&args.connection).await?;
    let request = v1::RecommendConfigRequest {
        workflow: workflow_name(&args.workflow)?,
        load: Some(v1::Load {
            kind: Some(v1::load::Kind::ConcurrentUsers(args.users)),
        }),
        qos: Some(v1::Qos {
            mean_latency_ms: args.qos_latency_ms.unwrap_or(0.0),
            min_success_ratio: args.min_success_ratio.unwrap_or(0.0),
        }),
        current: None,
        model_version: args.model_version.clone(),
    };
    let response = client
        .recommend_config(request)
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "RecommendConfig at {}: {:?}: {}",
                args.connection.endpoint,
                s.code(),
                s.message()
            )
        })?
        .into_inner();
    match (args.format, &args.stack, &args.out_dir) {
        (RecommendFormat::Openfaas, Some(stack), _) => {
            let recommended: Vec<(String, faasconf_core::FunctionConfig)> = functions(&response)
                .iter()
                .map(|f| (f.function.clone(), config_of(f)))
                .collect();
            let requests = if args.requests_equal_limits {
                crate::ci_output::Requests::EqualLimits
            } else {
                crate::ci_output::Requests::KeepLower
            };
            let merged = crate::ci_output::merge_into_stack(stack, &recommended, requests)?;
            eprintln!("{}: updated {}", stack.display(), merged.changed.join(", "));
            for kept in &merged.kept_requests {
                eprintln!(
                    "kept the lower request {kept} (--requests-equal-limits sets it to the limit)"
                );
            }
            if merged.reformatted {
                eprintln!(
                    "warning: {} could not be edited in place (an alias or a construct the format-preserving editor does not take); it was rewritten reformatted, comments not kept",
                    stack.display()
                );
            }
        }
        (RecommendFormat::Patch, _, Some(dir)) => {
            let files = crate::ci_output::write_patch_files(
                dir,
                &patch_documents(&response, &args.namespace)?,
            )?;
            for file in files {
                println!("{}", file.display());
            }
        }
        (format, _, _) => {
            let text = match format {
                RecommendFormat::Json => serde_json::to_string_pretty(&response_json(&response))?,
                RecommendFormat::Openfaas => {
                    serde_yaml_ng::to_string(&openfaas_fragment(&response))?
                }
                RecommendFormat::Patch => patches(&response, &args.namespace)?,
            };
            println!("{}", text.trim_end());
        }
    }
    Ok(())
}

fn functions(r: &v1::RecommendConfigResponse) -> &[v1::FunctionConfig] {
    r.config.as_ref().map_or(&[], |c| c.functions.as_slice())
}

/// The response as JSON.
pub fn response_json(r: &v1::RecommendConfigResponse) -> Value {
    json!({
        "model_version": r.model_version,
        "config": functions(r).iter().map(|f| (f.function.clone(), json!({"cpu_millis": f.cpu_millis, "memory_mib": f.memory_mib, "replicas": f.replicas, "concurrency": f.concurrency}))).collect::<serde_json::Map<_, _>>(),
        "predicted_cost": r.predicted_cost,
        "twin_validated": r.twin_validated,
        "predicted_mean_latency_ms": r.predicted_mean_latency_ms,
        "predicted_success_ratio": r.predicted_success_ratio,
        "ses_replaced": r.ses_replaced,
        "band": r.band.as_ref().map(|b| json!({"lower": b.lower, "upper": b.upper, "source_users": match b.source_load.as_ref().and_then(|l| l.kind.as_ref()) { Some(v1::load::Kind::ConcurrentUsers(u)) => json!(u), _ => Value::Null }})),
        "attention": r.attention.iter().map(|a| (a.function.clone(), Value::Object(a.neighbours.iter().cloned().zip(a.weights.iter().map(|w| json!(w))).collect()))).collect::<serde_json::Map<String, Value>>(),
    })
}

/// An OpenFaaS stack.yml `functions:` fragment: limits and requests, `max_inflight`, and the
/// scale labels pinning the replicas (`faasconf_openfaas::stack_fields`).
pub fn openfaas_fragment(r: &v1::RecommendConfigResponse) -> Value {
    let functions: serde_json::Map<String, Value> = functions(r)
        .iter()
        .map(|f| {
            (
                f.function.clone(),
                faasconf_openfaas::stack_fields(&config_of(f)),
            )
        })
        .collect();
    json!({ "functions": functions })
}

/// A recommended function's configuration.
fn config_of(f: &v1::FunctionConfig) -> faasconf_core::FunctionConfig {
    faasconf_core::FunctionConfig {
        cpu_millis: f.cpu_millis,
        memory_mib: f.memory_mib,
        replicas: f.replicas,
        concurrency: f.concurrency,
    }
}

/// Strategic-merge patches of each function's Deployment, as YAML documents.
pub fn patches(r: &v1::RecommendConfigResponse, namespace: &str) -> Result<String> {
    let mut out = String::new();
    for (_, document) in patch_documents(r, namespace)? {
        out.push_str("---\n");
        out.push_str(&document);
    }
    Ok(out)
}

/// Each function's Deployment patch, as (function, YAML document).
pub fn patch_documents(
    r: &v1::RecommendConfigResponse,
    namespace: &str,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for f in functions(r) {
        // The body the Kubernetes backend applies, without our version annotation.
        let patch = faasconf_openfaas::apply_body(
            faasconf_openfaas::Target::Deployment,
            &f.function,
            namespace,
            &config_of(f),
            None,
        );
        out.push((f.function.clone(), serde_yaml_ng::to_string(&patch)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_is_a_name_or_a_topology_file() {
        assert_eq!(workflow_name("my-flow").unwrap(), "my-flow");
        let err = workflow_name("missing.yaml").unwrap_err().to_string();
        assert!(err.starts_with("--workflow missing.yaml"), "{err}");
        assert!(
            workflow_name(" ")
                .unwrap_err()
                .to_string()
                .contains("--workflow")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flow.json");
        let mut w = catalog::builtin("parallel").unwrap();
        w.name = "my-parallel".into();
        std::fs::write(&path, catalog::topology_file(&w).to_string()).unwrap();
        assert_eq!(
            workflow_name(path.to_str().unwrap()).unwrap(),
            "my-parallel"
        );
    }
}
