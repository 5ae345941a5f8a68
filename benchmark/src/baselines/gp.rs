//! Gaussian-process surrogates for the Bayesian-optimisation baselines, on egobox-gp: a
//! constant mean and a squared-exponential kernel, hyper-parameters fitted by maximum
//! likelihood in a KPLS-reduced space (the configuration space has 24-48 dimensions and the
//! baselines see tens of points), a nugget for noisy observations. Joint posterior samples
//! use our seeded generator, so a run is reproducible from its seed.

use egobox_gp::correlation_models::SquaredExponentialCorr;
use egobox_gp::mean_models::ConstantMean;
use egobox_gp::{GaussianProcess, ThetaTuning};
use faasconf_core::rng::Rng;
use linfa::prelude::{Dataset, Fit};
use linfa_linalg::cholesky::Cholesky;
use ndarray::{Array1, Array2, Axis};

/// Components of the KPLS reduction (at most the input dimension).
pub const KPLS_COMPONENTS: usize = 3;

/// Why a surrogate could not be fitted or used.
#[derive(Debug, thiserror::Error)]
pub enum GpError {
    /// The data does not fit (no points, ragged rows, non-finite values).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// What is wrong.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// egobox failed.
    #[error("gaussian process: {0}")]
    Egobox(#[from] egobox_gp::GpError),
}

type Gp = GaussianProcess<f64, ConstantMean, SquaredExponentialCorr>;

/// A fitted surrogate.
pub struct Surrogate {
    gp: Gp,
    nugget: f64,
}

/// Rows of `points` as a matrix.
pub fn matrix(points: &[Vec<f64>]) -> Result<Array2<f64>, GpError> {
    let dim = points.first().map_or(0, Vec::len);
    if points.is_empty() || dim == 0 {
        return Err(GpError::Invalid {
            field: "points",
            message: "no points".into(),
        });
    }
    let mut m = Array2::zeros((points.len(), dim));
    for (i, p) in points.iter().enumerate() {
        if p.len() != dim || p.iter().any(|v| !v.is_finite()) {
            return Err(GpError::Invalid {
                field: "points",
                message: format!("point {i} has {} finite coordinates of {dim}", p.len()),
            });
        }
        m.row_mut(i).assign(&Array1::from_vec(p.clone()));
    }
    Ok(m)
}

impl Surrogate {
    /// Fits `y` at `x`; `theta` fixes the hyper-parameters (refits on fantasies and leave-one-out
    /// checks keep those of the full fit).
    pub fn fit(
        x: &Array2<f64>,
        y: &Array1<f64>,
        nugget: f64,
        theta: Option<&Array1<f64>>,
    ) -> Result<Self, GpError> {
        if x.nrows() != y.len() || y.iter().any(|v| !v.is_finite()) {
            return Err(GpError::Invalid {
                field: "targets",
                message: format!("{} finite targets needed, one per point", x.nrows()),
            });
        }
        let mut params = GaussianProcess::<f64, ConstantMean, SquaredExponentialCorr>::params(
            ConstantMean::default(),
            SquaredExponentialCorr::default(),
        )
        .kpls_dim(Some(KPLS_COMPONENTS.min(x.ncols())))
        .nugget(nugget)
        .n_start(3);
        if let Some(theta) = theta {
            params = params.theta_tuning(ThetaTuning::Fixed(theta.clone()));
        }
        let gp = params.fit(&Dataset::new(x.clone(), y.clone()))?;
        Ok(Self { gp, nugget })
    }

    /// The fitted hyper-parameters.
    pub fn theta(&self) -> Array1<f64> {
        self.gp.theta().clone()
    }

    /// The nugget it was fitted with.
    pub fn nugget(&self) -> f64 {
        self.nugget
    }

    /// Posterior mean and variance at each row of `x`.
    pub fn predict(&self, x: &Array2<f64>) -> Result<(Array1<f64>, Array1<f64>), GpError> {
        let mean = self.gp.predict(x)?;
        let var = self.gp.predict_var(x)?.mapv(|v| v.max(0.0));
        Ok((mean, var))
    }

