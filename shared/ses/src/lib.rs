//! The safe exploration strategy (SES) of FaaSConf.
//!
//! From history, the configurations that met QoS and are among the cheapest 20% by price give a
//! band `[P - N sd, P + N sd]` (mean price P, standard deviation sd, N = 2). An action whose
//! configuration prices inside the band is used as is; any other is replaced by a random safe
//! configuration from that history plus Gaussian noise (sd 0.05 in the normalised space,
//! clipped). Bands are kept per workload (closed-loop users); an unseen workload uses the band
//! of the most similar one. After `rederive_after` QoS violations under a band, it is derived
//! again from that workload's most recent samples.
//!
//! The reference prototype hard-coded its band; here it is derived, recorded and reported with
//! every decision.

mod band;

pub use band::{Actions, Band, BandError, derive_band};

use std::collections::BTreeMap;
use std::sync::Arc;

use faasconf_core::Workflow;
use faasconf_core::rng::Rng;
use serde::{Deserialize, Serialize};

/// Settings of the strategy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SesConfig {
    /// Fraction of the QoS-meeting history, cheapest first, the band is computed from.
    pub cheapest_fraction: f64,
    /// Half-width of the band in standard deviations (N).
    pub k_sigma: f64,
    /// The band's half-width is at least this fraction of its centre (ours: a band from one or
    /// identical samples would otherwise be a single price that nothing new can meet).
    pub min_half_width_fraction: f64,
    /// Noise added to a replacement, standard deviation in the normalised action space.
    pub noise_sd: f64,
    /// QoS violations under one band before it is derived again.
    pub rederive_after: u32,
    /// How many of a workload's most recent samples a re-derivation uses.
    pub recent: usize,
}

impl Default for SesConfig {
    fn default() -> Self {
        Self {
            cheapest_fraction: 0.2,
            k_sigma: 2.0,
            min_half_width_fraction: 0.05,
            noise_sd: 0.05,
            rederive_after: 3,
            recent: 200,
        }
    }
}

/// One observed configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Closed-loop users it ran under.
    pub users: u32,
    /// Normalised action per function (CPU, memory, replicas, concurrency).
    pub actions: Vec<[f64; 4]>,
    /// Its price (the cost model).
    pub price: f64,
    /// Whether it met the QoS target.
    pub qos_met: bool,
}

/// What the filter decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Filtered {
    /// The actions to apply.
    pub actions: Vec<[f64; 4]>,
    /// Whether SES replaced the proposal.
    pub replaced: bool,
    /// The band applied.
    pub band: Band,
    /// The price of the proposal.
    pub proposed_price: f64,
}

/// Why the filter could not decide.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SesError {
    /// No workload has QoS-meeting history yet.
    #[error("no QoS-meeting history for any workload: import history or run the twin first")]
    NoSafeHistory,
    /// The proposal does not fit the workflow.
    #[error("actions: {0}")]
    Actions(String),
}

/// One workload's band and the safe configurations it was derived from.
#[derive(Debug, Clone)]
struct Record {
    band: Band,
    safe: Vec<Actions>,
    violations: u32,
}

/// The strategy's state: history, bands per workload.
#[derive(Debug, Clone)]
pub struct SafeExplorer {
    config: SesConfig,
    history: BTreeMap<u32, Vec<Sample>>,
    /// Shared with the copies answers use ([`Self::for_answer`]): a record's safe
    /// configurations are copied only when one of them changes it.
    records: BTreeMap<u32, Arc<Record>>,
    rng: Rng,
}

impl SafeExplorer {
    /// A copy for one stateless answer (a recommendation): the bands and safe configurations
    /// as they stand, without the history (only [`Self::observe`] needs it: do not observe on
    /// the copy), drawing from a stream seeded with `seed`. Identical requests then get
    /// identical answers, and the shared strategy's stream — a tuning session's — is not moved.
    pub fn for_answer(&self, seed: u64) -> Self {
        Self {
            config: self.config,
            history: BTreeMap::new(),
            records: self.records.clone(),
            rng: Rng::new(seed),
        }
    }

