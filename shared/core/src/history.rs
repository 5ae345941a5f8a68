//! Rows of the FaaSConf history CSV (`../shared/data/README.md`): per window, the normalised
//! actions, per-function configuration and metrics, and end-to-end figures.
//!
//! Layout for `n` functions: `4n` action columns (cpu, mem, replicas, concurrency per function),
//! `n` blocks of 10 (name, cpu, mem, replicas, cpu_metric, thr_metric, mem_metric,
//! network_metric, latency_p75, latency_p95), then e2e mean, e2e p95, successful, total, price,
//! users: `14n + 6` columns.

use std::path::Path;

use crate::config::{FunctionConfig, WorkflowConfig};
use crate::error::{Error, FieldError, Result};
use crate::telemetry::WindowReport;
use crate::topology::Workflow;

/// Measurements of one function in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSample {
    /// The configuration in force.
    pub config: FunctionConfig,
    /// CPU usage, % of one core averaged over pods.
    pub cpu_percent: f64,
    /// CFS throttled periods (last minute).
    pub throttled_periods: f64,
    /// Working set, % of the limit.
    pub memory_percent: f64,
    /// Received bytes per second.
    pub network_rx_bytes_per_second: f64,
    /// p75 latency, seconds.
    pub p75_seconds: f64,
    /// p95 latency, seconds.
    pub p95_seconds: f64,
}

/// One window of history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// 1-based line number in the file (header is line 1).
    pub line: usize,
    /// Normalised actions per function.
    pub actions: Vec<[f64; 4]>,
    /// Per-function samples, in workflow order.
    pub functions: Vec<FunctionSample>,
    /// End-to-end mean latency, seconds.
    pub e2e_mean_seconds: f64,
    /// End-to-end p95 latency, seconds.
    pub e2e_p95_seconds: f64,
    /// Successful requests in the window.
    pub successful: f64,
    /// All requests in the window.
    pub total: f64,
    /// The recorded price.
    pub price: f64,
    /// Concurrent users (closed loop); for an open-loop row, the requests in the system on
    /// average (Little's law), which places it on the same scale.
    pub users: f64,
    /// The arrival rate, requests per second, of a row driven by open-loop arrivals (`None`:
    /// closed loop at `users`, as every row of the history CSV).
    pub arrivals_per_second: Option<f64>,
}

impl HistoryRow {
    /// A window as a history row, numbered `line`, with the policy's `actions` (the
    /// configuration's own when they do not fit). A window a closed-loop generator drove (users
    /// reported) is a closed-loop row; any other with a measured arrival rate is an open-loop row
    /// at that rate. `None` for a window calibration cannot use: transient, rolled out only in
    /// part, with series missing, without finished requests, without any load, or of another
    /// function count.
    pub fn from_window(
        workflow: &Workflow,
        window: &WindowReport,
        line: usize,
        actions: &[[f64; 4]],
    ) -> Option<Self> {
        let w = window;
        let n = workflow.len();
        let rate = w.arrival_rate();
        let open = w.users == 0 && rate.is_finite() && rate > 0.0;
        if w.transient
            || w.workflow.rollout_stalled
            || !w.is_complete()
            || (w.users == 0 && !open)
            || w.workflow.total_requests == 0
            || w.functions.len() != n
            || w.config.0.len() != n
        {
            return None;
        }
        let functions = w
            .functions
            .iter()
            .zip(&w.config.0)
            .map(|(f, config)| FunctionSample {
                config: *config,
                cpu_percent: f.cpu_usage_percent,
                throttled_periods: f.cpu_throttled_periods,
                memory_percent: f.memory_percent_of_limit,
                network_rx_bytes_per_second: f.network_rx_bytes_per_second,
                p75_seconds: f.latency_p75_seconds,
                p95_seconds: f.latency_p95_seconds,
            })
            .collect();
        Some(Self {
            line,
            actions: if actions.len() == n {
                actions.to_vec()
            } else {
                workflow.actions_of(&w.config)
            },
            functions,
            e2e_mean_seconds: w.workflow.mean_latency_seconds,
            e2e_p95_seconds: w.workflow.p95_latency_seconds,
            successful: w.workflow.successful_requests as f64,
            total: w.workflow.total_requests as f64,
            price: w.workflow.cost,
            users: if open {
                w.in_flight()
            } else {
                f64::from(w.users)
            },
            arrivals_per_second: open.then_some(rate),
        })
    }

