//! A small deterministic random number generator (xoshiro256++ seeded by SplitMix64) and the
//! samplers the twin, the agents and safe exploration need. Owning it keeps a seed's results
//! identical across dependency upgrades, which a calibrated simulator's users rely on.

/// xoshiro256++ (Blackman and Vigna), public domain reference algorithm.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from one 64-bit seed.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// Stream `stream` of `seed`: independent generators for independent sources of
    /// randomness, so that changing one knob does not reshuffle every other draw.
    pub fn stream(seed: u64, stream: u64) -> Self {
        Self::new(seed ^ stream.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[0]
            .wrapping_add(self.s[3])
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform on `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on `(0, 1]` (safe for logarithms).
    fn open_uniform(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.open_uniform().ln()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.open_uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Log-normal with the given mean and coefficient of variation (`cv = 0`: the mean itself).
    pub fn lognormal_mean_cv(&mut self, mean: f64, cv: f64) -> f64 {
        if cv <= 0.0 || mean <= 0.0 {
            return mean.max(0.0);
        }
        let sigma2 = (1.0 + cv * cv).ln();
        mean * (self.normal() * sigma2.sqrt() - sigma2 / 2.0).exp()
    }

    /// A log-normal factor with median 1 and log standard deviation `sigma`.
    pub fn lognormal_factor(&mut self, sigma: f64) -> f64 {
        if sigma <= 0.0 {
            1.0
        } else {
            (self.normal() * sigma).exp()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_sane_moments() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        let mut r = Rng::new(1);
        let n = 200_000;
        let mean_exp = (0..n).map(|_| r.exponential(2.0)).sum::<f64>() / n as f64;
        assert!((mean_exp - 2.0).abs() < 0.03, "{mean_exp}");
        let xs: Vec<f64> = (0..n).map(|_| r.lognormal_mean_cv(3.0, 0.5)).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!(
            (m - 3.0).abs() < 0.03 && (sd / m - 0.5).abs() < 0.02,
            "{m} {sd}"
        );
        assert!((0..n).all(|_| r.below(3) < 3));
    }
}
