//! Synthetic workflows of any size, for the scale experiment (`faasconf bench scale`) and for
//! trying faasconf on shapes the catalog does not have (`faasconf workflows generate`): chains,
//! fan-out/fan-in, nested calls, and a mix of the three. Profiles are microservice-like (a few
//! to tens of milliseconds of CPU work and of I/O per call, seeded log-uniform), bounds are
//! TcktApp's, so a workflow of any size runs at 10-1000 requests per second on the twin.

use serde::{Deserialize, Serialize};

use crate::config::FunctionBounds;
use crate::error::Result;
use crate::profile::{FunctionProfile, PlatformProfile};
use crate::rng::Rng;
use crate::topology::{FunctionSpec, Stage, Workflow};

/// Functions a synthetic workflow may have.
pub const MAX_FUNCTIONS: usize = 200;

/// The shape of a synthetic workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// One function after another.
    Chain,
    /// An entry function, parallel branches (short chains), a join function.
    FanOut,
    /// A tree of synchronous nested calls, three children per caller.
    Nested,
    /// A sequence of stages, each a call, a fan-out of 2-4 calls or a nested call of a short
    /// chain, chosen by the seed.
    Mixed,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 4] = [Shape::Chain, Shape::FanOut, Shape::Nested, Shape::Mixed];

    /// The shape's name (as `--shape` takes it).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Chain => "chain",
            Shape::FanOut => "fan-out",
            Shape::Nested => "nested",
            Shape::Mixed => "mixed",
        }
    }

    /// The shape named `name`.
    pub fn parse(name: &str) -> std::result::Result<Shape, String> {
        Shape::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| format!("{name:?} is not a shape (chain, fan-out, nested, mixed)"))
    }
}

/// A synthetic workflow of `functions` functions (2..=[`MAX_FUNCTIONS`]) in `shape`, its
/// profiles drawn from `seed`.
pub fn generate(shape: Shape, functions: usize, seed: u64) -> Result<Workflow> {
    if !(2..=MAX_FUNCTIONS).contains(&functions) {
        return Err(crate::Error::field(
            "functions",
            format!("{functions} is not in 2..={MAX_FUNCTIONS}"),
        ));
    }
    let mut rng = Rng::stream(seed, 0x5e7);
    let names: Vec<String> = (0..functions).map(|i| format!("f{i:03}")).collect();
    let specs = names
        .iter()
        .map(|name| FunctionSpec {
            name: name.clone(),
            bounds: FunctionBounds::TCKTAPP,
            profile: profile(&mut rng),
        })
        .collect();
    let plan = match shape {
        Shape::Chain => Stage::Sequence(names.iter().map(|n| Stage::call(n)).collect()),
        Shape::FanOut => fan_out(&names),
        Shape::Nested => nested(&names),
        Shape::Mixed => mixed(&names, &mut rng),
    };
    let platform = PlatformProfile {
        user_think_seconds: 1.0,
        ..PlatformProfile::default()
    };
    Workflow::new(
        format!("synth-{}-{functions}-s{seed}", shape.name()),
        specs,
        plan,
        None,
        platform,
    )
}

/// A microservice's profile: 2-40 ms of CPU work and 2-40 ms of I/O per call.
fn profile(rng: &mut Rng) -> FunctionProfile {
    let mut log_uniform =
        |low: f64, high: f64| (low.ln() + (high / low).ln() * rng.uniform()).exp();
    FunctionProfile {
        cpu_core_seconds: log_uniform(0.002, 0.04),
        cpu_cv: 0.4,
        parallelism: 1.0,
        io_seconds: log_uniform(0.002, 0.04),
        io_cv: 0.5,
        throttle_waste: 0.3,
        memory_base_mib: 150.0,
        memory_per_request_mib: 2.0,
        network_rx_bytes: 2_000.0,
        cold_start_seconds: 10.0,
    }
}

