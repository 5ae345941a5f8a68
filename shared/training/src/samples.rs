//! Samples generated on the twin: episodes of random and locally perturbed configurations under
//! closed-loop loads, one steady window observed per configuration.
//!
//! After each change one window is run and dropped (it is `transient`: the rollout happens
//! inside it), then the next window is the observation, as online tuning does.

use faasconf_core::cancel::Cancel;
use faasconf_core::rng::Rng;
use faasconf_core::{Qos, Workflow};
use faasconf_store::{Observation, Source};
use faasconf_twin::{Twin, TwinOptions, Workload};

use crate::Error;

/// How the twin samples are drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Closed-loop user levels; each episode draws one.
    pub loads: Vec<u32>,
    /// Observations wanted (all episodes together).
    pub samples: usize,
    /// Configurations per episode (the twin keeps running between them, as a cluster would).
    pub episode_length: usize,
    /// Chance that a step draws a fresh uniform configuration instead of perturbing the last.
    pub jump_probability: f64,
    /// Standard deviation of a perturbation, in normalised action space.
    pub step_sd: f64,
    /// Window length, seconds.
    pub window_seconds: f64,
    /// QoS target the rewards are computed against.
    pub qos: Qos,
    /// Seed of every draw.
    pub seed: u64,
    /// Threads (0 = every core).
    pub threads: usize,
    /// Raised: the draw stops after the episodes in hand and fails with [`Error::Cancelled`].
    pub cancel: Cancel,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            loads: vec![10, 20, 30],
            samples: 2000,
            episode_length: 20,
            jump_probability: 0.3,
            step_sd: 0.15,
            window_seconds: 30.0,
            qos: Qos::default(),
            seed: 0,
            threads: 0,
            cancel: Cancel::new(),
        }
    }
}

