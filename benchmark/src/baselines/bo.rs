//! The Bayesian-optimisation cores of the GP baselines, on points of the unit cube: minimise a
//! cost `f` subject to a constraint `c <= 1`, both observed with noise.
//!
//! - Aquatope's: one GP for the cost and one for the constraint; noisy expected improvement
//!   under the constraint, integrated over Monte-Carlo samples of the incumbent (the best
//!   feasible value among the noisy observations, drawn jointly from both posteriors), times the
//!   probability of feasibility; batches of `q` points chosen greedily with kriging-believer
//!   fantasies; observations whose constraint value a leave-one-out fit does not explain
//!   within a few deviations are filtered out as outliers first.
//! - RAMBO's: cost and constraint as two objectives; the candidate with the highest expected
//!   hypervolume improvement (Monte Carlo) over the observed Pareto front is observed next.

use faasconf_core::rng::Rng;
use ndarray::{Array1, Array2};

use super::gp::{GpError, Surrogate, cdf, expected_improvement, matrix};

/// One observation: where, the cost, the constraint value (feasible at most 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Coordinates in the unit cube.
    pub x: Vec<f64>,
    /// The cost (minimised).
    pub f: f64,
    /// The constraint value (feasible when at most 1).
    pub c: f64,
}

impl Point {
    /// Whether the constraint held.
    pub fn feasible(&self) -> bool {
        self.c <= 1.0
    }
}

/// Settings shared by the cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoSettings {
    /// Random candidates scored per choice (half uniform, half around the best points).
    pub candidates: usize,
    /// Standard deviation of the local candidates around the best points.
    pub local_sd: f64,
    /// Monte-Carlo samples (incumbents, or objective pairs for EHVI).
    pub mc_samples: usize,
    /// Nugget of the cost GP.
    pub cost_nugget: f64,
    /// Nugget of the constraint GP (it is observed with noise).
    pub constraint_nugget: f64,
    /// Deviations beyond which a leave-one-out residual marks an outlier (0: no filter).
    pub outlier_sigmas: f64,
}

impl Default for BoSettings {
    fn default() -> Self {
        Self {
            candidates: 1500,
            local_sd: 0.08,
            mc_samples: 64,
            cost_nugget: 1e-6,
            constraint_nugget: 1e-2,
            outlier_sigmas: 3.0,
        }
    }
}

fn column(points: &[&Point], of: impl Fn(&Point) -> f64) -> Array1<f64> {
    points.iter().map(|p| of(p)).collect()
}

/// The constraint as the surrogate sees it: `ln c` (feasible at most 0). Latency ratios and
/// failure ratios are multiplicative, and the log keeps a few very bad windows from flattening
/// the model around the boundary that matters.
fn log_constraint(p: &Point) -> f64 {
    p.c.max(1e-6).ln()
}

fn fit_pair(
    points: &[&Point],
    settings: &BoSettings,
) -> Result<(Array2<f64>, Surrogate, Surrogate), GpError> {
    let xs: Vec<Vec<f64>> = points.iter().map(|p| p.x.clone()).collect();
    let x = matrix(&xs)?;
    let cost = Surrogate::fit(&x, &column(points, |p| p.f), settings.cost_nugget, None)?;
    let constraint = Surrogate::fit(
        &x,
        &column(points, log_constraint),
        settings.constraint_nugget,
        None,
    )?;
    Ok((x, cost, constraint))
}

