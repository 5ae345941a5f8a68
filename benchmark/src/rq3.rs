//! `rq3`: what each part of faasconf is worth. faasconf's variants ([`ABLATIONS`]) run the
//! same protocol, warm-up and oracle as `rq1`, at the middle load of each workflow:
//!
//! - with the twin's screening (the whole method): as is, without safe exploration, and
//!   hardware-only (CPU, memory and replicas; concurrency fixed where every method starts);
//! - without it (the agents and safe exploration alone, as the paper's FaaSConf decides):
//!   attmf, mf, maddpg and ddpg, attmf without safe exploration, attmf hardware-only.
//!
//! The run itself is `rq1`'s ([`crate::rq1::run`]) over these methods.

use crate::methods::{ABLATIONS, Method, Variant};
use crate::rq1::{Rq1Options, loads_of};

/// The load of a workflow `rq3` runs at: the middle of its `rq1` levels (20 users for the ML
/// workflows, 30 for TcktApp).
pub fn middle_load(workflow: &str) -> u32 {
    let loads = loads_of(workflow);
    loads[loads.len() / 2]
}

/// faasconf's variants, in report order.
pub fn variants() -> Vec<Method> {
    ABLATIONS.iter().copied().map(Method::Faasconf).collect()
}

/// Every workflow at its middle load, 3 seeds, every variant.
pub fn full() -> Rq1Options {
    let rq1 = Rq1Options::full();
    Rq1Options {
        grid: rq1
            .grid
            .iter()
            .map(|(w, _)| (w.clone(), vec![middle_load(w)]))
            .collect(),
        methods: variants(),
        ..rq1
    }
}

/// `parallel` at 20 users, one seed, the whole method and the variants without screening
/// (each of those takes seconds; a screened one takes minutes), with `rq1 --quick`'s oracle.
pub fn quick() -> Rq1Options {
    Rq1Options {
        methods: variants()
            .into_iter()
            .filter(|m| m.variant().is_some_and(|v| !v.screen || v == Variant::FULL))
            .collect(),
        ..Rq1Options::quick()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ablation_covers_each_part_once() {
        let names: Vec<String> = variants().iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                "faasconf",
                "faasconf-noses",
                "faasconf-hw",
                "faasconf-unscreened",
                "faasconf-unscreened-mf",
                "faasconf-unscreened-maddpg",
                "faasconf-unscreened-ddpg",
                "faasconf-unscreened-noses",
                "faasconf-unscreened-hw",
            ]
        );
        for name in &names {
            assert_eq!(
                Method::parse(name).map(|m| m.name()).as_deref(),
                Ok(name.as_str())
            );
        }
        assert_eq!(
            full().grid,
            vec![
                ("sequential".to_owned(), vec![20]),
                ("parallel".to_owned(), vec![20]),
                ("branch".to_owned(), vec![20]),
                ("tcktapp".to_owned(), vec![30]),
            ]
        );
        assert_eq!(quick().methods.len(), 7);
    }
}
