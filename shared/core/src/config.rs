//! Hybrid configurations, their bounds, validation, and the normalised-action mapping.
//!
//! A normalised action `a in [0,1]` maps to a knob as in the FaaSConf prototype and data set:
//! CPU and memory `round(a*(max-min)+min)` (Python's round: half to even), replicas and
//! concurrency `floor(a*(max-min)+min)`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError, Result};

/// The four knobs of a hybrid configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// CPU limit of one container, millicores.
    CpuMillis,
    /// Memory limit of one container, MiB.
    MemoryMib,
    /// Number of replicas.
    Replicas,
    /// Requests one replica serves at once (OpenFaaS `max_inflight`).
    Concurrency,
}

impl Knob {
    /// All knobs, in the order of the normalised action vector.
    pub const ALL: [Knob; 4] = [
        Knob::CpuMillis,
        Knob::MemoryMib,
        Knob::Replicas,
        Knob::Concurrency,
    ];

    /// The field name used in files, JSON and RPCs.
    pub fn name(self) -> &'static str {
        match self {
            Knob::CpuMillis => "cpu_millis",
            Knob::MemoryMib => "memory_mib",
            Knob::Replicas => "replicas",
            Knob::Concurrency => "concurrency",
        }
    }

    /// Whether the action mapping rounds (CPU, memory) or floors (replicas, concurrency).
    fn rounds(self) -> bool {
        matches!(self, Knob::CpuMillis | Knob::MemoryMib)
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hybrid configuration of one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FunctionConfig {
    /// CPU limit of one container, millicores.
    pub cpu_millis: u32,
    /// Memory limit of one container, MiB.
    pub memory_mib: u32,
    /// Number of replicas.
    pub replicas: u32,
    /// Requests one replica serves at once; more are rejected with HTTP 429.
    pub concurrency: u32,
}

impl FunctionConfig {
    /// The value of one knob.
    pub fn get(&self, knob: Knob) -> u32 {
        match knob {
            Knob::CpuMillis => self.cpu_millis,
            Knob::MemoryMib => self.memory_mib,
            Knob::Replicas => self.replicas,
            Knob::Concurrency => self.concurrency,
        }
    }

    /// Sets one knob.
    pub fn set(&mut self, knob: Knob, value: u32) {
        match knob {
            Knob::CpuMillis => self.cpu_millis = value,
            Knob::MemoryMib => self.memory_mib = value,
            Knob::Replicas => self.replicas = value,
            Knob::Concurrency => self.concurrency = value,
        }
    }

    /// Requests the function can hold at once over all replicas.
    pub fn capacity(&self) -> u32 {
        self.concurrency.saturating_mul(self.replicas)
    }
}

/// Inclusive bounds of one knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Smallest allowed value.
    pub min: u32,
    /// Largest allowed value.
    pub max: u32,
}

impl Range {
    /// A range; `min <= max` is checked by [`FunctionBounds::validate`].
    pub const fn new(min: u32, max: u32) -> Self {
        Self { min, max }
    }

    /// Whether `value` lies inside.
    pub fn contains(&self, value: u32) -> bool {
        (self.min..=self.max).contains(&value)
    }

    /// The values in both ranges (`None` when they do not overlap).
    pub fn intersect(self, other: Range) -> Option<Range> {
        let (min, max) = (self.min.max(other.min), self.max.min(other.max));
        (min <= max).then_some(Range { min, max })
    }

    fn span(&self) -> f64 {
        f64::from(self.max - self.min)
    }
}

/// The configuration space of one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionBounds {
    /// CPU limit, millicores.
    pub cpu_millis: Range,
    /// Memory limit, MiB.
    pub memory_mib: Range,
    /// Replicas.
    pub replicas: Range,
    /// Concurrency limit per replica.
    pub concurrency: Range,
}

impl FunctionBounds {
    /// The ML workflows' space in the paper: CPU 250-2000 m, memory 256-2048 MiB, 1-8 replicas,
    /// concurrency 1-10.
    pub const ML: FunctionBounds = FunctionBounds {
        cpu_millis: Range::new(250, 2000),
        memory_mib: Range::new(256, 2048),
        replicas: Range::new(1, 8),
        concurrency: Range::new(1, 10),
    };

    /// TcktApp's space in the paper: CPU up to 1000 m, memory up to 1024 MiB.
    pub const TCKTAPP: FunctionBounds = FunctionBounds {
        cpu_millis: Range::new(250, 1000),
        memory_mib: Range::new(256, 1024),
        replicas: Range::new(1, 8),
        concurrency: Range::new(1, 10),
    };