/// The points a leave-one-out check keeps: each point's (log) constraint value is predicted from the
/// others (hyper-parameters of the full fit) and dropped when it lies more than
/// `outlier_sigmas` predictive deviations away. Fewer than 5 points: all kept.
pub fn without_outliers<'a>(
    points: &'a [Point],
    settings: &BoSettings,
) -> Result<Vec<&'a Point>, GpError> {
    let all: Vec<&Point> = points.iter().collect();
    if settings.outlier_sigmas <= 0.0 || points.len() < 5 {
        return Ok(all);
    }
    let xs: Vec<Vec<f64>> = points.iter().map(|p| p.x.clone()).collect();
    let x = matrix(&xs)?;
    let c = column(&all, log_constraint);
    let full = Surrogate::fit(&x, &c, settings.constraint_nugget, None)?;
    let theta = full.theta();
    let mut kept = Vec::with_capacity(points.len());
    for i in 0..points.len() {
        let others: Vec<usize> = (0..points.len()).filter(|&j| j != i).collect();
        let gp = Surrogate::fit(
            &super::gp::select_rows(&x, &others),
            &others.iter().map(|&j| c[j]).collect(),
            settings.constraint_nugget,
            Some(&theta),
        )?;
        let (mean, var) = gp.predict(&super::gp::select_rows(&x, &[i]))?;
        let sd = var[0].sqrt().max(1e-9);
        if (c[i] - mean[0]).abs() <= settings.outlier_sigmas * sd {
            kept.push(&points[i]);
        }
    }
    Ok(kept)
}

/// Candidates: uniform ones, and Gaussian steps around the cheapest feasible points (or the
/// lowest-constraint ones while none is feasible).
fn candidates(points: &[&Point], dim: usize, settings: &BoSettings, rng: &mut Rng) -> Array2<f64> {
    let mut best: Vec<&&Point> = points.iter().collect();
    let any_feasible = points.iter().any(|p| p.feasible());
    best.sort_by(|a, b| {
        if any_feasible {
            (!a.feasible(), a.f).partial_cmp(&(!b.feasible(), b.f))
        } else {
            a.c.partial_cmp(&b.c)
        }
        .unwrap_or(std::cmp::Ordering::Equal)
    });
    best.truncate(5);
    let n = settings.candidates.max(2);
    let mut out = Array2::zeros((n, dim));
    for i in 0..n {
        let centre = (i % 2 == 1 && !best.is_empty()).then(|| &best[(i / 2) % best.len()].x);
        for k in 0..dim {
            out[[i, k]] = match centre {
                Some(c) => (c[k] + settings.local_sd * rng.normal()).clamp(0.0, 1.0),
                None => rng.uniform(),
            };
        }
    }
    out
}

/// Aquatope's choice of the next `q` points (see the module doc).
pub fn constrained_nei_batch(
    points: &[Point],
    q: usize,
    settings: &BoSettings,
    rng: &mut Rng,
) -> Result<Vec<Vec<f64>>, GpError> {
    let kept = without_outliers(points, settings)?;
    let dim = kept.first().map_or(0, |p| p.x.len());
    let (x, cost, constraint) = fit_pair(&kept, settings)?;
    // Incumbent samples: the best feasible cost among the observed points, per joint draw.
    let fs = cost.joint_samples(&x, settings.mc_samples, rng)?;
    let cs = constraint.joint_samples(&x, settings.mc_samples, rng)?;
    let mut incumbents: Vec<Option<f64>> = fs
        .iter()
        .zip(&cs)
        .map(|(f, c)| {
            f.iter()
                .zip(c.iter())
                .filter(|(_, c)| **c <= 0.0)
                .map(|(f, _)| *f)
                .min_by(f64::total_cmp)
        })
        .collect();
    let pool = candidates(&kept, dim, settings, rng);
    let (mut mf, mut vf) = cost.predict(&pool)?;
    let (mut mc, mut vc) = constraint.predict(&pool)?;
    let mut chosen: Vec<usize> = Vec::with_capacity(q);
    let mut fantasy: Vec<Point> = Vec::new();
    for _ in 0..q.max(1) {
        let score = |i: usize| -> f64 {
            let feasible = cdf(-mc[i] / vc[i].sqrt().max(1e-9));
            let with: Vec<f64> = incumbents.iter().flatten().copied().collect();
            if with.is_empty() {
                return feasible; // nothing feasible yet: find feasibility first
            }
            let ei = with
                .iter()
                .map(|&b| expected_improvement(mf[i], vf[i], b))
                .sum::<f64>()
                / incumbents.len() as f64;
            ei * feasible
        };
        let Some(best) = (0..pool.nrows())
            .filter(|i| !chosen.contains(i))
            .max_by(|&a, &b| score(a).total_cmp(&score(b)))
        else {
            break;
        };
        chosen.push(best);
        // Kriging believer: the chosen point joins the data at its predicted values.
        fantasy.push(Point {
            x: pool.row(best).to_vec(),
            f: mf[best],
            c: mc[best].exp(),
        });
        if mc[best] <= 0.0 {
            for b in &mut incumbents {
                *b = Some(b.map_or(mf[best], |v| v.min(mf[best])));
            }
        }
        if chosen.len() < q {
            let all: Vec<&Point> = kept.iter().copied().chain(fantasy.iter()).collect();
            let xs: Vec<Vec<f64>> = all.iter().map(|p| p.x.clone()).collect();
            let xa = matrix(&xs)?;
            let f2 = Surrogate::fit(
                &xa,
                &column(&all, |p| p.f),
                settings.cost_nugget,
                Some(&cost.theta()),
            )?;
            let c2 = Surrogate::fit(
                &xa,
                &column(&all, log_constraint),
                settings.constraint_nugget,
                Some(&constraint.theta()),
            )?;
            (mf, vf) = f2.predict(&pool)?;
            (mc, vc) = c2.predict(&pool)?;
        }
    }
    Ok(chosen.into_iter().map(|i| pool.row(i).to_vec()).collect())
}