    /// A strategy over `history`, with bands for every workload that has QoS-meeting samples.
    pub fn new(config: SesConfig, history: Vec<Sample>, seed: u64) -> Self {
        let mut by_users: BTreeMap<u32, Vec<Sample>> = BTreeMap::new();
        for s in history {
            by_users.entry(s.users).or_default().push(s);
        }
        let mut explorer = Self {
            config,
            history: by_users,
            records: BTreeMap::new(),
            rng: Rng::new(seed),
        };
        let workloads: Vec<u32> = explorer.history.keys().copied().collect();
        for users in workloads {
            explorer.derive(users, usize::MAX);
        }
        explorer
    }

    /// (Re)derives the band of `users` from its last `recent` samples; false when none met QoS.
    fn derive(&mut self, users: u32, recent: usize) -> bool {
        let Some(samples) = self.history.get(&users) else {
            return false;
        };
        let start = samples.len().saturating_sub(recent);
        let window = &samples[start..];
        match derive_band(window, users, &self.config) {
            Ok((band, safe)) => {
                self.records.insert(
                    users,
                    Arc::new(Record {
                        band,
                        safe,
                        violations: 0,
                    }),
                );
                true
            }
            Err(_) => false,
        }
    }

    /// The band that applies to `users`: its own, or the most similar workload's.
    pub fn band_for(&self, users: u32) -> Option<&Band> {
        self.nearest(users).map(|r| &r.band)
    }

    /// The safe configurations behind the band that applies to `users` (cheapest QoS-meeting
    /// history of that workload or the most similar one).
    pub fn safe_for(&self, users: u32) -> &[Actions] {
        self.nearest(users).map_or(&[], |r| r.safe.as_slice())
    }

    fn nearest(&self, users: u32) -> Option<&Arc<Record>> {
        self.records
            .iter()
            .min_by_key(|(u, _)| (u.abs_diff(users), **u))
            .map(|(_, r)| r)
    }

    /// Keeps `proposed` when its price is in the band for `users`, else replaces it by a safe
    /// configuration plus noise.
    pub fn filter(
        &mut self,
        workflow: &Workflow,
        users: u32,
        proposed: Vec<[f64; 4]>,
    ) -> Result<Filtered, SesError> {
        let proposed_price = price(workflow, &proposed)?;
        let record = Arc::clone(self.nearest(users).ok_or(SesError::NoSafeHistory)?);
        if record.band.contains(proposed_price) {
            return Ok(Filtered {
                actions: proposed,
                replaced: false,
                band: record.band,
                proposed_price,
            });
        }
        let base = &record.safe[self.rng.below(record.safe.len())];
        let sd = self.config.noise_sd;
        let actions = base
            .iter()
            .map(|a| a.map(|x| (x + sd * self.rng.normal()).clamp(0.0, 1.0)))
            .collect();
        Ok(Filtered {
            actions,
            replaced: true,
            band: record.band,
            proposed_price,
        })
    }

    /// Records what an applied configuration did; re-derives the band of its workload after
    /// `rederive_after` violations. Returns whether the band changed.
    pub fn observe(&mut self, sample: Sample) -> bool {
        let users = sample.users;
        let violated = !sample.qos_met;
        self.history.entry(users).or_default().push(sample);
        if !self.records.contains_key(&users) {
            return self.derive(users, self.config.recent);
        }
        let Some(record) = self.records.get_mut(&users).map(Arc::make_mut) else {
            return false;
        };
        if violated {
            record.violations += 1;
        }
        if record.violations >= self.config.rederive_after {
            let recent = self.config.recent;
            if !self.derive(users, recent) {
                // Nothing recent met QoS: keep the band, start counting again.
                if let Some(r) = self.records.get_mut(&users).map(Arc::make_mut) {
                    r.violations = 0;
                }
                return false;
            }
            return true;
        }
        false
    }
}

/// The price of normalised `actions` on `workflow` (the cost model).
pub fn price(workflow: &Workflow, actions: &[[f64; 4]]) -> Result<f64, SesError> {
    let config = workflow
        .config_from_actions(actions)
        .map_err(|e| SesError::Actions(e.to_string()))?;
    Ok(config.cost())
}

#[cfg(test)]
mod tests;