    /// These bounds within `limits` (e.g. a platform's or an actuator's announced bounds):
    /// every knob narrowed to both; the first knob whose ranges do not overlap otherwise.
    pub fn within(&self, limits: &FunctionBounds) -> std::result::Result<FunctionBounds, Knob> {
        let narrowed = |knob| self.range(knob).intersect(limits.range(knob)).ok_or(knob);
        Ok(FunctionBounds {
            cpu_millis: narrowed(Knob::CpuMillis)?,
            memory_mib: narrowed(Knob::MemoryMib)?,
            replicas: narrowed(Knob::Replicas)?,
            concurrency: narrowed(Knob::Concurrency)?,
        })
    }

    /// These bounds with at most `max` replicas (a platform's cap; at least 1 stays allowed).
    pub fn with_max_replicas(&self, max: u32) -> FunctionBounds {
        let replicas = Range::new(
            self.replicas.min.min(max.max(1)),
            self.replicas.max.min(max.max(1)),
        );
        FunctionBounds { replicas, ..*self }
    }

    /// The range of one knob.
    pub fn range(&self, knob: Knob) -> Range {
        match knob {
            Knob::CpuMillis => self.cpu_millis,
            Knob::MemoryMib => self.memory_mib,
            Knob::Replicas => self.replicas,
            Knob::Concurrency => self.concurrency,
        }
    }

    /// Checks the bounds themselves (min <= max, replicas and concurrency at least 1).
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for knob in Knob::ALL {
            let range = self.range(knob);
            if range.min > range.max {
                errors.push(FieldError::new(
                    format!("{prefix}.{knob}"),
                    format!("min {} is above max {}", range.min, range.max),
                ));
            }
            if range.min == 0 {
                errors.push(FieldError::new(
                    format!("{prefix}.{knob}.min"),
                    "must be at least 1",
                ));
            }
        }
        errors
    }

    /// Every knob of `config` outside these bounds, as field errors under `prefix`.
    pub fn check(&self, config: &FunctionConfig, prefix: &str) -> Vec<FieldError> {
        Knob::ALL
            .iter()
            .filter_map(|&knob| {
                let (value, range) = (config.get(knob), self.range(knob));
                (!range.contains(value)).then(|| {
                    FieldError::new(
                        format!("{prefix}.{knob}"),
                        format!(
                            "{value} is outside the bounds {}..={}",
                            range.min, range.max
                        ),
                    )
                })
            })
            .collect()
    }

    /// Maps a normalised action (cpu, memory, replicas, concurrency in `[0,1]`) to a configuration.
    pub fn from_action(&self, action: [f64; 4]) -> Result<FunctionConfig> {
        let mut config = FunctionConfig {
            cpu_millis: 0,
            memory_mib: 0,
            replicas: 0,
            concurrency: 0,
        };
        for (knob, a) in Knob::ALL.into_iter().zip(action) {
            if !(0.0..=1.0).contains(&a) {
                return Err(Error::field(
                    format!("action.{knob}"),
                    format!("{a} is not in [0, 1]"),
                ));
            }
            let range = self.range(knob);
            let raw = a * range.span() + f64::from(range.min);
            // A small tolerance keeps `to_action` -> `from_action` an exact round trip for floors.
            let value = if knob.rounds() {
                raw.round_ties_even()
            } else {
                (raw + 1e-9).floor()
            };
            // In range by construction: raw lies in [min, max].
            config.set(knob, (value as u32).clamp(range.min, range.max));
        }
        Ok(config)
    }

    /// The normalised action of a configuration (inverse of [`Self::from_action`] on the grid).
    pub fn to_action(&self, config: &FunctionConfig) -> [f64; 4] {
        Knob::ALL.map(|knob| {
            let range = self.range(knob);
            if range.max == range.min {
                0.0
            } else {
                (f64::from(config.get(knob).clamp(range.min, range.max)) - f64::from(range.min))
                    / range.span()
            }
        })
    }
}

/// A configuration for every function of a workflow, in the workflow's function order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkflowConfig(pub Vec<FunctionConfig>);

impl WorkflowConfig {
    /// The configurations in function order.
    pub fn functions(&self) -> &[FunctionConfig] {
        &self.0
    }

    /// Cost of the whole configuration.
    pub fn cost(&self) -> f64 {
        crate::cost::workflow_cost(&self.0)
    }