/// Indices of the Pareto-optimal points (minimising cost and constraint value), by cost.
pub fn pareto_front(points: &[Point]) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            !points.iter().any(|q| {
                (q.f <= points[i].f && q.c <= points[i].c)
                    && (q.f < points[i].f || q.c < points[i].c)
            })
        })
        .collect();
    front.sort_by(|&a, &b| points[a].f.total_cmp(&points[b].f));
    front.dedup_by(|a, b| points[*a].f == points[*b].f && points[*a].c == points[*b].c);
    front
}

/// Hypervolume (minimisation, 2 objectives) dominated by `front` (sorted by `f`) up to `reference`.
fn hypervolume(front: &[(f64, f64)], reference: (f64, f64)) -> f64 {
    let mut volume = 0.0;
    let mut ceiling = reference.1;
    for &(f, c) in front {
        if f < reference.0 && c < ceiling {
            volume += (reference.0 - f) * (ceiling - c);
            ceiling = c;
        }
    }
    volume
}

/// RAMBO's choice of the next point: the candidate with the highest expected hypervolume
/// improvement over the observed front of cost and log constraint (the same front as cost and
/// constraint), reference point 10% of each range beyond the worst observed values.
pub fn ehvi_next(
    points: &[Point],
    settings: &BoSettings,
    rng: &mut Rng,
) -> Result<Vec<f64>, GpError> {
    let all: Vec<&Point> = points.iter().collect();
    let dim = points.first().map_or(0, |p| p.x.len());
    let (_, cost, constraint) = fit_pair(&all, settings)?;
    let beyond = |of: fn(&Point) -> f64| {
        let (lo, hi) = points
            .iter()
            .map(of)
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        hi + 0.1 * (hi - lo) + 1e-9
    };
    let reference = (beyond(|p| p.f), beyond(log_constraint));
    let front: Vec<(f64, f64)> = pareto_front(points)
        .into_iter()
        .map(|i| (points[i].f, log_constraint(&points[i])))
        .collect();
    let base = hypervolume(&front, reference);
    let pool = candidates(&all, dim, settings, rng);
    let (mf, vf) = cost.predict(&pool)?;
    let (mc, vc) = constraint.predict(&pool)?;
    let draws: Vec<(f64, f64)> = (0..settings.mc_samples)
        .map(|_| (rng.normal(), rng.normal()))
        .collect();
    let mut best = (f64::MIN, 0);
    for i in 0..pool.nrows() {
        let gain = draws
            .iter()
            .map(|&(zf, zc)| {
                let p = (mf[i] + vf[i].sqrt() * zf, mc[i] + vc[i].sqrt() * zc);
                let mut with = front.clone();
                with.push(p);
                with.sort_by(|a, b| a.0.total_cmp(&b.0));
                hypervolume(&with, reference) - base
            })
            .sum::<f64>()
            / draws.len().max(1) as f64;
        if gain > best.0 {
            best = (gain, i);
        }
    }
    Ok(pool.row(best.1).to_vec())
}

#[cfg(test)]
mod tests;
