//! The methods under comparison, built from the same warm-up: twin samples drawn once per
//! (workflow, seed) at the grid's loads, which every method is given. faasconf trains its
//! agents on them (offline, as `faasconf demo` does) and seeds its safe exploration and replay
//! with them; the baselines use what their papers use of history.
//!
//! faasconf also comes in the variants `rq3` ablates ([`Variant`]): another learning
//! algorithm, without safe exploration, hardware-only (no concurrency knob), and without the
//! twin's screening (the agents and safe exploration alone, as the paper's FaaSConf decides).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use faasconf_agents::Algorithm;
use faasconf_core::optimiser::Optimiser;
use faasconf_core::{Qos, Range, Workflow};
use faasconf_ses::{SafeExplorer, SesConfig};
use faasconf_store::Observation;
use faasconf_training::{Model, SampleOptions, TrainOptions, twin_samples};
use faasconf_tuner::safe_history;
use faasconf_tuner::{Tuner, TunerOptions};

use crate::baselines::{BayesianOptions, BayesianSearch, Firm, FirmOptions, RandomSearch};

/// What a faasconf variant keeps of the whole method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The learning algorithm of the agents.
    pub algorithm: Algorithm,
    /// Safe exploration filters the agents' actions and seeds the search.
    pub ses: bool,
    /// Proposals are screened and refined on the twin.
    pub screen: bool,
    /// All four knobs (off: CPU, memory and replicas only; concurrency stays where it starts).
    pub hybrid: bool,
    /// The screening twin is refitted to the windows observed (only with `screen`).
    pub follow: bool,
    /// Decisions plan for the load forecast ahead, with hysteresis (off: for the load just
    /// measured — `-reactive`).
    pub forecast: bool,
    /// Decisions keep to the twin's work budget ([`faasconf_tuner::PlanOptions::work_budget`];
    /// off: the full search whatever a window costs — `-unbounded`).
    pub bounded: bool,
}

impl Variant {
    /// The whole method.
    pub const FULL: Variant = Variant {
        algorithm: Algorithm::AttMf,
        ses: true,
        screen: true,
        hybrid: true,
        follow: true,
        forecast: true,
        bounded: true,
    };

    /// The variant's name: `faasconf`, then what differs (`-unscreened`, `-norefit`, the
    /// algorithm when not attmf, `-noses`, `-hw`, `-reactive`, `-unbounded`).
    pub fn name(self) -> String {
        let mut name = String::from("faasconf");
        if !self.screen {
            name.push_str("-unscreened");
        } else if !self.follow {
            name.push_str("-norefit");
        }
        if self.algorithm != Algorithm::AttMf {
            name.push('-');
            name.push_str(self.algorithm.name());
        }
        if !self.ses {
            name.push_str("-noses");
        }
        if !self.hybrid {
            name.push_str("-hw");
        }
        if !self.forecast {
            name.push_str("-reactive");
        }
        if !self.bounded {
            name.push_str("-unbounded");
        }
        name
    }

    /// Every variant there is (following the cluster only where the twin screens).
    fn every() -> impl Iterator<Item = Variant> {
        Algorithm::ALL.into_iter().flat_map(|algorithm| {
            [(true, true), (true, false), (false, false)]
                .into_iter()
                .flat_map(move |(screen, follow)| {
                    [true, false].into_iter().flat_map(move |ses| {
                        [true, false].into_iter().flat_map(move |hybrid| {
                            [true, false].into_iter().flat_map(move |forecast| {
                                [true, false].into_iter().map(move |bounded| Variant {
                                    algorithm,
                                    ses,
                                    screen,
                                    hybrid,
                                    follow,
                                    forecast,
                                    bounded,
                                })
                            })
                        })
                    })
                })
        })
    }
}

/// A method by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// faasconf: AttMF policy, safe exploration, twin screening, rollback guard — or one of
    /// its ablations.
    Faasconf(Variant),
    /// Uniform random search.
    Random,
    /// FIRM: critical path, then DDPG per function.
    Firm,
    /// Aquatope: constrained noisy-EI Bayesian optimisation.
    Aquatope,
    /// RAMBO: multi-objective Bayesian optimisation.
    Rambo,
}

impl serde::Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Method::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// faasconf's variants `rq3` compares: with the twin's screening (the whole method, without
/// safe exploration, hardware-only), and without it (the agents and safe exploration alone:
/// attmf, mf, maddpg, ddpg, and attmf without safe exploration and hardware-only).
pub const ABLATIONS: [Variant; 9] = {
    let full = Variant::FULL;
    let agents = Variant {
        screen: false,
        follow: false,
        ..full
    };
    [
        full,
        Variant { ses: false, ..full },
        Variant {
            hybrid: false,
            ..full
        },
        agents,
        Variant {
            algorithm: Algorithm::Mf,
            ..agents
        },
        Variant {
            algorithm: Algorithm::Maddpg,
            ..agents
        },
        Variant {
            algorithm: Algorithm::Ddpg,
            ..agents
        },
        Variant {
            ses: false,
            ..agents
        },
        Variant {
            hybrid: false,
            ..agents
        },
    ]
};