    /// The configuration of the window.
    pub fn config(&self) -> WorkflowConfig {
        WorkflowConfig(self.functions.iter().map(|f| f.config).collect())
    }

    /// Successful / total requests (0 when no request finished).
    pub fn success_ratio(&self) -> f64 {
        if self.total > 0.0 {
            self.successful / self.total
        } else {
            0.0
        }
    }
}

const FUNCTION_FIELDS: [&str; 10] = [
    "name",
    "cpu",
    "mem",
    "replicas",
    "cpu_metric",
    "thr_metric",
    "mem_metric",
    "network_metric",
    "latency_p75",
    "latency_p95",
];
const TAIL_FIELDS: [&str; 6] = [
    "e2e_latency",
    "p95_latency",
    "successful",
    "total_request",
    "price",
    "qps",
];

/// Reads a history CSV for `workflow`. Every bad row and field is reported (line, column, name);
/// nothing is returned unless the whole file is valid.
pub fn read_history(path: &Path, workflow: &Workflow) -> Result<Vec<HistoryRow>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_history(file, workflow)
}

/// Parses history CSV text (with its header line) for `workflow`.
pub fn parse_history(reader: impl std::io::Read, workflow: &Workflow) -> Result<Vec<HistoryRow>> {
    let n = workflow.len();
    let width = 14 * n + 6;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in csv.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(FieldError::new(format!("line {line}"), e.to_string()));
                continue;
            }
        };
        if record.len() != width {
            errors.push(FieldError::new(
                format!("line {line}"),
                format!("has {} columns, {} functions need {width}", record.len(), n),
            ));
            continue;
        }
        match parse_row(&record, line, workflow) {
            Ok(row) => rows.push(row),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    if rows.is_empty() {
        return Err(Error::field("history", "holds no data row"));
    }
    Ok(rows)
}