/// Draws `options.samples` observations of `workflow` on the twin; `progress` is told about
/// every finished episode with its number of observations.
pub fn twin_samples(
    workflow: &Workflow,
    options: &SampleOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Observation>, Error> {
    if options.loads.is_empty() || options.loads.contains(&0) {
        return Err(Error::invalid(
            "loads",
            "give at least one user level, each above 0",
        ));
    }
    if options.episode_length == 0 {
        return Err(Error::invalid("episode_length", "must be at least 1"));
    }
    let max = faasconf_core::limits::MAX_TRAINING_SAMPLES as usize;
    if options.samples > max {
        return Err(Error::invalid(
            "samples",
            format!("{} is over the limit of {max}", options.samples),
        ));
    }
    if let Some(&users) = options
        .loads
        .iter()
        .find(|&&u| u > faasconf_core::limits::MAX_USERS)
    {
        return Err(Error::invalid(
            "loads",
            format!(
                "{users} users is over the limit of {}",
                faasconf_core::limits::MAX_USERS
            ),
        ));
    }
    options.qos.validate("qos")?;
    let episodes: Vec<usize> = (0..options.samples.div_ceil(options.episode_length)).collect();
    let per_episode = |&e: &usize| -> Result<Vec<Observation>, Error> {
        let length = options
            .episode_length
            .min(options.samples - e * options.episode_length);
        if options.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let out = episode(workflow, options, e as u64, length)?;
        progress(out.len());
        Ok(out)
    };
    let mut all = Vec::with_capacity(options.samples);
    for part in faasconf_twin::parallel::parallel_map(&episodes, options.threads, per_episode) {
        all.extend(part?);
    }
    Ok(all)
}

fn episode(
    workflow: &Workflow,
    options: &SampleOptions,
    index: u64,
    length: usize,
) -> Result<Vec<Observation>, Error> {
    let mut rng = Rng::stream(options.seed, 1000 + index);
    let users = options.loads[rng.below(options.loads.len())];
    // A fresh configuration: independent knobs, or (half the time) one random knob setting for
    // every function plus a little per-function noise. Independent draws almost always starve
    // some function; the balanced ones cover the region where QoS can be met.
    let uniform = |rng: &mut Rng| -> Vec<[f64; 4]> {
        if rng.uniform() < 0.5 {
            (0..workflow.len())
                .map(|_| [rng.uniform(), rng.uniform(), rng.uniform(), rng.uniform()])
                .collect()
        } else {
            let base = [rng.uniform(), rng.uniform(), rng.uniform(), rng.uniform()];
            (0..workflow.len())
                .map(|_| base.map(|b| (b + 0.1 * rng.normal()).clamp(0.0, 1.0)))
                .collect()
        }
    };
    let mut actions = uniform(&mut rng);
    let twin_options = TwinOptions {
        window_seconds: options.window_seconds,
        seed: options.seed.wrapping_mul(1_000_003).wrapping_add(index),
    };
    let mut twin = Twin::new(
        workflow.clone(),
        workflow.config_from_actions(&actions)?,
        Workload::ClosedLoop { users },
        twin_options,
    )?;
    twin.run_window();
    let session = format!("{}{index}", twin_session_prefix(workflow, options.seed));
    let mut out = Vec::with_capacity(length);
    for seq in 0..length as u64 {
        if seq > 0 {
            actions = if rng.uniform() < options.jump_probability {
                uniform(&mut rng)
            } else {
                actions
                    .iter()
                    .map(|a| a.map(|x| (x + options.step_sd * rng.normal()).clamp(0.0, 1.0)))
                    .collect()
            };
            twin.apply_config(workflow.config_from_actions(&actions)?)?;
            twin.run_window();
        }
        let window = twin.run_window();
        // The actions as the configuration realises them (knobs are whole numbers).
        let realised = workflow.actions_of(&window.config);
        out.push(Observation {
            workflow: workflow.name.clone(),
            source: Source::Twin,
            session: session.clone(),
            seq,
            users,
            actions: realised,
            reward: options.qos.reward(&window.workflow),
            qos_met: options.qos.met(&window.workflow),
            window,
        });
    }
    Ok(out)
}

/// The session name prefix of twin samples drawn from `workflow` (its fingerprint: topology and
/// profiles) with `seed`; samples of another twin never share it.
pub fn twin_session_prefix(workflow: &Workflow, seed: u64) -> String {
    format!("twin-{}-{seed}-", workflow.fingerprint())
}

/// Whether a twin sample's session is one of `workflow`'s twin as it is now.
pub fn of_this_twin(workflow: &Workflow, session: &str) -> bool {
    session.starts_with(&format!("twin-{}-", workflow.fingerprint()))
}
#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog::builtin;

    #[test]
    fn samples_of_another_twin_never_pass_for_this_one_s() {
        let w = faasconf_core::catalog::builtin("parallel").unwrap();
        let mut calibrated = w.clone();
        calibrated.functions[0].profile.cpu_core_seconds *= 1.2;
        assert_eq!(w.fingerprint(), w.clone().fingerprint());
        assert_ne!(w.fingerprint(), calibrated.fingerprint());
        let session = format!("{}3", twin_session_prefix(&w, 7));
        assert!(of_this_twin(&w, &session));
        assert!(!of_this_twin(&calibrated, &session));
        // The name of the pre-fingerprint layout is no twin's.
        assert!(!of_this_twin(&w, "twin-7-3"));
    }

    #[test]
    fn samples_are_steady_seeded_and_cover_the_loads() {
        let w = builtin("parallel").unwrap();
        let options = SampleOptions {
            samples: 30,
            episode_length: 7,
            threads: 2,
            ..SampleOptions::default()
        };
        let a = twin_samples(&w, &options, &|_| {}).unwrap();
        let b = twin_samples(
            &w,
            &SampleOptions {
                threads: 1,
                ..options.clone()
            },
            &|_| {},
        )
        .unwrap();
        assert_eq!(a.len(), 30);
        let balanced = |o: &Observation| {
            o.actions
                .iter()
                .all(|x| (x[3] - o.actions[0][3]).abs() < 0.5)
        };
        assert!(
            a.iter().filter(|o| balanced(o)).count() >= 5,
            "balanced configurations are drawn too"
        );
        assert_eq!(a, b, "same seed, same samples, whatever the threads");
        assert!(
            a.iter().all(|o| !o.window.transient),
            "observations are steady windows"
        );
        let loads: std::collections::BTreeSet<u32> = a.iter().map(|o| o.users).collect();
        assert!(loads.len() >= 2, "{loads:?}");
        let sessions: std::collections::BTreeSet<&str> =
            a.iter().map(|o| o.session.as_str()).collect();
        assert_eq!(sessions.len(), 5);
        for o in &a {
            assert_eq!(o.reward, options.qos.reward(&o.window.workflow));
            assert_eq!(o.qos_met, options.qos.met(&o.window.workflow));
            assert_eq!(w.config_from_actions(&o.actions).unwrap(), o.window.config);
        }
    }

    #[test]
    fn bad_options_name_the_field() {
        let w = builtin("parallel").unwrap();
        let err = twin_samples(
            &w,
            &SampleOptions {
                loads: vec![],
                ..SampleOptions::default()
            },
            &|_| {},
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("loads:"), "{err}");
        let err = twin_samples(
            &w,
            &SampleOptions {
                samples: u32::MAX as usize,
                ..SampleOptions::default()
            },
            &|_| {},
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("samples:"), "{err}");
    }

    #[test]
    fn a_cancelled_draw_stops() {
        let w = builtin("parallel").unwrap();
        let options = SampleOptions {
            samples: 40,
            threads: 1,
            ..SampleOptions::default()
        };
        options.cancel.cancel();
        assert!(matches!(
            twin_samples(&w, &options, &|_| {}),
            Err(Error::Cancelled)
        ));
    }
}