impl Method {
    /// The methods `rq1` compares, in report order.
    pub const ALL: [Method; 5] = [
        Method::Faasconf(Variant::FULL),
        Method::Random,
        Method::Firm,
        Method::Aquatope,
        Method::Rambo,
    ];

    /// The whole faasconf.
    pub const FAASCONF: Method = Method::Faasconf(Variant::FULL);

    /// The method's name.
    pub fn name(self) -> String {
        match self {
            Method::Faasconf(v) => v.name(),
            Method::Random => "random".into(),
            Method::Firm => "firm".into(),
            Method::Aquatope => "aquatope".into(),
            Method::Rambo => "rambo".into(),
        }
    }

    /// The method called `name`.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .chain(Variant::every().map(Method::Faasconf))
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown method {name:?} (known: {}, and faasconf's variants such as {})",
                    Self::ALL.map(Method::name).join(", "),
                    ABLATIONS[1..4]
                        .iter()
                        .map(|v| v.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// The faasconf variant, if it is one.
    pub fn variant(self) -> Option<Variant> {
        match self {
            Method::Faasconf(v) => Some(v),
            _ => None,
        }
    }
}

/// `workflow` with its concurrency knob fixed where every method starts (the middle of each
/// function's range): the configuration space of a hardware-only method.
pub fn hardware_only(workflow: &Workflow) -> Result<Workflow, faasconf_core::Error> {
    let start = workflow.config_from_actions(&vec![[0.5; 4]; workflow.len()])?;
    let mut pinned = workflow.clone();
    for (f, c) in pinned.functions.iter_mut().zip(&start.0) {
        f.bounds.concurrency = Range::new(c.concurrency, c.concurrency);
    }
    Ok(pinned)
}

/// How much warm-up every method gets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WarmUpOptions {
    /// Twin samples (all loads together).
    pub samples: usize,
    /// faasconf's offline gradient updates.
    pub updates: u64,
    /// faasconf's online steps on the twin after them.
    pub online_steps: u64,
}

impl Default for WarmUpOptions {
    /// What `faasconf demo` pre-trains with.
    fn default() -> Self {
        Self {
            samples: 1500,
            updates: 1500,
            online_steps: 2000,
        }
    }
}

/// The warm-up of one (workflow, seed): the samples, and faasconf's models trained on them.
pub struct WarmUp {
    /// The samples every method is given.
    pub samples: Vec<Observation>,
    /// The same number of samples in the hardware-only space, for hardware-only variants
    /// (empty when none is among the methods).
    pub hardware_samples: Vec<Observation>,
    /// Where faasconf's trained models are saved, by (algorithm, hybrid); each cell loads a
    /// private copy. Empty when faasconf is not among the methods.
    pub models: BTreeMap<(&'static str, bool), PathBuf>,
    /// Seconds the sampling and training took.
    pub seconds: f64,
}

/// Why a warm-up failed.
#[derive(Debug, thiserror::Error)]
pub enum WarmUpError {
    /// Sampling or training failed.
    #[error("warm-up of {workflow}: {source}")]
    Training {
        /// The workflow.
        workflow: String,
        /// Why.
        #[source]
        source: faasconf_training::Error,
    },
}

/// Draws the samples at `loads` and trains the agents of every faasconf variant among
/// `methods` on them under `workdir` (one model per algorithm and knob set).
pub fn warm_up(
    workflow: &Workflow,
    loads: &[u32],
    qos: &Qos,
    options: &WarmUpOptions,
    seed: u64,
    workdir: &Path,
    methods: &[Method],
) -> Result<WarmUp, WarmUpError> {
    let started = std::time::Instant::now();
    let failed = |source| WarmUpError::Training {
        workflow: workflow.name.clone(),
        source,
    };
    let draw = |space: &Workflow| {
        twin_samples(
            space,
            &SampleOptions {
                loads: loads.to_vec(),
                samples: options.samples,
                qos: *qos,
                seed,
                ..SampleOptions::default()
            },
            &|_| {},
        )
        .map_err(failed)
    };
    let samples = draw(workflow)?;
    let variants: Vec<Variant> = methods.iter().filter_map(|m| m.variant()).collect();
    let hardware = hardware_only(workflow).map_err(|e| failed(e.into()))?;
    let hardware_samples = if variants.iter().any(|v| !v.hybrid) {
        draw(&hardware)?
    } else {
        Vec::new()
    };
    let mut models = BTreeMap::new();
    for v in variants {
        let key = (v.algorithm.name(), v.hybrid);
        if models.contains_key(&key) {
            continue;
        }
        let (space, samples) = if v.hybrid {
            (workflow, &samples)
        } else {
            (&hardware, &hardware_samples)
        };
        let train = TrainOptions {
            algorithm: v.algorithm,
            updates: options.updates,
            online_steps: options.online_steps,
            evaluate_every: 0,
            evaluate_loads: Vec::new(),
            qos: *qos,
            seed,
            ..TrainOptions::default()
        };
        let stem = format!(
            "{}-seed{seed}-{}{}",
            workflow.name,
            v.algorithm.name(),
            if v.hybrid { "" } else { "-hw" }
        );
        let run_dir = workdir.join(format!("{stem}-run"));
        let (model, _) = faasconf_training::train(
            space,
            samples,
            &train,
            &run_dir,
            faasconf_agents::default_device(),
            &mut |_| {},
        )
        .map_err(failed)?;
        let model_dir = workdir.join(format!("{stem}-model"));
        model.save(&model_dir).map_err(failed)?;
        let _ = std::fs::remove_dir_all(&run_dir);
        models.insert(key, model_dir);
    }
    Ok(WarmUp {
        samples,
        hardware_samples,
        models,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Builds `method` for one cell.
pub fn build(
    method: Method,
    workflow: &Workflow,
    qos: &Qos,
    warm: &WarmUp,
    seed: u64,
) -> Result<Box<dyn Optimiser>, String> {
    Ok(match method {
        Method::Random => Box::new(RandomSearch::new(workflow.clone(), seed)),
        Method::Firm => Box::new(
            Firm::new(
                workflow.clone(),
                *qos,
                &warm.samples,
                FirmOptions::default(),
                seed,
            )
            .map_err(|e| e.to_string())?,
        ),
        Method::Aquatope => Box::new(BayesianSearch::new(
            "aquatope",
            workflow.clone(),
            *qos,
            &warm.samples,
            BayesianOptions::aquatope(),
            seed,
        )),
        Method::Rambo => Box::new(BayesianSearch::new(
            "rambo",
            workflow.clone(),
            *qos,
            &warm.samples,
            BayesianOptions::rambo(),
            seed,
        )),
        Method::Faasconf(v) => {
            let (space, samples) = if v.hybrid {
                (workflow.clone(), &warm.samples)
            } else {
                (
                    hardware_only(workflow).map_err(|e| e.to_string())?,
                    &warm.hardware_samples,
                )
            };
            let dir = warm
                .models
                .get(&(v.algorithm.name(), v.hybrid))
                .ok_or_else(|| format!("{}: the warm-up trained no model for it", v.name()))?;
            let model = Model::load(dir, &space, faasconf_agents::default_device())
                .map_err(|e| format!("{}'s model: {e}", v.name()))?;
            let safe = safe_history(samples);
            let explorer = Arc::new(Mutex::new(SafeExplorer::new(SesConfig::default(), safe, 0)));
            let history: Vec<&Observation> = samples.iter().collect();
            Box::new(
                Tuner::new(
                    space,
                    model,
                    explorer,
                    &history,
                    TunerOptions {
                        qos: *qos,
                        rollback_after: 3,
                        screen: v.screen,
                        follow: v.follow,
                        forecast: v.forecast,
                        safe_exploration: v.ses,
                        // The benchmark's clusters are closed-loop twins that report their users.
                        load_model: faasconf_core::telemetry::LoadModel::Measured,
                        work_budget: v.bounded.then_some(faasconf_tuner::DEFAULT_WORK_BUDGET),
                        seed,
                        cancel: Default::default(),
                    },
                )
                .map_err(|e| format!("{}: {e}", v.name()))?,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog;

    #[test]
    fn hardware_only_keeps_concurrency_where_every_method_starts() {
        let workflow = catalog::builtin("parallel").expect("built in");
        let start = workflow
            .config_from_actions(&vec![[0.5; 4]; workflow.len()])
            .expect("in bounds");
        let pinned = hardware_only(&workflow).expect("pinned");
        for actions in [[0.0; 4], [1.0; 4], [0.3, 0.9, 0.1, 0.7]] {
            let config = pinned
                .config_from_actions(&vec![actions; workflow.len()])
                .expect("in bounds");
            for (c, s) in config.0.iter().zip(&start.0) {
                assert_eq!(c.concurrency, s.concurrency);
            }
            // The other knobs still move, and every configuration is one of the full space.
            assert!(workflow.validate_config(&config).is_ok());
        }
        let low = pinned
            .config_from_actions(&vec![[0.0; 4]; workflow.len()])
            .expect("in bounds");
        assert!(low.0[0].cpu_millis < start.0[0].cpu_millis);
    }

    #[test]
    fn methods_are_named_and_parsed_both_ways() {
        for m in Method::ALL {
            assert_eq!(Method::parse(&m.name()), Ok(m));
        }
        assert_eq!(Method::FAASCONF.name(), "faasconf");
        let ddpg = Method::parse("faasconf-unscreened-ddpg-noses-hw").expect("a variant");
        assert_eq!(
            ddpg.variant(),
            Some(Variant {
                algorithm: Algorithm::Ddpg,
                ses: false,
                screen: false,
                hybrid: false,
                follow: false,
                forecast: true,
                bounded: true,
            })
        );
        let e = Method::parse("faasconf-hw-noses").expect_err("suffixes in order");
        assert!(e.contains("faasconf-noses"), "{e}");
        assert_eq!(
            serde_json::to_value(Method::parse("faasconf-mf").expect("a variant")).expect("json"),
            serde_json::json!("faasconf-mf")
        );
    }
}