    /// `count` joint posterior samples at the rows of `x` (each a vector over the rows).
    pub fn joint_samples(
        &self,
        x: &Array2<f64>,
        count: usize,
        rng: &mut Rng,
    ) -> Result<Vec<Array1<f64>>, GpError> {
        let mean = self.gp.predict(x)?;
        let cov = self.gp.predict_covariance(x)?;
        let scale = cov
            .diag()
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()))
            .max(1e-12);
        let mut jitter = 1e-9 * scale;
        let lower = loop {
            let mut c = cov.clone();
            c.diag_mut().mapv_inplace(|v| v + jitter);
            match c.cholesky() {
                Ok(l) => break l,
                Err(_) if jitter < scale => jitter *= 10.0,
                Err(e) => {
                    return Err(GpError::Invalid {
                        field: "covariance",
                        message: format!("not positive definite even with jitter: {e}"),
                    });
                }
            }
        };
        Ok((0..count)
            .map(|_| {
                let z = Array1::from_shape_fn(x.nrows(), |_| rng.normal());
                &mean + &lower.dot(&z)
            })
            .collect())
    }
}

/// Standard normal density.
pub fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function (Abramowitz-Stegun 7.1.26 on erf, error < 1.5e-7).
pub fn cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Expected improvement below `best` of a normal with `mean` and `var` (minimisation).
pub fn expected_improvement(mean: f64, var: f64, best: f64) -> f64 {
    let sd = var.max(0.0).sqrt();
    if sd < 1e-12 {
        return (best - mean).max(0.0);
    }
    let z = (best - mean) / sd;
    (best - mean) * cdf(z) + sd * pdf(z)
}

/// Rows of `x` taken in `rows` order.
pub fn select_rows(x: &Array2<f64>, rows: &[usize]) -> Array2<f64> {
    x.select(Axis(0), rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smooth_function_is_learnt_and_its_samples_spread_with_the_posterior() {
        let points: Vec<Vec<f64>> = (0..12)
            .map(|i| vec![f64::from(i) / 11.0, f64::from((i * 7) % 12) / 11.0])
            .collect();
        let f = |p: &[f64]| (3.0 * p[0]).sin() + p[1] * p[1];
        let x = matrix(&points).expect("matrix");
        let y = Array1::from_iter(points.iter().map(|p| f(p)));
        let gp = Surrogate::fit(&x, &y, 1e-8, None).expect("fits");
        let test = matrix(&[vec![0.5, 0.5], vec![0.2, 0.9]]).expect("matrix");
        let (mean, var) = gp.predict(&test).expect("predicts");
        assert!((mean[0] - f(&[0.5, 0.5])).abs() < 0.1, "{mean}");
        assert!((mean[1] - f(&[0.2, 0.9])).abs() < 0.1, "{mean}");
        let mut rng = Rng::new(1);
        let samples = gp.joint_samples(&test, 400, &mut rng).expect("samples");
        let m0 = samples.iter().map(|s| s[0]).sum::<f64>() / 400.0;
        let v0 = samples.iter().map(|s| (s[0] - m0).powi(2)).sum::<f64>() / 400.0;
        assert!((m0 - mean[0]).abs() < 4.0 * (var[0] / 400.0).sqrt() + 1e-6);
        assert!(
            (v0 - var[0]).abs() < 0.5 * var[0] + 1e-9,
            "{v0} vs {}",
            var[0]
        );
    }

    #[test]
    fn the_normal_functions_and_expected_improvement_are_right() {
        assert!((cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((cdf(-1.0) - 0.158_655).abs() < 1e-5);
        assert!((pdf(0.0) - 0.398_942).abs() < 1e-6);
        // EI of N(0, 1) below 0 is pdf(0).
        assert!((expected_improvement(0.0, 1.0, 0.0) - pdf(0.0)).abs() < 1e-9);
        assert_eq!(expected_improvement(2.0, 0.0, 1.0), 0.0);
        assert_eq!(expected_improvement(0.5, 0.0, 1.0), 0.5);
    }

    #[test]
    fn ragged_or_empty_points_are_refused_by_field() {
        assert!(matrix(&[]).is_err());
        let e = matrix(&[vec![0.0, 1.0], vec![0.0]]).expect_err("ragged");
        assert!(e.to_string().contains("point 1"), "{e}");
    }
}
