//! What a tuning session learns about the twin's windows and predictions: how each screened
//! configuration fared on the confirmation seeds, window by window, and whether the twin's
//! predictions hold on the cluster (so the safety margin widens only when misses exceed what
//! the twin's own window-to-window noise explains). What the cluster did with each applied
//! configuration is [`crate::bests`]'s record.

use faasconf_core::WorkflowConfig;

/// Per-configuration window record of one session: the windows each configuration met QoS in
/// and missed it in on the twin's confirmation seeds (fresh on every decision).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    records: Vec<(WorkflowConfig, u32, u32)>, // (config, windows met, windows missed)
}

impl Tally {
    /// Records one window of `config`.
    pub fn observe(&mut self, config: &WorkflowConfig, met: bool) {
        self.add(config, u32::from(met), u32::from(!met));
    }

    /// Records `met` and `missed` windows of `config`.
    pub fn add(&mut self, config: &WorkflowConfig, met: u32, missed: u32) {
        let at = match self.records.iter().position(|(c, _, _)| c == config) {
            Some(at) => at,
            None => {
                self.records.push((config.clone(), 0, 0));
                self.records.len() - 1
            }
        };
        let record = &mut self.records[at];
        record.1 += met;
        record.2 += missed;
    }

    /// The share of `config`'s windows that met QoS (none recorded: `None`).
    pub fn pass_rate(&self, config: &WorkflowConfig) -> Option<f64> {
        let (_, met, missed) = self.records.iter().find(|(c, _, _)| c == config)?;
        (met + missed > 0).then(|| f64::from(*met) / f64::from(met + missed))
    }
}

/// How the twin's predictions compare with what the cluster did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// The miss probability the twin's held-out pass rate gave each window observed since the
    /// record (re)started.
    predicted_misses: Vec<f64>,
    /// Misses among those windows.
    misses: usize,
}

/// How unlikely the misses must be under the twin's predictions before they count as evidence
/// that the twin is optimistic (a one-sided test; a window is noisy, and widening the margin on
/// noise sends the session to dear configurations for nothing).
const SIGNIFICANCE: f64 = 0.05;

impl Calibration {
    /// Records a window of a configuration the twin predicted to pass `expected_pass_rate` of
    /// windows; true when so many windows missed that the twin's predictions explain them with
    /// probability under 5%, i.e. the twin is optimistic and the margin should widen (the record
    /// then starts again).
    pub fn observe(&mut self, expected_pass_rate: f64, met: bool) -> bool {
        self.predicted_misses
            .push((1.0 - expected_pass_rate).clamp(0.0, 1.0));
        self.misses += usize::from(!met);
        let optimistic =
            !met && tail_probability(&self.predicted_misses, self.misses) < SIGNIFICANCE;
        if optimistic {
            *self = Self::default();
        }
        optimistic
    }
}

/// P(at least `k` of independent events with probabilities `p` happen) (Poisson-binomial).
fn tail_probability(p: &[f64], k: usize) -> f64 {
    // distribution[j]: P(exactly j events so far).
    let mut distribution = vec![1.0];
    for &q in p {
        let mut next = vec![0.0; distribution.len() + 1];
        for (j, &d) in distribution.iter().enumerate() {
            next[j] += d * (1.0 - q);
            next[j + 1] += d * q;
        }
        distribution = next;
    }
    distribution.iter().skip(k).sum::<f64>().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::FunctionConfig;

    fn config(cpu: u32) -> WorkflowConfig {
        WorkflowConfig(vec![FunctionConfig {
            cpu_millis: cpu,
            memory_mib: 256,
            replicas: 1,
            concurrency: 1,
        }])
    }

    #[test]
    fn a_record_adds_up_windows_per_configuration() {
        let mut o = Tally::default();
        o.observe(&config(600), false);
        o.observe(&config(600), true);
        o.observe(&config(600), false);
        assert_eq!(o.pass_rate(&config(600)), Some(1.0 / 3.0));
        o.add(&config(600), 7, 0);
        assert_eq!(o.pass_rate(&config(600)), Some(0.8));
        assert_eq!(o.pass_rate(&config(700)), None);
    }

    #[test]
    fn the_margin_widens_only_when_the_predictions_cannot_explain_the_misses() {
        let mut c = Calibration::default();
        // The twin predicted 60% passes: 4 misses in 10 windows are what it said.
        let widened = (0..10).filter(|&i| c.observe(0.6, i % 3 != 0)).count();
        assert_eq!(widened, 0);
        // It predicted 85%: 2 misses in 4 windows happen 11% of the time, 3 in 5 only 2.7%.
        let mut c = Calibration::default();
        assert!(!c.observe(0.85, false));
        assert!(!c.observe(0.85, true));
        assert!(!c.observe(0.85, true));
        assert!(!c.observe(0.85, false));
        assert!(c.observe(0.85, false));
        assert!(
            !c.observe(0.85, false),
            "the record starts again after widening"
        );
        // It predicted every window would pass: the first miss is impossible under that.
        let mut c = Calibration::default();
        assert!(c.observe(1.0, false));
    }

    #[test]
    fn tail_probabilities_are_those_of_the_binomial() {
        assert!((tail_probability(&[0.15; 4], 2) - 0.109_5).abs() < 1e-3);
        assert!((tail_probability(&[0.5; 3], 0) - 1.0).abs() < 1e-12);
        assert!((tail_probability(&[0.5; 3], 3) - 0.125).abs() < 1e-12);
        assert!(tail_probability(&[0.2], 2).abs() < 1e-12);
    }
}
