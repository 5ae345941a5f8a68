//! Quality of service: the end-to-end target a configuration must meet, and the shared reward
//! every agent learns from.

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, Result};
use crate::telemetry::WorkflowWindow;

/// The end-to-end target of a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Qos {
    /// Mean end-to-end latency must stay below this, seconds.
    pub mean_latency_seconds: f64,
    /// Successful / total requests must stay at or above this (0..=1).
    pub min_success_ratio: f64,
}

impl Default for Qos {
    /// The reference's target for the ML workflows: mean latency 13 s, success ratio 0.9.
    fn default() -> Self {
        Self {
            mean_latency_seconds: 13.0,
            min_success_ratio: 0.9,
        }
    }
}

/// Weight of the cost in the reward (the prototype's `-0.1 * price`).
pub const COST_WEIGHT: f64 = 0.1;
/// What a window that misses QoS pays on top of its cost. The prototype paid 0.5: on `parallel`
/// at 30 users that makes the cheapest configuration (cost 0.3, QoS missed: -0.53) a better
/// reward than the cheapest one meeting QoS (cost 5.8: -0.58), so agents learnt to miss QoS.
pub const MISS_PENALTY: f64 = 1.0;
/// Weight of how far a missed window fell short of the target ([`Qos::shortfall`]): the flat
/// penalty gives the critic no slope towards QoS, so the policy gradient only ever saw cost.
pub const SHORTFALL_WEIGHT: f64 = 1.0;
/// The shortfall is capped here (and an empty window counts as this far short).
pub const SHORTFALL_CAP: f64 = 2.0;

