//! Topology-masked attention: which neighbours drive an agent's decision.
//!
//! `score_jk = f(q_j . k_k) * A_jk` with learnable query and key projections of the states and
//! the workflow's adjacency `A` (self-loops only for functions without neighbours). Weights are
//! a proper distribution over the neighbours of each row: they sum to one (the reference's
//! `+0.001` in the denominator broke that) and are zero outside the neighbourhood.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::config::Scoring;

/// Keeps a squared-score row from being all zeros (then it is uniform over the neighbours).
const FLOOR: f32 = 1e-6;

/// Query and key projections.
#[derive(Module, Debug)]
pub struct Attention {
    query: Linear,
    key: Linear,
}

impl Attention {
    /// Projections from `state_dim` features to `width`.
    pub fn new(state_dim: usize, width: usize, device: &Device) -> Self {
        Self {
            query: LinearConfig::new(state_dim, width)
                .with_bias(false)
                .init(device),
            key: LinearConfig::new(state_dim, width)
                .with_bias(false)
                .init(device),
        }
    }

    /// Weights `[batch, n, n]` of `states` `[batch, n, state_dim]` under `mask` `[1, n, n]`
    /// (1 = neighbour).
    pub fn weights(&self, states: Tensor<3>, mask: Tensor<3>, scoring: Scoring) -> Tensor<3> {
        let q = self.query.forward(states.clone());
        let k = self.key.forward(states);
        let width = q.dims()[2] as f64;
        let scores = q.matmul(k.swap_dims(1, 2));
        match scoring {
            Scoring::SquaredMasked => {
                let s = (scores.powf_scalar(2.0) + FLOOR) * mask;
                let total = s.clone().sum_dim(2);
                s / total
            }
            Scoring::MaskedSoftmax => {
                let [batch, n, _] = scores.dims();
                let outside = mask.expand([batch, n, n]).equal_elem(0.0);
                softmax((scores / width.sqrt()).mask_fill(outside, f32::NEG_INFINITY))
            }
        }
    }
}

/// Softmax over the last dimension, written out in the primitive operations burn's autodiff
/// backend runs it as (the inference backend's fused kernel rounds differently; see
/// `networks::layer_norm`).
fn softmax(x: Tensor<3>) -> Tensor<3> {
    let max = x.clone().detach().max_dim(2);
    let exp = (x - max).exp();
    let total = exp.clone().sum_dim(2);
    exp / total
}

/// Uniform weights over each row's neighbours `[1, n, n]` (the `mf` ablation).
pub fn uniform_weights(mask: Tensor<3>) -> Tensor<3> {
    let total = mask.clone().sum_dim(2);
    mask / total
}

/// The attention mask of an adjacency matrix: neighbours, plus a self-loop for a function that
/// has none (so every row has somewhere to look).
pub fn neighbourhood(adjacency: &[Vec<u8>]) -> Vec<Vec<f32>> {
    adjacency
        .iter()
        .enumerate()
        .map(|(j, row)| {
            let lonely = row.iter().enumerate().all(|(k, &a)| a == 0 || k == j);
            row.iter()
                .enumerate()
                .map(|(k, &a)| {
                    if (a != 0 && k != j) || (lonely && k == j) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(device: &Device) -> Tensor<3> {
        // 0 - 1 - 2, and 3 alone.
        let a = neighbourhood(&[
            vec![0, 1, 0, 0],
            vec![1, 0, 1, 0],
            vec![0, 1, 0, 0],
            vec![0, 0, 0, 0],
        ]);
        let flat: Vec<f32> = a.into_iter().flatten().collect();
        Tensor::<1>::from_floats(flat.as_slice(), device).reshape([1, 4, 4])
    }

    #[test]
    fn weights_are_distributions_over_the_neighbours() {
        let device = Device::flex();
        let attention = Attention::new(3, 8, &device);
        let states = Tensor::<3>::random(
            [5, 4, 3],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        for scoring in [Scoring::SquaredMasked, Scoring::MaskedSoftmax] {
            let w = attention.weights(states.clone(), mask(&device), scoring);
            let values: Vec<f32> = w.clone().into_data().try_to_vec::<f32>().unwrap();
            let sums: Vec<f32> = w.sum_dim(2).into_data().try_to_vec::<f32>().unwrap();
            assert!(
                sums.iter().all(|s| (s - 1.0).abs() < 1e-5),
                "{scoring:?}: rows sum to {sums:?}"
            );
            for b in 0..5 {
                let at = |j: usize, k: usize| values[b * 16 + j * 4 + k];
                assert_eq!(at(0, 2), 0.0, "not a neighbour");
                assert_eq!(at(0, 0), 0.0, "no self-attention where neighbours exist");
                assert_eq!(at(0, 1), 1.0, "the only neighbour takes everything");
                assert_eq!(at(3, 3), 1.0, "a lonely function looks at itself");
            }
        }
    }

    #[test]
    fn uniform_weights_split_evenly() {
        let device = Device::flex();
        let w: Vec<f32> = uniform_weights(mask(&device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(&w[4..8], &[0.5, 0.0, 0.5, 0.0]);
    }
}
