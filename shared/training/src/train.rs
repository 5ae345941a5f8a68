//! The offline training loop: fit the state encoder on the observations, rebuild transitions,
//! run MADDPG updates from a replay buffer, checkpoint every so often (a killed run resumes from
//! its last checkpoint), and follow the greedy policy on the twin to draw the reward curve.

use std::path::Path;
use std::time::Instant;

use burn::prelude::Device;
use faasconf_agents::{AgentConfig, Algorithm, Learner, STATE_DIM, Scoring, StateEncoder};
use faasconf_core::cancel::Cancel;
use faasconf_core::rng::Rng;
use faasconf_core::{Qos, Workflow};
use faasconf_store::Observation;
use faasconf_twin::TwinOptions;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::evaluate::{EvaluateOptions, PolicyScore, evaluate_policy};
use crate::model::{Model, ModelMeta};
use crate::online::OnlineTwins;
use crate::replay::{ReplayBuffer, transitions};

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// The learning algorithm.
    pub algorithm: Algorithm,
    /// Attention scoring (attmf only).
    pub scoring: Scoring,
    /// Gradient updates on the offline samples.
    pub updates: u64,
    /// Then this many online steps on the twin, one update each (0: offline only).
    #[serde(default)]
    pub online_steps: u64,
    /// Actor learning rate.
    pub learning_rate: f64,
    /// Critic learning rate.
    pub critic_learning_rate: f64,
    /// Discount.
    pub gamma: f64,
    /// Transitions per update.
    pub batch_size: usize,
    /// Weight of imitating QoS-meeting actions in the actor loss (0: pure policy gradient; 2.5 as
    /// TD3+BC: without it the actor saturates on configurations costing 13-17).
    #[serde(default)]
    pub imitation: f64,
    /// Write a checkpoint every this many updates (0: only at the end).
    pub checkpoint_every: u64,
    /// Follow the greedy policy on the twin every this many updates (0: never).
    pub evaluate_every: u64,
    /// Loads the reward curve and the final evaluation are drawn at (a training job sets the
    /// loads it sampled).
    pub evaluate_loads: Vec<u32>,
    /// QoS of the reward.
    pub qos: Qos,
    /// Seed.
    pub seed: u64,
    /// Raised: training stops before its next update and fails with [`Error::Cancelled`] (the
    /// last checkpoint stays, so a later run with the same options resumes from it).
    #[serde(skip)]
    pub cancel: Cancel,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::AttMf,
            scoring: Scoring::SquaredMasked,
            updates: 2000,
            online_steps: 2000,
            learning_rate: 1e-3,
            critic_learning_rate: 1e-3,
            gamma: 0.9,
            batch_size: 64,
            imitation: 2.5,
            checkpoint_every: 250,
            evaluate_every: 250,
            evaluate_loads: vec![10, 20, 30],
            qos: Qos::default(),
            seed: 0,
            cancel: Cancel::new(),
        }
    }
}

/// One point of the loss curve (means over the updates since the previous point).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Updates done.
    pub update: u64,
    /// Critic TD loss.
    pub critic: f64,
    /// Actor loss (minus mean Q).
    pub actor: f64,
}

/// One point of the reward curve: the greedy policy followed on the twin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RewardPoint {
    /// Updates done.
    pub update: u64,
    /// Closed-loop users.
    pub users: u32,
    /// Reward of the policy's configuration after 3 steps.
    pub reward: f64,
    /// Its cost.
    pub cost: f64,
    /// Its mean end-to-end latency, seconds.
    pub e2e_mean_seconds: f64,
    /// Its success ratio.
    pub success_ratio: f64,
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// The options.
    pub options: TrainOptions,
    /// Observations given.
    pub samples: usize,
    /// Transitions rebuilt from them.
    pub transitions: usize,
    /// Updates this run resumed from (0 for a fresh run).
    pub resumed_from: u64,
    /// Seconds spent in this run.
    pub seconds: f64,
    /// Loss curve.
    pub losses: Vec<LossPoint>,
    /// Reward curve.
    pub rewards: Vec<RewardPoint>,
    /// The final greedy policy on its own, at each of `evaluate_loads` (empty when
    /// `evaluate_every` is 0).
    #[serde(default)]
    pub evaluation: Vec<PolicyScore>,
}

/// Where training stands, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Updates done.
    pub update: u64,
    /// Updates planned.
    pub total: u64,
    /// Latest critic loss.
    pub critic: f32,
}

