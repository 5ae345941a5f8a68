//! Workloads the twin drives: closed-loop users, open-loop Poisson arrivals, and a per-minute
//! trace (such as the Azure Functions 2019 series) scaled into a range of closed-loop users.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What drives requests into the workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// `users` users; each sends its next request when the previous returns (after think time).
    ClosedLoop {
        /// Concurrent users.
        users: u32,
    },
    /// Poisson arrivals, independent of responses.
    Poisson {
        /// Mean arrival rate.
        requests_per_second: f64,
    },
    /// Closed-loop users whose number follows a per-minute series scaled into
    /// `[min_users, max_users]` (minimum of the series -> `min_users`, maximum -> `max_users`).
    Trace {
        /// Per-minute counts (any unit: only the shape matters).
        per_minute: Vec<f64>,
        /// Users at the series' minimum.
        min_users: u32,
        /// Users at the series' maximum.
        max_users: u32,
    },
}

impl Workload {
    /// Checks the workload's fields.
    pub fn validate(&self) -> Result<()> {
        match self {
            Workload::ClosedLoop { users } if *users == 0 || *users > 100_000 => Err(Error::field(
                "workload.users",
                format!("{users} is not in 1..=100000"),
            )),
            Workload::Poisson {
                requests_per_second: r,
            } if !(r.is_finite() && *r > 0.0 && *r <= 1e6) => Err(Error::field(
                "workload.requests_per_second",
                format!("{r} is not in (0, 1e6]"),
            )),
            Workload::Trace {
                per_minute,
                min_users,
                max_users,
            } => {
                if per_minute.is_empty() {
                    return Err(Error::field("workload.per_minute", "holds no minute"));
                }
                if let Some(i) = per_minute
                    .iter()
                    .position(|v| !(v.is_finite() && *v >= 0.0))
                {
                    return Err(Error::field(
                        format!("workload.per_minute[{i}]"),
                        format!("{} is not a count", per_minute[i]),
                    ));
                }
                if min_users > max_users || *max_users == 0 || *max_users > 100_000 {
                    return Err(Error::field(
                        "workload.max_users",
                        format!("range {min_users}..={max_users} is not valid"),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Closed-loop users wanted at `minute` (0-based; the trace repeats when it runs out).
    pub fn users_at_minute(&self, minute: usize) -> u32 {
        match self {
            Workload::ClosedLoop { users } => *users,
            Workload::Poisson { .. } => 0,
            Workload::Trace {
                per_minute,
                min_users,
                max_users,
            } => {
                let (lo, hi) = per_minute
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
                let v = per_minute[minute % per_minute.len()];
                let shape = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
                (f64::from(*min_users) + shape * f64::from(max_users - min_users)).round() as u32
            }
        }
    }

    /// A short label for reports (e.g. `10 users`, `5 rps`, `trace 10-40 users`).
    pub fn label(&self) -> String {
        match self {
            Workload::ClosedLoop { users } => format!("{users} users"),
            Workload::Poisson {
                requests_per_second,
            } => format!("{requests_per_second} rps"),
            Workload::Trace {
                min_users,
                max_users,
                ..
            } => format!("trace {min_users}-{max_users} users"),
        }
    }
}

/// Reads one function's per-minute series from a trace CSV in the Azure Functions 2019 layout
/// (`HashFunction,HashApp,HashOwner,minute_1,...`): row `row` (0-based), minutes
/// `[start, start + minutes)`.
pub fn read_azure_series(
    path: &Path,
    row: usize,
    start: usize,
    minutes: usize,
) -> Result<Vec<f64>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| Error::Trace(format!("{}: {e}", path.display())))?;
    let record = reader
        .records()
        .nth(row)
        .ok_or_else(|| Error::Trace(format!("{}: has no data row {row}", path.display())))?
        .map_err(|e| Error::Trace(format!("{}: {e}", path.display())))?;
    let values: Vec<f64> = record
        .iter()
        .skip(3)
        .enumerate()
        .map(|(i, cell)| {
            cell.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    Error::Trace(format!(
                        "{}: row {row}, minute_{}: {cell:?} is not a count",
                        path.display(),
                        i + 1
                    ))
                })
        })
        .collect::<Result<_>>()?;
    if start + minutes > values.len() || minutes == 0 {
        return Err(Error::Trace(format!(
            "{}: minutes {start}..{} are outside the {} minutes of the trace",
            path.display(),
            start + minutes,
            values.len()
        )));
    }
    Ok(values[start..start + minutes].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_scales_into_the_user_range() {
        let w = Workload::Trace {
            per_minute: vec![5.0, 10.0, 15.0],
            min_users: 10,
            max_users: 40,
        };
        assert_eq!(
            (0..4).map(|m| w.users_at_minute(m)).collect::<Vec<_>>(),
            [10, 25, 40, 10]
        );
        w.validate().unwrap();
    }

    #[test]
    fn bad_workloads_name_the_field() {
        let e = Workload::ClosedLoop { users: 0 }.validate().unwrap_err();
        assert!(e.to_string().contains("workload.users"));
        let e = Workload::Poisson {
            requests_per_second: f64::NAN,
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("requests_per_second"));
        let e = Workload::Trace {
            per_minute: vec![1.0, -1.0],
            min_users: 1,
            max_users: 2,
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("per_minute[1]"));
    }

    #[test]
    fn azure_trace_rows_are_read() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/azure/invocations_per_minute_140fn.csv");
        let series = read_azure_series(&path, 0, 0, 85).unwrap();
        assert_eq!(series.len(), 85);
        assert!(read_azure_series(&path, 0, 1400, 85).is_err());
    }
}
