//! The cores on a constrained quadratic with a known optimum: minimise
//! `(x0 - 0.2)^2 + (x1 - 0.8)^2` subject to `x0 >= 0.5` (as `c = 1.5 - x0 <= 1`); the optimum
//! is (0.5, 0.8) with cost 0.09.

use super::*;

fn observe(x: Vec<f64>) -> Point {
    let f = (x[0] - 0.2).powi(2) + (x[1] - 0.8).powi(2);
    let c = 1.5 - x[0];
    Point { x, f, c }
}

fn initial(rng: &mut Rng, n: usize) -> Vec<Point> {
    (0..n)
        .map(|_| observe(vec![rng.uniform(), rng.uniform()]))
        .collect()
}

fn best_feasible(points: &[Point]) -> &Point {
    points
        .iter()
        .filter(|p| p.feasible())
        .min_by(|a, b| a.f.total_cmp(&b.f))
        .expect("something feasible")
}

const SETTINGS: BoSettings = BoSettings {
    candidates: 600,
    local_sd: 0.05,
    mc_samples: 32,
    cost_nugget: 1e-6,
    constraint_nugget: 1e-6,
    outlier_sigmas: 3.0,
};

#[test]
fn aquatope_converges_to_the_constrained_optimum() {
    let mut rng = Rng::new(11);
    let mut points = initial(&mut rng, 8);
    for _ in 0..8 {
        for x in constrained_nei_batch(&points, 3, &SETTINGS, &mut rng).expect("chooses") {
            points.push(observe(x));
        }
    }
    let best = best_feasible(&points);
    assert!(
        best.f < 0.095,
        "best feasible cost {} at {:?}",
        best.f,
        best.x
    );
    assert!(
        (best.x[0] - 0.5).abs() < 0.05 && (best.x[1] - 0.8).abs() < 0.06,
        "{:?}",
        best.x
    );
}

#[test]
fn rambo_finds_the_front_and_its_cheapest_feasible_point_is_the_optimum() {
    let mut rng = Rng::new(5);
    let mut points = initial(&mut rng, 8);
    for _ in 0..40 {
        let x = ehvi_next(&points, &SETTINGS, &mut rng).expect("chooses");
        points.push(observe(x));
    }
    let best = best_feasible(&points);
    assert!(
        best.f < 0.11,
        "best feasible cost {} at {:?}",
        best.f,
        best.x
    );
    let front = pareto_front(&points);
    assert!(front.len() >= 4, "a front, not a point: {front:?}");
    for w in front.windows(2) {
        let (a, b) = (&points[w[0]], &points[w[1]]);
        assert!(
            a.f <= b.f && a.c >= b.c,
            "sorted by cost, trading constraint for it"
        );
    }
}

#[test]
fn a_point_the_others_do_not_explain_is_filtered_as_an_outlier() {
    let mut rng = Rng::new(3);
    let mut points: Vec<Point> = initial(&mut rng, 20);
    points.push(Point {
        c: 9.0,
        ..observe(vec![0.6, 0.6])
    });
    let kept = without_outliers(&points, &SETTINGS).expect("filters");
    assert!(!kept.iter().any(|p| p.c == 9.0), "the outlier is dropped");
    assert!(kept.len() >= 18, "the smooth points stay: {}", kept.len());
}

#[test]
fn the_front_and_its_hypervolume_are_right_on_a_small_case() {
    let p = |f, c| Point { x: vec![0.0], f, c };
    let points = vec![
        p(1.0, 3.0),
        p(2.0, 2.0),
        p(3.0, 1.0),
        p(2.5, 2.5),
        p(1.0, 3.0),
    ];
    assert_eq!(pareto_front(&points), vec![0, 1, 2]);
    let front = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)];
    // Staircase up to (4, 4): 3x1 + 2x1 + 1x1.
    assert!((hypervolume(&front, (4.0, 4.0)) - 6.0).abs() < 1e-12);
}
