//! `random`: uniform random search over the normalised space. Every iteration draws each knob
//! of each function uniformly in `[0, 1]` and maps it into the function's bounds; what was
//! observed does not change the next draw. The same budget as every method (the protocol's
//! iterations).

use faasconf_core::Workflow;
use faasconf_core::optimiser::{Optimiser, OptimiserError, Proposal};
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;

/// Uniform random search.
pub struct RandomSearch {
    workflow: Workflow,
    rng: Rng,
}

impl RandomSearch {
    /// Random search over `workflow`'s configurations, seeded.
    pub fn new(workflow: Workflow, seed: u64) -> Self {
        Self {
            workflow,
            rng: Rng::stream(seed, 0x7a4d),
        }
    }
}

impl Optimiser for RandomSearch {
    fn name(&self) -> &str {
        "random"
    }

    fn propose(&mut self, _observed: &WindowReport) -> Result<Proposal, OptimiserError> {
        let actions: Vec<[f64; 4]> = (0..self.workflow.len())
            .map(|_| [0; 4].map(|_| self.rng.uniform()))
            .collect();
        let config =
            self.workflow
                .config_from_actions(&actions)
                .map_err(|e| OptimiserError::Failed {
                    method: "random".into(),
                    message: e.to_string(),
                })?;
        Ok(Proposal::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Protocol, run_cell};
    use faasconf_core::{Qos, catalog};

    #[test]
    fn random_search_is_seeded_and_spreads_over_the_space() {
        let workflow = catalog::builtin("parallel").expect("built in");
        let protocol = Protocol {
            iterations: 8,
            window_seconds: 30.0,
        };
        let run = |seed| {
            let mut method = RandomSearch::new(workflow.clone(), seed);
            run_cell(&workflow, 10, &Qos::default(), &mut method, seed, &protocol).expect("runs")
        };
        let (a, b, c) = (run(4), run(4), run(5));
        let costs = |r: &crate::protocol::CellResult| -> Vec<f64> {
            r.iterations.iter().map(|i| i.cost).collect()
        };
        assert_eq!(costs(&a), costs(&b), "same seed, same proposals");
        assert_ne!(costs(&a), costs(&c), "another seed, other proposals");
        let distinct = costs(&a)
            .windows(2)
            .filter(|w| (w[0] - w[1]).abs() > 1e-9)
            .count();
        assert_eq!(distinct, 7, "every iteration draws afresh");
    }
}
