//! The cost model of FaaSConf and its data set:
//! `y(C) = sum_j (cpu_millis_j * 0.000173 + memory_mib_j * 0.000012) * replicas_j`
//! (Azure Functions premium pricing per millicore and per MiB). It reproduces the data's `price`.

use crate::config::FunctionConfig;

/// Price of one millicore (per replica).
pub const PRICE_PER_MILLICORE: f64 = 0.000173;
/// Price of one MiB of memory limit (per replica).
pub const PRICE_PER_MIB: f64 = 0.000012;

/// Cost of one function's configuration.
pub fn function_cost(config: &FunctionConfig) -> f64 {
    (f64::from(config.cpu_millis) * PRICE_PER_MILLICORE
        + f64::from(config.memory_mib) * PRICE_PER_MIB)
        * f64::from(config.replicas)
}

/// Cost of a whole configuration (functions summed in the order given).
pub fn workflow_cost<'a>(configs: impl IntoIterator<Item = &'a FunctionConfig>) -> f64 {
    configs.into_iter().map(function_cost).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_matches_the_formula_by_hand() {
        let c = FunctionConfig {
            cpu_millis: 1000,
            memory_mib: 1000,
            replicas: 2,
            concurrency: 3,
        };
        assert!((function_cost(&c) - (0.173 + 0.012) * 2.0).abs() < 1e-12);
        let d = FunctionConfig {
            cpu_millis: 250,
            memory_mib: 256,
            replicas: 1,
            concurrency: 1,
        };
        assert!(
            (workflow_cost([&c, &d]) - (0.37 + 250.0 * 0.000173 + 256.0 * 0.000012)).abs() < 1e-12
        );
    }
}