/// The agent hyper-parameters of `options`.
pub fn agent_config(options: &TrainOptions) -> AgentConfig {
    AgentConfig::new(STATE_DIM)
        .with_algorithm(options.algorithm)
        .with_scoring(options.scoring)
        .with_learning_rate(options.learning_rate)
        .with_critic_learning_rate(Some(options.critic_learning_rate))
        .with_gamma(options.gamma)
        .with_batch_size(options.batch_size)
        .with_imitation(options.imitation)
        .with_seed(options.seed)
}

/// [`agent_config`] for `workflow`: the identity embedding's rows raised to its functions where
/// it has more than the default (a smaller workflow's model is left exactly as it was).
fn config_for(workflow: &Workflow, options: &TrainOptions) -> AgentConfig {
    let config = agent_config(options);
    if workflow.len() > config.max_functions {
        config.with_max_functions(workflow.len())
    } else {
        config
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Trains on `observations`. `workdir` keeps the run's checkpoint: a run with the same options
/// and a checkpoint there continues from it.
pub fn train(
    workflow: &Workflow,
    observations: &[Observation],
    options: &TrainOptions,
    workdir: &Path,
    device: Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Model, TrainReport), Error> {
    options.qos.validate("qos")?;
    if options.batch_size == 0 {
        return Err(Error::invalid("batch_size", "must be at least 1"));
    }
    let started = Instant::now();
    let mine: Vec<&Observation> = observations
        .iter()
        .filter(|o| o.workflow == workflow.name)
        .collect();
    let resume = Resume::read(workdir, options)?;
    let encoder = match &resume {
        Some(r) => r.encoder.clone(),
        None => StateEncoder::fit(
            workflow,
            &mine
                .iter()
                .filter(|o| !o.window.transient)
                .map(|o| &o.window)
                .collect::<Vec<_>>(),
        )?,
    };
    let all = transitions(workflow, &encoder, &mine)?;
    if all.is_empty() {
        return Err(Error::invalid(
            "samples",
            format!(
                "no transitions for {:?}: give at least two consecutive steady observations of one session",
                workflow.name
            ),
        ));
    }
    let count = all.len();
    let mut buffer = ReplayBuffer::new(count);
    buffer.extend(all);
    let mut learner = match &resume {
        Some(_) => Learner::load(&workdir.join("checkpoint"), &workflow.adjacency(), device)?,
        None => Learner::new(config_for(workflow, options), &workflow.adjacency(), device)?,
    };
    let mut report = match resume {
        Some(r) => TrainReport {
            resumed_from: learner.updates(),
            samples: mine.len(),
            transitions: count,
            ..r.report
        },
        None => TrainReport {
            options: options.clone(),
            samples: mine.len(),
            transitions: count,
            resumed_from: 0,
            seconds: 0.0,
            losses: Vec::new(),
            rewards: Vec::new(),
            evaluation: Vec::new(),
        },
    };
    let mut rng = Rng::stream(options.seed, 7 + learner.updates());
    let (mut critic_sum, mut actor_sum, mut since) = (0.0f64, 0.0f64, 0u64);
    let meta = |learner: &Learner| ModelMeta {
        workflow: workflow.name.clone(),
        algorithm: options.algorithm.name().to_owned(),
        transitions: count,
        samples: mine.len(),
        updates: learner.updates(),
        seed: options.seed,
        created_unix_seconds: unix_now(),
        twin_fingerprint: workflow.fingerprint(),
    };
    let total = options.updates + options.online_steps;
    // Online steps run at the loads the samples cover.
    let mut loads: Vec<u32> = mine.iter().map(|o| o.users).filter(|&u| u > 0).collect();
    loads.sort_unstable();
    loads.dedup();
    let mut online = match options.online_steps {
        0 => None,
        _ => Some(OnlineTwins::new(
            workflow,
            &loads,
            options.qos,
            30.0,
            options.seed ^ 0x0_11e,
        )?),
    };
    let mut checkpointed = learner.updates();
    while learner.updates() < total {
        if options.cancel.is_cancelled() {
            // The work since the last checkpoint is kept: a later run resumes from here.
            if learner.updates() > checkpointed {
                report.seconds += started.elapsed().as_secs_f64();
                Resume::write(workdir, &learner, &encoder, &report)?;
            }
            return Err(Error::Cancelled);
        }
        if let Some(twins) = online
            .as_mut()
            .filter(|_| learner.updates() >= options.updates)
        {
            if learner.updates() == options.updates {
                learner.set_noise(learner.config().noise);
            }
            buffer.push(twins.step(&mut learner, &encoder)?);
        }
        let losses = learner.update(&buffer.sample(options.batch_size, &mut rng))?;
        critic_sum += f64::from(losses.critic);
        actor_sum += f64::from(losses.actor);
        since += 1;
        let done = learner.updates();
        progress(Progress {
            update: done,
            total,
            critic: losses.critic,
        });
        let every = |k: u64| k > 0 && done % k == 0;
        if every(options.checkpoint_every.max(1).min(total)) || done == total {
            report.losses.push(LossPoint {
                update: done,
                critic: critic_sum / since as f64,
                actor: actor_sum / since as f64,
            });
            (critic_sum, actor_sum, since) = (0.0, 0.0, 0);
        }
        if every(options.evaluate_every) || (options.evaluate_every > 0 && done == total) {
            let model = Model {
                learner,
                encoder: encoder.clone(),
                meta: meta_placeholder(),
            };
            report
                .rewards
                .extend(reward_curve(workflow, &model, options, done)?);
            learner = model.learner;
        }
        if every(options.checkpoint_every) && done < total {
            report.seconds += started.elapsed().as_secs_f64();
            Resume::write(workdir, &learner, &encoder, &report)?;
            report.seconds -= started.elapsed().as_secs_f64();
            checkpointed = done;
        }
    }
    report.seconds += started.elapsed().as_secs_f64();
    let meta = meta(&learner);
    let model = Model {
        learner,
        encoder,
        meta,
    };
    if options.evaluate_every > 0 {
        report.evaluation = evaluate_policy(
            workflow,
            &model,
            &EvaluateOptions {
                loads: options.evaluate_loads.clone(),
                qos: options.qos,
                seed: options.seed ^ 0x5eed,
                ..EvaluateOptions::default()
            },
        )?;
    }
    Ok((model, report))
}

fn meta_placeholder() -> ModelMeta {
    ModelMeta {
        workflow: String::new(),
        algorithm: String::new(),
        transitions: 0,
        samples: 0,
        updates: 0,
        seed: 0,
        created_unix_seconds: 0.0,
        twin_fingerprint: String::new(),
    }
}

/// The greedy policy after 3 steps on the twin from the middle configuration, at each load.
fn reward_curve(
    workflow: &Workflow,
    model: &Model,
    options: &TrainOptions,
    update: u64,
) -> Result<Vec<RewardPoint>, Error> {
    let start = workflow.config_from_actions(&vec![[0.5; 4]; workflow.len()])?;
    let mut out = Vec::new();
    for &users in &options.evaluate_loads {
        let windows = model.rollout(
            workflow,
            start.clone(),
            users,
            3,
            TwinOptions {
                window_seconds: 30.0,
                seed: options.seed ^ 0x5eed,
            },
        )?;
        if let Some(w) = windows.last() {
            out.push(RewardPoint {
                update,
                users,
                reward: options.qos.reward(&w.workflow),
                cost: w.workflow.cost,
                e2e_mean_seconds: w.workflow.mean_latency_seconds,
                success_ratio: w.workflow.success_ratio,
            });
        }
    }
    Ok(out)
}

/// A run's checkpoint: the learner, the encoder it was fitted with, the report so far.
struct Resume {
    encoder: StateEncoder,
    report: TrainReport,
}

impl Resume {
    fn read(workdir: &Path, options: &TrainOptions) -> Result<Option<Self>, Error> {
        let path = workdir.join("run.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let (encoder, report): (StateEncoder, TrainReport) =
            serde_json::from_str(&text).map_err(|e| Error::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        // A checkpoint of other options is not this run's: start afresh.
        Ok((report.options == *options).then_some(Self { encoder, report }))
    }

    fn write(
        workdir: &Path,
        learner: &Learner,
        encoder: &StateEncoder,
        report: &TrainReport,
    ) -> Result<(), Error> {
        std::fs::create_dir_all(workdir).map_err(|e| Error::Io {
            path: workdir.display().to_string(),
            message: e.to_string(),
        })?;
        learner.save(&workdir.join("checkpoint"))?;
        let text = serde_json::to_string(&(encoder, report)).map_err(|e| Error::Io {
            path: "run.json".into(),
            message: e.to_string(),
        })?;
        let (tmp, path) = (workdir.join("run.json.tmp"), workdir.join("run.json"));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{SampleOptions, twin_samples};
    use faasconf_core::catalog::builtin;

    fn options() -> TrainOptions {
        // 20 offline updates, then 10 online steps on the twin.
        TrainOptions {
            updates: 20,
            online_steps: 10,
            batch_size: 16,
            checkpoint_every: 10,
            evaluate_every: 15,
            evaluate_loads: vec![10],
            ..TrainOptions::default()
        }
    }

    /// `parallel` and `samples` twin samples of it, in episodes of 10.
    fn parallel_samples(samples: usize) -> (Workflow, Vec<Observation>) {
        let w = builtin("parallel").unwrap();
        let obs = twin_samples(
            &w,
            &SampleOptions {
                samples,
                episode_length: 10,
                ..SampleOptions::default()
            },
            &|_| {},
        )
        .unwrap();
        (w, obs)
    }

    #[test]
    fn a_killed_run_resumes_from_its_last_checkpoint() {
        let (w, obs) = parallel_samples(40);
        let dir = tempfile::tempdir().unwrap();
        // The "kill": the run dies at update 25 (online), after the checkpoint of update 20.
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            train(&w, &obs, &options(), dir.path(), Device::flex(), &mut |p| {
                assert!(p.update < 25, "killed")
            })
        }));
        assert!(killed.is_err());
        let (model, report) = train(
            &w,
            &obs,
            &options(),
            dir.path(),
            Device::flex(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(report.resumed_from, 20);
        assert_eq!(model.learner.updates(), 30);
        assert_eq!(report.transitions, 36, "4 sessions of 10 observations");
        assert_eq!(
            report.losses.iter().map(|l| l.update).collect::<Vec<_>>(),
            [10, 20, 30],
            "the curve survives the kill"
        );
        assert_eq!(
            report.rewards.iter().map(|r| r.update).collect::<Vec<_>>(),
            [15, 30]
        );
        assert_eq!(report.evaluation.len(), 1, "the final policy, at 10 users");
        assert_eq!(report.evaluation[0].windows, 16, "4 seeds x 4 scored steps");
        // Other options do not resume someone else's run.
        let other = TrainOptions {
            seed: 9,
            ..options()
        };
        let (_, fresh) = train(&w, &obs, &other, dir.path(), Device::flex(), &mut |_| {}).unwrap();
        assert_eq!(fresh.resumed_from, 0);
    }

    #[test]
    fn a_cancelled_run_checkpoints_where_it_stopped() {
        let (w, obs) = parallel_samples(40);
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::new();
        let stopping = TrainOptions {
            cancel: cancel.clone(),
            ..options()
        };
        // Cancelled after update 13: between the checkpoints of updates 10 and 20.
        let cancelled = train(&w, &obs, &stopping, dir.path(), Device::flex(), &mut |p| {
            if p.update == 13 {
                cancel.cancel();
            }
        });
        assert!(matches!(cancelled, Err(Error::Cancelled)));
        let (model, report) = train(
            &w,
            &obs,
            &options(),
            dir.path(),
            Device::flex(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(report.resumed_from, 13, "no update is lost to the stop");
        assert_eq!(model.learner.updates(), 30);
    }

    #[test]
    fn models_round_trip_through_the_store() {
        let (w, obs) = parallel_samples(20);
        let dir = tempfile::tempdir().unwrap();
        let (model, _) = train(
            &w,
            &obs,
            &TrainOptions {
                updates: 5,
                evaluate_every: 0,
                ..options()
            },
            &dir.path().join("run"),
            Device::flex(),
            &mut |_| {},
        )
        .unwrap();
        let mut store = faasconf_store::Store::in_memory().unwrap();
        let version = model
            .register(&dir.path().join("models"), &mut store)
            .unwrap();
        let stored = store.models(Some("parallel")).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].version, version);
        let loaded =
            Model::load(std::path::Path::new(&stored[0].path), &w, Device::flex()).unwrap();
        assert_eq!(
            loaded.decide(&w, &obs[3].window).unwrap(),
            model.decide(&w, &obs[3].window).unwrap()
        );
        assert_eq!(loaded.meta, model.meta);
        let seq = builtin("sequential").unwrap();
        assert!(Model::load(std::path::Path::new(&stored[0].path), &seq, Device::flex()).is_err());
    }

    #[test]
    fn no_transitions_is_a_clear_error() {
        let w = builtin("parallel").unwrap();
        let err = train(
            &w,
            &[],
            &options(),
            tempfile::tempdir().unwrap().path(),
            Device::flex(),
            &mut |_| {},
        )
        .err()
        .unwrap();
        assert!(err.to_string().starts_with("samples:"), "{err}");
    }
}
