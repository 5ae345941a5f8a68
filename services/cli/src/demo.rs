//! `faasconf demo`: the whole loop on the embedded twin. Pre-trains briefly, starts the actuator
//! (twin backend, virtual clock: windows come as fast as the policy reads them) and the policy
//! as processes on free loopback ports, runs one tuning session and prints every iteration.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use faasconf_core::catalog;
use faasconf_launch::{Logs, ServiceProcess};
use faasconf_proto::states::tuning_state_name;
use faasconf_proto::v1::{self, TuningSessionState};
use faasconf_store::Store;
use faasconf_training::{JobSpec, TrainOptions};
use serde_json::json;

use crate::args::{DemoArgs, PolicyConnection};
use crate::policy::{algorithm, connect, train_with_progress};
use crate::tune::{follow, iteration_line};

/// Starts one of the services beside this executable on free loopback ports.
fn start(name: &str, args: &[String]) -> Result<ServiceProcess> {
    let binary = faasconf_launch::beside_current_exe(name)?;
    // The services' logs show only when asked for (RUST_LOG set).
    let logs = if std::env::var_os("RUST_LOG").is_some() {
        Logs::Inherit
    } else {
        Logs::Discard
    };
    ServiceProcess::start_on_loopback(&binary, args, logs)
        .with_context(|| format!("starting {name}"))
}

pub async fn demo(args: &DemoArgs) -> Result<()> {
    let workflow = catalog::resolve(&args.workflow)
        .with_context(|| format!("--workflow {}", args.workflow))?;
    let (workdir, temporary) = match &args.workdir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("faasconf-demo-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&workdir)
        .with_context(|| format!("--workdir {}", workdir.display()))?;
    let store_path = workdir.join("faasconf.db");
    let models = workdir.join("models");
    let say = |text: String| {
        if !args.json {
            println!("{text}")
        } else {
            eprintln!("{text}")
        }
    };

    let started = Instant::now();
    let mut loads = vec![10, 20, 30, args.users];
    loads.sort_unstable();
    loads.dedup();
    let spec = JobSpec {
        workflow: workflow.name.clone(),
        samples: args.samples,
        loads,
        train: TrainOptions {
            algorithm: algorithm(args.algorithm),
            updates: args.updates,
            seed: args.seed,
            evaluate_every: 0,
            qos: workflow.qos(),
            ..TrainOptions::default()
        },
        promote: true,
        calibrate: None,
    };
    let outcome = {
        let mut store =
            Store::open(&store_path).with_context(|| format!("store {}", store_path.display()))?;
        train_with_progress(&mut store, &workflow, &spec, &models, args.json)?
    };
    say(format!(
        "pre-trained {} on {} twin samples ({} transitions, {} updates, then {} online steps) in {:.1} s: model version {}",
        spec.train.algorithm.name(),
        outcome.report.samples,
        outcome.report.transitions,
        spec.train.updates,
        spec.train.online_steps,
        started.elapsed().as_secs_f64(),
        outcome.version
    ));

    let users = args.users.to_string();
    let actuator = start(
        "faasconf-actuator",
        &[
            "--backend",
            "twin",
            "--clock",
            "virtual",
            "--workflow",
            &workflow.name,
            "--users",
            &users,
            "--seed",
            &(args.seed + 1).to_string(),
        ]
        .map(String::from),
    )?;
    let policy = start(
        "faasconf-policy",
        &[
            "--store",
            &store_path.display().to_string(),
            "--models",
            &models.display().to_string(),
            "--workflow",
            &workflow.name,
            // The only actuator its sessions may tune against.
            "--actuator",
            &actuator.endpoint(),
        ]
        .map(String::from),
    )?;
    say(format!(
        "actuator (twin, {} users) at {}; policy at {}",
        args.users,
        actuator.endpoint(),
        policy.endpoint()
    ));

    let mut client = connect(&PolicyConnection::plaintext(policy.endpoint()))
        .await
        .context("connecting to the policy")?;
    let qos = workflow.qos();
    let session = client
        .start_tuning(v1::StartTuningRequest {
            workflow: workflow.name.clone(),
            actuator_endpoint: actuator.endpoint(),
            qos: Some(v1::Qos {
                mean_latency_ms: qos.mean_latency_seconds * 1000.0,
                min_success_ratio: qos.min_success_ratio,
            }),
            max_iterations: args.iterations,
            rollback_after_windows: 3,
            no_twin_screening: args.no_twin_screening,
            model_version: String::new(),
            converge_after: 0,
            seed: args.seed,
            // The policy's own (the twin reports its users: closed loop).
            load_model: v1::LoadModel::Unspecified as i32,
            // The twin starts from a defined configuration.
            define_start: false,
            reactive: false,
        })
        .await
        .map_err(|s| anyhow::anyhow!("StartTuning: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    say(format!(
        "tuning session {} on {} at {} users (QoS: mean < {} s, success >= {}):",
        session.session_id,
        workflow.name,
        args.users,
        qos.mean_latency_seconds,
        qos.min_success_ratio
    ));
    say(crate::tune::HEADER.to_owned());
    let status = follow(
        &mut client,
        &session.session_id,
        Duration::from_millis(100),
        std::future::pending(),
        |i, previous| say(iteration_line(i, previous)),
    )
    .await?;
    drop(policy);
    drop(actuator);
    let state = tuning_state_name(status.state());
    if status.state() == TuningSessionState::Failed {
        bail!("the tuning session failed: {}", status.message);
    }
    let final_config = status
        .best_config
        .clone()
        .or_else(|| status.history.last().and_then(|i| i.config.clone()));
    let config_json: serde_json::Map<String, serde_json::Value> = final_config
        .iter()
        .flat_map(|c| c.functions.iter())
        .map(|f| (f.function.clone(), json!({"cpu_millis": f.cpu_millis, "memory_mib": f.memory_mib, "replicas": f.replicas, "concurrency": f.concurrency})))
        .collect();
    say(format!(
        "{}: {} iterations, {} QoS violations, {} rollbacks, best QoS-meeting cost {} ({:.1} s in all)",
        state,
        status.iterations,
        status.qos_violations,
        status.rollbacks,
        if status.best_config.is_some() {
            format!("{:.3}", status.best_cost)
        } else {
            "none found".into()
        },
        started.elapsed().as_secs_f64()
    ));
    say(format!(
        "final configuration: {}",
        serde_json::to_string_pretty(&config_json)?
    ));
    if args.json {
        let iterations: Vec<_> = status.history.iter().map(|i| json!({"iteration": i.iteration, "cost": i.cost, "e2e_mean_s": i.e2e_mean_seconds, "success_ratio": i.success_ratio, "qos_met": i.qos_met})).collect();
        println!(
            "{}",
            json!({"iterations": iterations, "final_config": config_json, "best_cost": status.best_config.as_ref().map(|_| status.best_cost), "qos_violations": status.qos_violations, "rollbacks": status.rollbacks, "state": state})
        );
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&workdir);
    }
    Ok(())
}