/// Entry, about sqrt(n) parallel branches of short chains, join.
fn fan_out(names: &[String]) -> Stage {
    let n = names.len();
    if n < 3 {
        return Stage::Sequence(names.iter().map(|f| Stage::call(f)).collect());
    }
    let middle = &names[1..n - 1];
    let width = (middle.len() as f64).sqrt().ceil().max(1.0) as usize;
    let branches: Vec<Stage> = middle
        .chunks(middle.len().div_ceil(width))
        .map(|chunk| Stage::Sequence(chunk.iter().map(|f| Stage::call(f)).collect()))
        .collect();
    Stage::Sequence(vec![
        Stage::call(&names[0]),
        Stage::Parallel(branches),
        Stage::call(&names[n - 1]),
    ])
}

/// Function i calls 3i+1..3i+3 (those that exist), in sequence, after its own work.
fn nested(names: &[String]) -> Stage {
    fn call(names: &[String], i: usize) -> Stage {
        let children: Vec<Stage> = (3 * i + 1..=3 * i + 3)
            .filter(|&c| c < names.len())
            .map(|c| call(names, c))
            .collect();
        if children.is_empty() {
            Stage::call(&names[i])
        } else {
            Stage::nested(&names[i], Stage::Sequence(children))
        }
    }
    call(names, 0)
}

/// Stages of 1-4 functions each: a call, a fan-out or a nested call of a short chain.
fn mixed(names: &[String], rng: &mut Rng) -> Stage {
    let mut stages = Vec::new();
    let mut at = 0;
    while at < names.len() {
        let left = names.len() - at;
        let take = (1 + rng.below(4)).min(left);
        let group = &names[at..at + take];
        let stage = match (take, rng.below(2)) {
            (1, _) => Stage::call(&group[0]),
            (_, 0) => Stage::Parallel(group.iter().map(|f| Stage::call(f)).collect()),
            _ => Stage::nested(
                &group[0],
                Stage::Sequence(group[1..].iter().map(|f| Stage::call(f)).collect()),
            ),
        };
        stages.push(stage);
        at += take;
    }
    Stage::Sequence(stages)
}

/// The latency of one request alone at `cores` per function, seconds: the critical path of
/// the plan through each function's CPU work (at most `cores` at once) and I/O. The scale
/// experiment sets its QoS target from it.
pub fn alone_latency(workflow: &Workflow, cores: f64) -> f64 {
    fn of(w: &Workflow, stage: &Stage, cores: f64) -> f64 {
        match stage {
            Stage::Call(call) => {
                let own = w.function_index(&call.function).map_or(0.0, |i| {
                    let p = &w.functions[i].profile;
                    p.io_seconds + p.cpu_core_seconds / cores.min(p.parallelism).max(1e-3)
                });
                own + call.calls.as_ref().map_or(0.0, |c| of(w, c, cores))
            }
            Stage::Sequence(stages) => stages.iter().map(|s| of(w, s, cores)).sum(),
            Stage::Parallel(stages) => stages.iter().map(|s| of(w, s, cores)).fold(0.0, f64::max),
            Stage::Branch(arms) => {
                let total: f64 = arms.iter().map(|a| a.weight).sum();
                arms.iter()
                    .map(|a| a.weight / total.max(1e-12) * of(w, &a.stage, cores))
                    .sum()
            }
        }
    }
    of(workflow, &workflow.plan, cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_makes_a_valid_workflow_of_the_size_asked() {
        for shape in Shape::ALL {
            for n in [2, 25, 50, 100] {
                let w = generate(shape, n, 3).expect("valid");
                assert_eq!(w.len(), n, "{shape:?} {n}");
                assert!(alone_latency(&w, 0.5) > 0.0);
                assert_eq!(generate(shape, n, 3).expect("valid"), w, "seeded");
            }
            assert_eq!(Shape::parse(shape.name()), Ok(shape));
        }
        let chain = generate(Shape::Chain, 10, 1).expect("valid");
        let fan = generate(Shape::FanOut, 10, 1).expect("valid");
        assert!(
            alone_latency(&fan, 1.0) < alone_latency(&chain, 1.0),
            "the same profiles in parallel branches take less time than in a chain"
        );
        let e = generate(Shape::Chain, 1, 0).expect_err("too small");
        assert!(e.to_string().contains("functions"), "{e}");
        assert!(Shape::parse("ring").is_err());
    }
}
