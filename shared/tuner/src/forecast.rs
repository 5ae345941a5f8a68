//! The load ahead: what a decision plans for under changing load. A change takes effect a
//! window later (its rollout) and then serves for at least another, so a decision made for the
//! load just measured is late when the load rises. [`LoadForecast`] keeps the load of the
//! windows seen and plans for the upper quantile of an ETS forecast of the next windows
//! (`augurs-ets`' AutoETS: the model — level, trend, damping — chosen by AICc on the recent
//! windows), with hysteresis: never below the highest of the last few windows, so resources
//! come down only after a sustained fall. A steady load plans exactly for itself.

use std::collections::VecDeque;

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;

/// How far ahead and how cautiously a decision plans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastOptions {
    /// Windows forecast: the rollout window of a change and the first it serves.
    pub horizon: usize,
    /// The forecast interval's level; its upper bound is planned for.
    pub level: f64,
    /// Hysteresis: the plan is never below the highest load of this many newest windows.
    pub hold: usize,
    /// Windows needed before a forecast is fitted (before that: hysteresis alone).
    pub min_history: usize,
    /// Windows kept and fitted.
    pub max_history: usize,
    /// The plan is at most this many times the newest window's load (a trend's interval can
    /// widen without bound; the next decision sees the load again).
    pub max_rise: f64,
}

impl Default for ForecastOptions {
    fn default() -> Self {
        Self {
            horizon: 2,
            level: 0.9,
            hold: 3,
            min_history: 8,
            max_history: 48,
            max_rise: 1.5,
        }
    }
}

/// The load of the windows seen, and the load to plan for.
#[derive(Debug, Clone)]
pub struct LoadForecast {
    options: ForecastOptions,
    loads: VecDeque<f64>,
}

impl LoadForecast {
    /// An empty history.
    pub fn new(options: ForecastOptions) -> Self {
        Self {
            options,
            loads: VecDeque::with_capacity(options.max_history),
        }
    }

    /// Records one window's load (users or arrivals per second; one unit per forecast).
    /// Not finite or negative: ignored.
    pub fn observe(&mut self, load: f64) {
        if !(load.is_finite() && load >= 0.0) {
            return;
        }
        if self.loads.len() == self.options.max_history.max(1) {
            self.loads.pop_front();
        }
        self.loads.push_back(load);
    }

    /// Forgets every window (the load's unit changed).
    pub fn clear(&mut self) {
        self.loads.clear();
    }

    /// The load to plan the next decision for (`None` before a window): the upper bound of
    /// the forecast interval over the next `horizon` windows (at most `max_rise` times the
    /// newest), and at least the highest of the last `hold` windows.
    pub fn plan(&self) -> Option<f64> {
        let newest = *self.loads.back()?;
        let held = self
            .loads
            .iter()
            .rev()
            .take(self.options.hold.max(1))
            .copied()
            .fold(newest, f64::max);
        let ahead = self
            .upper_forecast()
            .map_or(held, |a| a.min(newest * self.options.max_rise));
        Some(ahead.max(held))
    }

    /// The highest upper bound of the forecast interval over the horizon, when there is enough
    /// history and the load varies (a constant series has nothing to forecast).
    fn upper_forecast(&self) -> Option<f64> {
        if self.loads.len() < self.options.min_history {
            return None;
        }
        let first = self.loads[0];
        if self.loads.iter().all(|&l| l == first) {
            return Some(first);
        }
        let series: Vec<f64> = self.loads.iter().copied().collect();
        let model = AutoETS::non_seasonal().fit(&series).ok()?;
        let forecast = model
            .predict(self.options.horizon.max(1), self.options.level)
            .ok()?;
        let upper = forecast.intervals?.upper;
        upper.into_iter().filter(|u| u.is_finite()).reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fed(loads: &[f64]) -> LoadForecast {
        let mut f = LoadForecast::new(ForecastOptions::default());
        for &l in loads {
            f.observe(l);
        }
        f
    }

    #[test]
    fn a_steady_load_plans_for_itself() {
        assert_eq!(fed(&[]).plan(), None);
        assert_eq!(fed(&[20.0; 3]).plan(), Some(20.0));
        assert_eq!(fed(&[20.0; 30]).plan(), Some(20.0));
    }

    #[test]
    fn a_rise_is_planned_ahead_and_a_fall_only_after_it_lasts() {
        let rising: Vec<f64> = (0..16).map(|i| 10.0 + f64::from(i)).collect();
        let plan = fed(&rising).plan().unwrap();
        assert!(plan > 25.0, "a steady rise continues: {plan}");
        assert!(plan <= 25.0 * 1.5, "{plan}");
        // Hysteresis: one quiet window after a peak does not bring the plan down.
        let mut dip = vec![20.0; 12];
        dip.push(30.0);
        dip.push(12.0);
        assert!(fed(&dip).plan().unwrap() >= 30.0);
        // Sustained: after `hold` quiet windows it comes down.
        dip.extend([12.0; 4]);
        assert!(fed(&dip).plan().unwrap() < 20.0);
    }

    #[test]
    fn noise_adds_a_margin_and_bad_values_are_ignored() {
        let noisy: Vec<f64> = (0..24)
            .map(|i| 20.0 + if i % 2 == 0 { 1.5 } else { -1.5 })
            .collect();
        let mut f = fed(&noisy);
        let plan = f.plan().unwrap();
        assert!((21.5..30.0).contains(&plan), "{plan}");
        f.observe(f64::NAN);
        f.observe(-3.0);
        assert_eq!(f.plan(), Some(plan));
    }
}
