//! Transitions rebuilt from stored observations, and the replay buffer the learner samples.
//!
//! An observation is a configuration and the steady window it produced. Within one session
//! (ordered by `seq`) consecutive steady observations k, k+1 make a transition: the state is
//! window k, the action is the configuration of k+1, the reward and next state are k+1's.
//! Transient windows (an apply finished inside them) are skipped, never learnt from.

use faasconf_agents::{Batch, StateEncoder};
use faasconf_core::Workflow;
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_store::Observation;

use crate::Error;

/// One transition, encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// State `[n * STATE_DIM]`.
    pub state: Vec<f32>,
    /// Action `[n * 4]`.
    pub action: Vec<f32>,
    /// Shared reward.
    pub reward: f32,
    /// Next state.
    pub next_state: Vec<f32>,
    /// Whether the action's window met QoS (the actor may imitate it).
    pub qos_met: bool,
}

impl Transition {
    /// The transition from the encoded `state` to the window `after`, which `actions` (the
    /// configuration in force during `after`, normalised) produced with `reward`.
    pub fn to_window(
        workflow: &Workflow,
        encoder: &StateEncoder,
        state: Vec<f32>,
        actions: &[[f64; 4]],
        after: &WindowReport,
        reward: f64,
        qos_met: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            state,
            action: actions.iter().flatten().map(|&a| a as f32).collect(),
            reward: reward as f32,
            next_state: encoder.encode(workflow, after)?,
            qos_met,
        })
    }
}

/// The transitions of `observations` (any order; grouped by session, ordered by `seq`).
pub fn transitions(
    workflow: &Workflow,
    encoder: &StateEncoder,
    observations: &[&Observation],
) -> Result<Vec<Transition>, Error> {
    let mut steady: Vec<&Observation> = observations
        .iter()
        .copied()
        .filter(|o| !o.window.transient && o.workflow == workflow.name)
        .collect();
    steady.sort_by(|a, b| {
        (a.source as u8, &a.session, a.seq).cmp(&(b.source as u8, &b.session, b.seq))
    });
    let mut out = Vec::new();
    for pair in steady.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if before.session != after.session || before.source != after.source {
            continue;
        }
        out.push(Transition::to_window(
            workflow,
            encoder,
            encoder.encode(workflow, &before.window)?,
            &after.actions,
            &after.window,
            after.reward,
            after.qos_met,
        )?);
    }
    Ok(out)
}

/// Transitions to learn from, sampled uniformly with replacement; bounded (oldest dropped).
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    items: Vec<Transition>,
    capacity: usize,
    next: usize,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `capacity` transitions.
    pub fn new(capacity: usize) -> Self {
        Self {
            items: Vec::new(),
            capacity: capacity.max(1),
            next: 0,
        }
    }

    /// Transitions held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a transition, replacing the oldest when full.
    pub fn push(&mut self, transition: Transition) {
        if self.items.len() < self.capacity {
            self.items.push(transition);
        } else {
            self.items[self.next] = transition;
            self.next = (self.next + 1) % self.capacity;
        }
    }

    /// A batch of `size` transitions drawn with `rng` (empty when the buffer is).
    pub fn sample(&self, size: usize, rng: &mut Rng) -> Batch {
        let mut batch = Batch::default();
        if self.items.is_empty() {
            return batch;
        }
        for _ in 0..size {
            let t = &self.items[rng.below(self.items.len())];
            batch.states.extend_from_slice(&t.state);
            batch.actions.extend_from_slice(&t.action);
            batch.rewards.push(t.reward);
            batch.next_states.extend_from_slice(&t.next_state);
            batch.imitate.push(if t.qos_met { 1.0 } else { 0.0 });
        }
        batch
    }
}

impl Extend<Transition> for ReplayBuffer {
    fn extend<I: IntoIterator<Item = Transition>>(&mut self, iter: I) {
        for t in iter {
            self.push(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{SampleOptions, twin_samples};
    use faasconf_core::catalog::builtin;

    #[test]
    fn transitions_pair_consecutive_steady_windows_of_one_session() {
        let w = builtin("parallel").unwrap();
        let mut obs = twin_samples(
            &w,
            &SampleOptions {
                samples: 12,
                episode_length: 4,
                loads: vec![10],
                ..SampleOptions::default()
            },
            &|_| {},
        )
        .unwrap();
        obs[1].window.transient = true;
        obs.reverse();
        let refs: Vec<&Observation> = obs.iter().collect();
        let windows: Vec<&_> = obs.iter().map(|o| &o.window).collect();
        let encoder = StateEncoder::fit(&w, &windows).unwrap();
        let t = transitions(&w, &encoder, &refs).unwrap();
        // 3 sessions of 4 give 3 each; the transient window in the first leaves 0->2 and 2->3.
        assert_eq!(t.len(), 8);
        let first: Vec<f32> = obs
            .iter()
            .rev()
            .nth(2)
            .unwrap()
            .actions
            .iter()
            .flatten()
            .map(|&a| a as f32)
            .collect();
        assert_eq!(
            t[0].action, first,
            "the action of 0 -> 2 is the configuration of 2"
        );
    }

    #[test]
    fn the_buffer_is_bounded_and_samples_whole_transitions() {
        let mut buffer = ReplayBuffer::new(3);
        for i in 0..5 {
            buffer.push(Transition {
                state: vec![i as f32; 2],
                action: vec![0.0; 4],
                reward: i as f32,
                next_state: vec![0.0; 2],
                qos_met: i % 2 == 0,
            });
        }
        assert_eq!(buffer.len(), 3);
        let batch = buffer.sample(50, &mut Rng::new(1));
        assert_eq!(
            (batch.states.len(), batch.actions.len(), batch.rewards.len()),
            (100, 200, 50)
        );
        assert!(
            batch.rewards.iter().all(|&r| r >= 2.0),
            "the two oldest were replaced"
        );
    }
}