impl Qos {
    /// Checks the target; `prefix` names the field (e.g. `qos`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let mut errors = Vec::new();
        if !(self.mean_latency_seconds.is_finite() && self.mean_latency_seconds > 0.0) {
            errors.push(FieldError::new(
                format!("{prefix}.mean_latency"),
                format!("{} is not a positive latency", self.mean_latency_seconds),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_success_ratio) {
            errors.push(FieldError::new(
                format!("{prefix}.min_success_ratio"),
                format!("{} is not in 0..=1", self.min_success_ratio),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::Invalid(errors))
        }
    }

    /// Whether a window met the target. A window in which no request finished did not, nor
    /// did one whose rollout stalled (its figures are an earlier configuration's), nor one
    /// whose end-to-end figures were not measured.
    pub fn met(&self, window: &WorkflowWindow) -> bool {
        window.total_requests > 0
            && !window.rollout_stalled
            && window.end_to_end_measured()
            && window.mean_latency_seconds < self.mean_latency_seconds
            && window.success_ratio >= self.min_success_ratio
    }

    /// How far a window fell short of the target: the relative excess of its mean latency plus
    /// the relative shortfall of its success ratio, capped at [`SHORTFALL_CAP`] (0 when met).
    pub fn shortfall(&self, window: &WorkflowWindow) -> f64 {
        if window.total_requests == 0 {
            return SHORTFALL_CAP;
        }
        let latency = (window.mean_latency_seconds / self.mean_latency_seconds - 1.0).max(0.0);
        let success = if self.min_success_ratio > 0.0 {
            ((self.min_success_ratio - window.success_ratio) / self.min_success_ratio).max(0.0)
        } else {
            0.0
        };
        (latency + success).min(SHORTFALL_CAP)
    }

    /// How far a window kept inside the target, relative to it: when met, the smaller of the
    /// latency's (`1 - mean / target`) and the success ratio's (`ratio / minimum - 1`) room;
    /// when missed, minus its [`Qos::shortfall`]. Continuous across the edge where one figure
    /// decides, so windows of one configuration say how close to the edge it runs.
    pub fn headroom(&self, window: &WorkflowWindow) -> f64 {
        if !self.met(window) {
            return -self.shortfall(window);
        }
        let latency = 1.0 - window.mean_latency_seconds / self.mean_latency_seconds;
        let success = if self.min_success_ratio > 0.0 {
            window.success_ratio / self.min_success_ratio - 1.0
        } else {
            f64::INFINITY
        };
        latency.min(success)
    }

    /// The shared reward of a window, `alpha * y(C) + beta` with `beta` paid only when QoS is met:
    /// `-0.1 * cost`, and when QoS was missed minus [`MISS_PENALTY`] and the weighted
    /// [`Qos::shortfall`].
    pub fn reward(&self, window: &WorkflowWindow) -> f64 {
        let missed = if self.met(window) {
            0.0
        } else {
            MISS_PENALTY + SHORTFALL_WEIGHT * self.shortfall(window)
        };
        -COST_WEIGHT * window.cost - missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(mean: f64, ratio: f64, total: u64, cost: f64) -> WorkflowWindow {
        WorkflowWindow {
            mean_latency_seconds: mean,
            p95_latency_seconds: mean,
            successful_requests: 0,
            total_requests: total,
            success_ratio: ratio,
            throughput_rps: 0.0,
            cost,
            rollout_stalled: false,
            arrivals: 0,
            mean_in_flight: 0.0,
            missing_series: Vec::new(),
        }
    }

    #[test]
    fn qos_needs_latency_below_and_ratio_at_least_the_target() {
        let qos = Qos::default();
        assert!(qos.met(&window(12.9, 0.9, 10, 3.0)));
        assert!(
            !qos.met(&window(13.0, 1.0, 10, 3.0)),
            "latency must stay below"
        );
        assert!(!qos.met(&window(5.0, 0.89, 10, 3.0)));
        assert!(
            !qos.met(&window(0.0, 0.0, 0, 3.0)),
            "an empty window proves nothing"
        );
    }

    #[test]
    fn the_reward_pays_cost_and_grades_how_far_qos_was_missed() {
        let qos = Qos::default();
        assert!((qos.reward(&window(5.0, 1.0, 10, 3.0)) + 0.3).abs() < 1e-12);
        // 19.5 s is 50% over 13 s; the ratio 0.81 is 10% under 0.9.
        assert!((qos.shortfall(&window(19.5, 0.81, 10, 3.0)) - 0.6).abs() < 1e-12);
        assert!((qos.reward(&window(19.5, 0.81, 10, 3.0)) + 0.3 + 1.0 + 0.6).abs() < 1e-12);
        assert_eq!(qos.shortfall(&window(500.0, 0.0, 10, 3.0)), SHORTFALL_CAP);
        assert_eq!(qos.shortfall(&window(0.0, 0.0, 0, 3.0)), SHORTFALL_CAP);
        // Missing by a hair costs more than any configuration under cost 10 saves.
        assert!(qos.reward(&window(13.01, 1.0, 10, 0.3)) < qos.reward(&window(12.0, 1.0, 10, 9.9)));
        // Further from the target is worse at the same cost: the slope the critic learns.
        assert!(qos.reward(&window(30.0, 1.0, 10, 1.0)) < qos.reward(&window(15.0, 1.0, 10, 1.0)));
    }

    #[test]
    fn bad_targets_name_their_field() {
        let err = Qos {
            mean_latency_seconds: -1.0,
            min_success_ratio: 1.5,
        }
        .validate("qos")
        .unwrap_err();
        let fields: Vec<&str> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["qos.mean_latency", "qos.min_success_ratio"]);
    }

    #[test]
    fn headroom_is_the_nearer_figure_inside_the_target_and_minus_the_shortfall_outside() {
        let qos = Qos::default();
        let inside = window(10.0, 0.945, 200, 1.0);
        assert!(
            (qos.headroom(&inside) - 0.05).abs() < 1e-9,
            "the success ratio is nearer"
        );
        let slow = window(12.35, 1.0, 200, 1.0);
        assert!(
            (qos.headroom(&slow) - 0.05).abs() < 1e-9,
            "the latency is nearer"
        );
        let missed = window(14.3, 1.0, 200, 1.0);
        assert!((qos.headroom(&missed) + 0.1).abs() < 1e-9);
        assert!((qos.headroom(&window(1.0, 1.0, 0, 1.0)) + SHORTFALL_CAP).abs() < 1e-12);
    }
}
