//! Online training on the twin: after the offline updates, the agents act with exploration
//! noise on one twin per load and learn from what they caused, as MADDPG does on a cluster.
//!
//! Offline samples are random configurations, most of them far from where the policy ends up;
//! the critic is then least accurate exactly where the policy acts. Transitions of the policy's
//! own (noisy) decisions fix that. Episodes start from a random configuration and last
//! `episode_length` steps; loads take turns.

use faasconf_agents::{Learner, StateEncoder};
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Workflow};
use faasconf_twin::{Twin, TwinOptions, Workload};

use crate::Error;
use crate::model::Model;
use crate::replay::Transition;

/// Steps per online episode before a twin restarts from a random configuration.
pub const EPISODE_LENGTH: u64 = 10;

/// One twin per load, each with the last steady window the agents decide on.
pub struct OnlineTwins {
    workflow: Workflow,
    loads: Vec<u32>,
    twins: Vec<Option<(Twin, WindowReport, u64)>>,
    qos: Qos,
    window_seconds: f64,
    seed: u64,
    steps: u64,
    rng: Rng,
}

impl OnlineTwins {
    /// Twins for `loads` (started lazily), seeded by `seed`.
    pub fn new(
        workflow: &Workflow,
        loads: &[u32],
        qos: Qos,
        window_seconds: f64,
        seed: u64,
    ) -> Result<Self, Error> {
        if loads.is_empty() || loads.contains(&0) {
            return Err(Error::invalid(
                "samples",
                "online training needs samples at user levels above 0",
            ));
        }
        Ok(Self {
            workflow: workflow.clone(),
            loads: loads.to_vec(),
            twins: loads.iter().map(|_| None).collect(),
            qos,
            window_seconds,
            seed,
            steps: 0,
            rng: Rng::stream(seed, 0x0001_111e),
        })
    }

    /// One decision with exploration noise on the next load's twin; returns its transition.
    pub fn step(
        &mut self,
        learner: &mut Learner,
        encoder: &StateEncoder,
    ) -> Result<Transition, Error> {
        let slot = (self.steps % self.loads.len() as u64) as usize;
        self.steps += 1;
        let restart = self.twins[slot]
            .as_ref()
            .is_none_or(|(_, _, age)| *age >= EPISODE_LENGTH);
        if restart {
            self.twins[slot] = Some(self.fresh_twin(slot)?);
        }
        let Some((twin, last, age)) = self.twins[slot].as_mut() else {
            return Err(Error::invalid("online", "no twin"));
        };
        let state = encoder.encode(&self.workflow, last)?;
        let decision = learner.explore(&state)?;
        twin.apply_config(Model::config_of(&self.workflow, &decision)?)?;
        twin.run_window();
        let window = twin.run_window();
        // The actions as the configuration realises them (knobs are whole numbers).
        let transition = Transition::to_window(
            &self.workflow,
            encoder,
            state,
            &self.workflow.actions_of(&window.config),
            &window,
            self.qos.reward(&window.workflow),
            self.qos.met(&window.workflow),
        )?;
        *last = window;
        *age += 1;
        Ok(transition)
    }

    fn fresh_twin(&mut self, slot: usize) -> Result<(Twin, WindowReport, u64), Error> {
        let rng = &mut self.rng;
        let actions: Vec<[f64; 4]> = (0..self.workflow.len())
            .map(|_| [rng.uniform(), rng.uniform(), rng.uniform(), rng.uniform()])
            .collect();
        let mut twin = Twin::new(
            self.workflow.clone(),
            self.workflow.config_from_actions(&actions)?,
            Workload::ClosedLoop {
                users: self.loads[slot],
            },
            TwinOptions {
                window_seconds: self.window_seconds,
                seed: self.seed.wrapping_mul(7_919).wrapping_add(self.steps),
            },
        )?;
        twin.run_window();
        let window = twin.run_window();
        Ok((twin, window, 0))
    }
}