    /// The smallest capacity (concurrency x replicas) over the functions.
    pub fn min_capacity(&self) -> u32 {
        self.0
            .iter()
            .map(FunctionConfig::capacity)
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds_within_limits_narrow_each_knob_and_name_the_one_that_cannot() {
        let ce = FunctionBounds::ML.with_max_replicas(5);
        assert_eq!(ce.replicas, Range::new(1, 5));
        assert_eq!(ce.cpu_millis, FunctionBounds::ML.cpu_millis);
        assert_eq!(FunctionBounds::ML.within(&ce), Ok(ce));
        assert_eq!(
            FunctionBounds::TCKTAPP.within(&FunctionBounds::ML),
            Ok(FunctionBounds::TCKTAPP)
        );
        let disjoint = FunctionBounds {
            memory_mib: Range::new(4096, 8192),
            ..FunctionBounds::ML
        };
        assert_eq!(FunctionBounds::ML.within(&disjoint), Err(Knob::MemoryMib));
        // A cap under the range's minimum keeps one allowed value.
        let high = FunctionBounds {
            replicas: Range::new(6, 8),
            ..FunctionBounds::ML
        };
        assert_eq!(high.with_max_replicas(5).replicas, Range::new(5, 5));
        assert_eq!(high.with_max_replicas(0).replicas, Range::new(1, 1));
    }

    #[test]
    fn action_mapping_matches_the_data_set_formulas() {
        // cpu = round(x*1750+250), mem = round(x*1792+256), replicas = floor(x*7+1), conc = floor(x*9+1)
        let c = FunctionBounds::ML
            .from_action([
                0.2973842115819504,
                0.7141507340758059,
                0.5579962325721194,
                0.42184179380859455,
            ])
            .unwrap();
        assert_eq!(
            c,
            FunctionConfig {
                cpu_millis: 770,
                memory_mib: 1536,
                replicas: 4,
                concurrency: 4
            }
        );
        let floor = FunctionBounds::ML
            .from_action([0.2, 0.2, 0.2, 0.2])
            .unwrap();
        assert_eq!(
            floor,
            FunctionConfig {
                cpu_millis: 600,
                memory_mib: 614,
                replicas: 2,
                concurrency: 2
            }
        );
        let top = FunctionBounds::ML.from_action([1.0; 4]).unwrap();
        assert_eq!(
            top,
            FunctionConfig {
                cpu_millis: 2000,
                memory_mib: 2048,
                replicas: 8,
                concurrency: 10
            }
        );
    }

    #[test]
    fn actions_outside_the_unit_interval_are_refused_by_field() {
        let err = FunctionBounds::ML
            .from_action([0.5, f64::NAN, 0.5, 0.5])
            .unwrap_err();
        assert_eq!(err.field_errors()[0].field, "action.memory_mib");
        let err = FunctionBounds::ML
            .from_action([0.5, 0.5, 1.5, 0.5])
            .unwrap_err();
        assert_eq!(err.field_errors()[0].field, "action.replicas");
    }

    #[test]
    fn check_names_every_knob_out_of_bounds() {
        let c = FunctionConfig {
            cpu_millis: 100,
            memory_mib: 512,
            replicas: 9,
            concurrency: 0,
        };
        let fields: Vec<_> = FunctionBounds::ML
            .check(&c, "config.starter")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "config.starter.cpu_millis",
                "config.starter.replicas",
                "config.starter.concurrency"
            ]
        );
    }

    #[test]
    fn inverted_bounds_are_reported() {
        let mut b = FunctionBounds::ML;
        b.replicas = Range::new(5, 2);
        assert_eq!(
            b.validate("functions[0].bounds")[0].field,
            "functions[0].bounds.replicas"
        );
    }

    fn any_config() -> impl Strategy<Value = FunctionConfig> {
        (250u32..=2000, 256u32..=2048, 1u32..=8, 1u32..=10).prop_map(
            |(cpu_millis, memory_mib, replicas, concurrency)| FunctionConfig {
                cpu_millis,
                memory_mib,
                replicas,
                concurrency,
            },
        )
    }

    proptest! {
        #[test]
        fn config_to_action_round_trips(c in any_config()) {
            let back = FunctionBounds::ML.from_action(FunctionBounds::ML.to_action(&c)).unwrap();
            prop_assert_eq!(back, c);
        }

        #[test]
        fn every_action_maps_inside_the_bounds(a in proptest::array::uniform4(0.0f64..=1.0)) {
            let c = FunctionBounds::TCKTAPP.from_action(a).unwrap();
            prop_assert!(FunctionBounds::TCKTAPP.check(&c, "c").is_empty());
        }

        #[test]
        fn action_mapping_is_monotone(a in 0.0f64..=1.0, b in 0.0f64..=1.0) {
            let (lo, hi) = (a.min(b), a.max(b));
            let cl = FunctionBounds::ML.from_action([lo; 4]).unwrap();
            let ch = FunctionBounds::ML.from_action([hi; 4]).unwrap();
            for knob in Knob::ALL {
                prop_assert!(cl.get(knob) <= ch.get(knob));
            }
        }
    }
}
