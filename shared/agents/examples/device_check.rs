//! Checks the agents on the device they were built for (`default_device()`: CUDA device 0 with
//! the `cuda` feature) against the CPU (`flex`), and times both.
//!
//! 1. Agreement: the same seeded learner on both devices decides alike before training, and
//!    again after `--steps` identical MADDPG updates; the losses of every update agree too.
//!    The process exits non-zero when a difference passes its tolerance.
//! 2. Timing: one update and one decision on each device for workflows of 6, 12 and 32
//!    functions and batches of 64 and 512 transitions, after warm-up (the first calls on CUDA
//!    compile kernels).
//!
//! Prints one JSON object, and its progress on stderr. Build it with
//! `deploy/cuda/build-offline.sh -p faasconf-agents --example device_check` (or, where GitHub is
//! reachable, `CUDARC_CUDA_VERSION=13000 cargo build --release -p faasconf-agents --features cuda
//! --example device_check`; the variable stands in for `nvcc`), then run the binary on the GPU
//! machine. Results of 2026-11-30 on an H200: `benchmark/results/cuda/`.

use std::time::Instant;

use burn::prelude::Device;
use faasconf_agents::{AgentConfig, Batch, Learner, STATE_DIM, default_device};
use faasconf_core::rng::Rng;

/// Largest difference allowed between the devices' decisions before training.
const BEFORE_TOLERANCE: f32 = 1e-4;
/// Largest difference allowed after the updates (f32 rounding differs between kernels and
/// Adam carries it forward).
const AFTER_TOLERANCE: f32 = 1e-2;

fn chain(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..n).map(|j| u8::from(i.abs_diff(j) == 1)).collect())
        .collect()
}

fn random_batch(rng: &mut Rng, n: usize, len: usize, action_dim: usize) -> Batch {
    let mut uniform =
        |count: usize| -> Vec<f32> { (0..count).map(|_| rng.uniform() as f32).collect() };
    let actions = uniform(len * n * action_dim);
    let rewards = actions
        .chunks(n * action_dim)
        .map(|a| -a.iter().map(|x| (x - 0.4).powi(2)).sum::<f32>() / a.len() as f32)
        .collect();
    Batch {
        states: uniform(len * n * STATE_DIM),
        actions,
        rewards,
        next_states: uniform(len * n * STATE_DIM),
        imitate: Vec::new(),
    }
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn config(batch: usize) -> AgentConfig {
    AgentConfig::new(STATE_DIM)
        .with_seed(11)
        .with_batch_size(batch)
}

/// Decisions and losses of `steps` updates on `device`, from the same seed every time.
fn trajectory(
    device: Device,
    n: usize,
    steps: usize,
) -> anyhow::Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let mut learner = Learner::new(config(64), &chain(n), device)?;
    let probe = vec![0.3_f32; n * STATE_DIM];
    let before = learner.act(&probe)?.actions;
    let mut rng = Rng::new(5);
    let mut losses = Vec::with_capacity(2 * steps);
    for _ in 0..steps {
        let batch = random_batch(&mut rng, n, 64, learner.config().action_dim);
        let l = learner.update(&batch)?;
        losses.extend([l.critic, l.actor]);
    }
    let after = learner.act(&probe)?.actions;
    Ok((before, losses, after))
}

/// Milliseconds per update and per decision (medians) at `n` functions and `batch` transitions.
fn timing(device: Device, n: usize, batch: usize) -> anyhow::Result<(f64, f64)> {
    let mut learner = Learner::new(config(batch), &chain(n), device)?;
    let mut rng = Rng::new(9);
    let batches: Vec<Batch> = (0..4)
        .map(|_| random_batch(&mut rng, n, batch, learner.config().action_dim))
        .collect();
    let probe = vec![0.3_f32; n * STATE_DIM];
    for b in &batches {
        learner.update(b)?;
        learner.act(&probe)?;
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut updates = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        learner.update(&batches[i % batches.len()])?;
        updates.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let mut decisions = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        learner.act(&probe)?;
        decisions.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(updates), median(decisions)))
}

fn main() -> anyhow::Result<()> {
    let steps: usize = std::env::args()
        .skip_while(|a| a != "--steps")
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--steps: {e}"))?
        .unwrap_or(50);
    let target = default_device();
    let target_name = format!("{target:?}");
    let n = 6;
    let (cpu_before, cpu_losses, cpu_after) = trajectory(Device::flex(), n, steps)?;
    eprintln!("cpu trajectory done ({steps} updates)");
    let (dev_before, dev_losses, dev_after) = trajectory(target.clone(), n, steps)?;
    eprintln!("{target_name} trajectory done");
    let before = max_difference(&cpu_before, &dev_before);
    let loss_difference = cpu_losses
        .iter()
        .zip(&dev_losses)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1e-3))
        .fold(0.0, f32::max);
    let after = max_difference(&cpu_after, &dev_after);
    let mut timings = Vec::new();
    for functions in [6, 12, 32] {
        for batch in [64, 512] {
            let (cpu_update, cpu_act) = timing(Device::flex(), functions, batch)?;
            let (dev_update, dev_act) = timing(target.clone(), functions, batch)?;
            eprintln!(
                "{functions} functions, batch {batch}: update {cpu_update:.2} ms on the CPU, \
                 {dev_update:.2} ms on {target_name}"
            );
            timings.push(serde_json::json!({
                "functions": functions, "batch": batch,
                "cpu_update_ms": cpu_update, "device_update_ms": dev_update,
                "cpu_decision_ms": cpu_act, "device_decision_ms": dev_act,
            }));
        }
    }
    let agree = before <= BEFORE_TOLERANCE && after <= AFTER_TOLERANCE;
    println!(
        "{}",
        serde_json::json!({
            "device": target_name,
            "functions": n,
            "steps": steps,
            "max_action_difference_before": before,
            "max_relative_loss_difference": loss_difference,
            "max_action_difference_after": after,
            "agree": agree,
            "timings": timings,
        })
    );
    anyhow::ensure!(
        agree,
        "{target_name} disagrees with the CPU: actions differ by {before} before training \
         (tolerance {BEFORE_TOLERANCE}) and {after} after {steps} updates (tolerance {AFTER_TOLERANCE})"
    );
    Ok(())
}
