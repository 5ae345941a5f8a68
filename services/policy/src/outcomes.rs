//! What a tuning session learns about the configurations it applied: how each one fared
//! window by window (so one that keeps missing QoS is not chosen again, however well it
//! screens), and whether the twin's predictions hold (so the safety margin widens only when
//! misses exceed what the twin's own window-to-window noise explains).

use faasconf_core::WorkflowConfig;

/// Per-configuration QoS record of one session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcomes {
    records: Vec<(WorkflowConfig, u32, u32)>, // (config, windows met, windows missed)
}

impl Outcomes {
    /// Records one observed window of `config`.
    pub fn observe(&mut self, config: &WorkflowConfig, met: bool) {
        let at = match self.records.iter().position(|(c, _, _)| c == config) {
            Some(at) => at,
            None => {
                self.records.push((config.clone(), 0, 0));
                self.records.len() - 1
            }
        };
        let record = &mut self.records[at];
        if met {
            record.1 += 1;
        } else {
            record.2 += 1;
        }
    }

    /// Configurations that missed QoS in at least two windows and in more than `1 - pass_rate`
    /// of their windows: evidence, not one unlucky window.
    pub fn to_avoid(&self, pass_rate: f64) -> Vec<WorkflowConfig> {
        self.records
            .iter()
            .filter(|(_, met, missed)| {
                *missed >= 2 && f64::from(*missed) > (1.0 - pass_rate) * f64::from(met + missed)
            })
            .map(|(c, _, _)| c.clone())
            .collect()
    }
}

/// How the twin's predictions compare with what the cluster did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Calibration {
    /// Misses the twin's held-out pass rates predicted (sum of `1 - pass rate`).
    expected_misses: f64,
    /// Misses of configurations the twin said would meet QoS.
    misses: u32,
}

impl Calibration {
    /// Records a window of a configuration the twin predicted to pass `expected_pass_rate` of
    /// windows; true when the misses now exceed the expected ones by more than one, i.e. the
    /// twin is optimistic and the margin should widen (the record then starts again).
    pub fn observe(&mut self, expected_pass_rate: f64, met: bool) -> bool {
        self.expected_misses += (1.0 - expected_pass_rate).clamp(0.0, 1.0);
        self.misses += u32::from(!met);
        let optimistic = f64::from(self.misses) > self.expected_misses + 1.0;
        if optimistic {
            *self = Self::default();
        }
        optimistic
    }
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
    fn a_configuration_is_avoided_after_repeated_misses_only() {
        let mut o = Outcomes::default();
        o.observe(&config(500), false);
        assert!(o.to_avoid(0.85).is_empty(), "one miss is not evidence");
        for _ in 0..20 {
            o.observe(&config(500), true);
        }
        o.observe(&config(500), false);
        assert!(
            o.to_avoid(0.85).is_empty(),
            "2 misses in 22 windows is within 15%"
        );
        o.observe(&config(600), false);
        o.observe(&config(600), true);
        o.observe(&config(600), false);
        assert_eq!(o.to_avoid(0.85), vec![config(600)]);
    }

    #[test]
    fn the_margin_widens_only_when_misses_exceed_the_predicted_ones() {
        let mut c = Calibration::default();
        // The twin predicted 60% passes: 4 misses in 10 windows are what it said.
        let widened = (0..10).filter(|&i| c.observe(0.6, i % 3 != 0)).count();
        assert_eq!(widened, 0);
        // It predicted every window would pass: the second miss is one too many.
        let mut c = Calibration::default();
        assert!(!c.observe(1.0, false));
        assert!(c.observe(1.0, false));
        assert!(
            !c.observe(1.0, false),
            "the record starts again after widening"
        );
    }
}