fn parse_row(
    record: &csv::StringRecord,
    line: usize,
    workflow: &Workflow,
) -> Result<HistoryRow, Vec<FieldError>> {
    let n = workflow.len();
    let mut errors = Vec::new();
    let mut number = |col: usize, name: &str| -> f64 {
        let text = record.get(col).unwrap_or_default().trim();
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                errors.push(FieldError::new(
                    format!("line {line}, column {} ({name})", col + 1),
                    format!("{text:?} is not a finite number"),
                ));
                f64::NAN
            }
        }
    };
    let mut actions = Vec::with_capacity(n);
    for (j, spec) in workflow.functions.iter().enumerate() {
        let mut a = [0.0; 4];
        for (k, knob) in ["cpu", "mem", "replicas", "concurrency"].iter().enumerate() {
            a[k] = number(4 * j + k, &format!("{}.action.{knob}", spec.name));
        }
        actions.push(a);
    }
    let mut values = Vec::with_capacity(n);
    for (j, spec) in workflow.functions.iter().enumerate() {
        let base = 4 * n + 10 * j;
        let v: Vec<f64> = (1..10)
            .map(|k| number(base + k, &format!("{}.{}", spec.name, FUNCTION_FIELDS[k])))
            .collect();
        values.push(v);
    }
    let tail: Vec<f64> = (0..6).map(|k| number(14 * n + k, TAIL_FIELDS[k])).collect();
    for (j, spec) in workflow.functions.iter().enumerate() {
        let col = 4 * n + 10 * j;
        let name = record.get(col).unwrap_or_default().trim();
        if name != spec.name {
            errors.push(FieldError::new(
                format!("line {line}, column {} ({}.name)", col + 1, spec.name),
                format!(
                    "found {name:?}, the workflow's function {j} is {:?}",
                    spec.name
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut functions = Vec::with_capacity(n);
    for (j, spec) in workflow.functions.iter().enumerate() {
        let v = &values[j];
        let prefix = format!("line {line}, {}", spec.name);
        // The concurrency is only in the action columns; CPU, memory, replicas are also recorded.
        let from_action =
            match spec.bounds.from_action(actions[j]) {
                Ok(c) => c,
                Err(e) => {
                    errors.extend(e.field_errors().iter().map(|f| {
                        FieldError::new(format!("{prefix}.{}", f.field), f.message.clone())
                    }));
                    continue;
                }
            };
        let as_u32 = |x: f64| {
            if x >= 0.0 && x <= f64::from(u32::MAX) && x.fract() == 0.0 {
                Some(x as u32)
            } else {
                None
            }
        };
        let recorded = [(v[0], "cpu"), (v[1], "mem"), (v[2], "replicas")].map(|(x, name)| {
            as_u32(x).ok_or_else(|| {
                FieldError::new(
                    format!("{prefix}.{name}"),
                    format!("{x} is not a whole non-negative number"),
                )
            })
        });
        let [cpu, mem, replicas] = match recorded {
            [Ok(c), Ok(m), Ok(r)] => [c, m, r],
            other => {
                errors.extend(other.into_iter().filter_map(|r| r.err()));
                continue;
            }
        };
        let config = FunctionConfig {
            cpu_millis: cpu,
            memory_mib: mem,
            replicas,
            concurrency: from_action.concurrency,
        };
        errors.extend(spec.bounds.check(&config, &prefix));
        functions.push(FunctionSample {
            config,
            cpu_percent: v[3],
            throttled_periods: v[4],
            memory_percent: v[5],
            network_rx_bytes_per_second: v[6],
            p75_seconds: v[7],
            p95_seconds: v[8],
        });
    }
    if tail[3] < tail[2] {
        errors.push(FieldError::new(
            format!("line {line}, total_request"),
            format!("{} is below successful {}", tail[3], tail[2]),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(HistoryRow {
        line,
        actions,
        functions,
        e2e_mean_seconds: tail[0],
        e2e_p95_seconds: tail[1],
        successful: tail[2],
        total: tail[3],
        price: tail[4],
        users: tail[5],
        arrivals_per_second: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::builtin;

    fn data_file() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/parallel_10_train.csv")
    }

    #[test]
    fn cost_reproduces_the_price_column_on_every_row() {
        let w = builtin("parallel").unwrap();
        let rows =
            read_history(&data_file(), &w).expect("the shared data file beside the repository");
        assert!(rows.len() > 100);
        for row in &rows {
            let cost = row.config().cost();
            assert!(
                ((cost - row.price) / row.price).abs() <= 1e-9,
                "line {}: cost {cost} vs price {}",
                row.line,
                row.price
            );
            assert_eq!(
                row.config(),
                w.config_from_actions(&row.actions).unwrap(),
                "line {}",
                row.line
            );
        }
    }

    #[test]
    fn bad_rows_are_all_reported_by_line_and_column() {
        let w = builtin("parallel").unwrap();
        let text = std::fs::read_to_string(data_file()).unwrap();
        let mut lines: Vec<String> = text.lines().take(4).map(str::to_owned).collect();
        lines[1] = lines[1].replacen("starter", "starterX", 1);
        let mut cells: Vec<&str> = lines[2].split(',').collect();
        cells[0] = "NaN";
        lines[2] = cells.join(",");
        lines[3] = "1,2,3".to_owned();
        let err = parse_history(lines.join("\n").as_bytes(), &w).unwrap_err();
        let fields: Vec<&str> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "line 2, column 25 (starter.name)",
                "line 3, column 1 (starter.action.cpu)",
                "line 4"
            ]
        );
    }
}
