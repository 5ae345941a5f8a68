//! The k-sigma price band of a workload's cheapest QoS-meeting configurations.

use serde::{Deserialize, Serialize};

use crate::{Sample, SesConfig};

/// A price band and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Closed-loop users it was derived for.
    pub users: u32,
    /// Lower price bound.
    pub lower: f64,
    /// Upper price bound.
    pub upper: f64,
    /// Mean price of the safe configurations.
    pub mean: f64,
    /// Their standard deviation.
    pub sd: f64,
    /// How many safe configurations it rests on.
    pub support: usize,
}

impl Band {
    /// Whether `price` lies in the band.
    pub fn contains(&self, price: f64) -> bool {
        price >= self.lower && price <= self.upper
    }
}

/// Why no band could be derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BandError {
    /// No sample met QoS.
    #[error("no sample met QoS")]
    NoQosMeetingSamples,
}

/// Normalised actions of one configuration, per function.
pub type Actions = Vec<[f64; 4]>;

/// The band of `samples` (one workload) and the safe configurations behind it.
pub fn derive_band(
    samples: &[Sample],
    users: u32,
    config: &SesConfig,
) -> Result<(Band, Vec<Actions>), BandError> {
    let mut met: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.qos_met && s.price.is_finite())
        .collect();
    if met.is_empty() {
        return Err(BandError::NoQosMeetingSamples);
    }
    met.sort_by(|a, b| a.price.total_cmp(&b.price));
    let keep = ((met.len() as f64 * config.cheapest_fraction).ceil() as usize).clamp(1, met.len());
    let cheapest = &met[..keep];
    let mean = cheapest.iter().map(|s| s.price).sum::<f64>() / keep as f64;
    let sd = (cheapest
        .iter()
        .map(|s| (s.price - mean).powi(2))
        .sum::<f64>()
        / keep as f64)
        .sqrt();
    let half = (config.k_sigma * sd).max(config.min_half_width_fraction * mean.abs());
    let band = Band {
        users,
        lower: mean - half,
        upper: mean + half,
        mean,
        sd,
        support: keep,
    };
    Ok((band, cheapest.iter().map(|s| s.actions.clone()).collect()))
}
