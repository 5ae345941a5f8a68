//! The experience store: every observed window (a configuration, its workload, what it did, its
//! reward and QoS outcome), the safe-exploration band records, and the model versions — in one
//! embedded SQLite file.
//!
//! The file runs in write-ahead-log mode and every write is one transaction: a process killed at
//! any moment loses nothing it was told was stored. Numbers round-trip bit for bit (exact float
//! parsing). Observations keep the whole telemetry window
//! (JSON), so states can be rebuilt however the policy encodes them; history in the FaaSConf CSV
//! format imports as observations too.

use std::path::Path;

use faasconf_core::Workflow;
use faasconf_core::history::HistoryRow;
use faasconf_core::telemetry::{FunctionWindow, WindowReport, WorkflowWindow};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused (the operation named).
    #[error("store {operation}: {source}")]
    Sqlite {
        /// What was being done.
        operation: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file is not a sound SQLite database (SQLite's quick check at open found damage).
    #[error("store file is damaged: {0}; restore it from a backup or move it aside to start empty")]
    Damaged(String),
    /// A stored payload did not decode.
    #[error("store: row {id} of {table} is corrupt: {message}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Row id.
        id: i64,
        /// What failed.
        message: String,
    },
}

/// `Result` with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn sql(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |source| Error::Sqlite { operation, source }
}

/// Where an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Imported history (CSV).
    History,
    /// Generated on the twin.
    Twin,
    /// Measured on a cluster during a tuning session.
    Online,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::History => "history",
            Self::Twin => "twin",
            Self::Online => "online",
        }
    }
}

/// One observed window under one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Workflow name.
    pub workflow: String,
    /// Where it came from.
    pub source: Source,
    /// Session it belongs to (consecutive windows of one session make transitions).
    pub session: String,
    /// Position in the session.
    pub seq: u64,
    /// Closed-loop users.
    pub users: u32,
    /// The normalised actions that produced the configuration.
    pub actions: Vec<[f64; 4]>,
    /// The telemetry window (configuration included).
    pub window: WindowReport,
    /// Reward the policy was given.
    pub reward: f64,
    /// Whether QoS was met.
    pub qos_met: bool,
}

/// A stored observation and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Row id (insertion order).
    pub id: i64,
    /// The observation.
    pub observation: Observation,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Version number (increasing).
    pub version: i64,
    /// Workflow it was trained for.
    pub workflow: String,
    /// Where the checkpoint lives.
    pub path: String,
    /// Training configuration and report (JSON).
    pub metadata: serde_json::Value,
    /// Whether it is the promoted (serving) version of its workflow.
    pub promoted: bool,
}

/// The store.
pub struct Store {
    connection: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow TEXT NOT NULL,
    source TEXT NOT NULL,
    session TEXT NOT NULL,
    seq INTEGER NOT NULL,
    users INTEGER NOT NULL,
    price REAL NOT NULL,
    reward REAL NOT NULL,
    qos_met INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS observations_by_workflow ON observations (workflow, users);
CREATE TABLE IF NOT EXISTS bands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow TEXT NOT NULL,
    users INTEGER NOT NULL,
    band TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS models (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow TEXT NOT NULL,
    path TEXT NOT NULL,
    metadata TEXT NOT NULL,
    promoted INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
";

impl Store {
    /// Opens (creating) the store at `path`, after SQLite's quick check of the whole file: a
    /// damaged store fails here, at start, not on the first read of the damaged page.
    pub fn open(path: &Path) -> Result<Self> {
        let connection = Connection::open(path).map_err(sql("open"))?;
        let store = Self::init(connection)?;
        store.quick_check()?;
        Ok(store)
    }

    /// SQLite's `PRAGMA quick_check` (every page and index entry readable, the b-trees well
    /// formed; `O(size)`, without the cross-checks of `integrity_check`).
    pub fn quick_check(&self) -> Result<()> {
        let mut query = self
            .connection
            .prepare("PRAGMA quick_check(20)")
            .map_err(|e| Error::Damaged(e.to_string()))?;
        let problems: Vec<String> = query
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| Error::Damaged(e.to_string()))?;
        if problems == ["ok"] {
            Ok(())
        } else {
            Err(Error::Damaged(problems.join("; ")))
        }
    }

    /// A store in memory (tests, dry runs).
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(sql("open"))?)
    }

    fn init(connection: Connection) -> Result<Self> {
        // WAL: a committed transaction survives the process being killed; NORMAL sync is enough
        // for that (only a power loss could drop the last commits).
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("enable WAL"))?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("set synchronous"))?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("set busy timeout"))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(sql("create schema"))?;
        Ok(Self { connection })
    }

    /// Stores `observations` in one transaction; their ids.
    pub fn record(&mut self, observations: &[Observation]) -> Result<Vec<i64>> {
        let tx = self.connection.transaction().map_err(sql("begin"))?;
        let mut ids = Vec::with_capacity(observations.len());
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO observations (workflow, source, session, seq, users, price, reward, qos_met, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
                .map_err(sql("prepare insert"))?;
            for o in observations {
                let payload = serde_json::to_string(o).map_err(|e| Error::Corrupt {
                    table: "observations",
                    id: 0,
                    message: e.to_string(),
                })?;
                insert
                    .execute(params![
                        o.workflow,
                        o.source.as_str(),
                        o.session,
                        o.seq as i64,
                        o.users,
                        o.window.workflow.cost,
                        o.reward,
                        o.qos_met,
                        payload
                    ])
                    .map_err(sql("insert observation"))?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit().map_err(sql("commit"))?;
        Ok(ids)
    }

    /// Every observation of `workflow`, in insertion order. A row that does not decode, or
    /// does not fit the workflow (another function list: the topology changed under the same
    /// name), is skipped, logged and counted on `faasconf_store_skipped_rows_total`: one bad
    /// row must not make every read of the workflow fail.
    pub fn observations(&self, workflow: &Workflow) -> Result<Vec<Stored>> {
        let mut query = self
            .connection
            .prepare_cached("SELECT id, payload FROM observations WHERE workflow = ?1 ORDER BY id")
            .map_err(sql("prepare select"))?;
        let rows = query
            .query_map(params![workflow.name], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(sql("select observations"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, payload) = match row {
                Ok(row) => row,
                Err(e) => {
                    skipped(&workflow.name, 0, &e.to_string());
                    continue;
                }
            };
            match serde_json::from_str::<Observation>(&payload) {
                Ok(observation) => match misfit(workflow, &observation) {
                    None => out.push(Stored { id, observation }),
                    Some(why) => skipped(&workflow.name, id, &why),
                },
                Err(e) => skipped(&workflow.name, id, &e.to_string()),
            }
        }
        Ok(out)
    }

    /// How many observations `workflow` has.
    pub fn count(&self, workflow: &str) -> Result<u64> {
        self.connection
            .query_row(
                "SELECT COUNT(*) FROM observations WHERE workflow = ?1",
                params![workflow],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(sql("count"))
    }

    /// Records a band (any serialisable record) for `(workflow, users)`.
    pub fn record_band(&mut self, workflow: &str, users: u32, band: &impl Serialize) -> Result<()> {
        let text = serde_json::to_string(band).map_err(|e| Error::Corrupt {
            table: "bands",
            id: 0,
            message: e.to_string(),
        })?;
        self.connection
            .execute(
                "INSERT INTO bands (workflow, users, band) VALUES (?1, ?2, ?3)",
                params![workflow, users, text],
            )
            .map_err(sql("insert band"))?;
        Ok(())
    }

    /// The latest band recorded for `(workflow, users)`.
    pub fn latest_band<T: for<'de> Deserialize<'de>>(
        &self,
        workflow: &str,
        users: u32,
    ) -> Result<Option<T>> {
        let row: Option<(i64, String)> = self
            .connection
            .query_row("SELECT id, band FROM bands WHERE workflow = ?1 AND users = ?2 ORDER BY id DESC LIMIT 1", params![workflow, users], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql("select band"))?;
        row.map(|(id, text)| {
            serde_json::from_str(&text).map_err(|e| Error::Corrupt {
                table: "bands",
                id,
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// Registers a checkpoint; its version.
    pub fn add_model(
        &mut self,
        workflow: &str,
        path: &str,
        metadata: &serde_json::Value,
    ) -> Result<i64> {
        self.connection
            .execute(
                "INSERT INTO models (workflow, path, metadata) VALUES (?1, ?2, ?3)",
                params![workflow, path, metadata.to_string()],
            )
            .map_err(sql("insert model"))?;
        Ok(self.connection.last_insert_rowid())
    }

    /// Makes `version` the serving model of its workflow (and no other); false if unknown.
    pub fn promote(&mut self, version: i64) -> Result<bool> {
        let tx = self.connection.transaction().map_err(sql("begin"))?;
        let workflow: Option<String> = tx
            .query_row(
                "SELECT workflow FROM models WHERE version = ?1",
                params![version],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("select model"))?;
        let Some(workflow) = workflow else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE models SET promoted = (version = ?1) WHERE workflow = ?2",
            params![version, workflow],
        )
        .map_err(sql("promote"))?;
        tx.commit().map_err(sql("commit"))?;
        Ok(true)
    }

    /// Model versions of `workflow` (all workflows when `None`), oldest first; a version whose
    /// metadata does not decode is skipped, logged and counted.
    pub fn models(&self, workflow: Option<&str>) -> Result<Vec<ModelVersion>> {
        let mut query = self
            .connection
            .prepare_cached("SELECT version, workflow, path, metadata, promoted FROM models WHERE ?1 IS NULL OR workflow = ?1 ORDER BY version")
            .map_err(sql("prepare models"))?;
        let rows = query
            .query_map(params![workflow], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            })
            .map_err(sql("select models"))?;
        let mut out = Vec::new();
        for row in rows {
            let (version, workflow, path, metadata, promoted) = row.map_err(sql("read model"))?;
            // A version whose metadata does not decode is skipped (and counted), not fatal.
            let metadata = match serde_json::from_str(&metadata) {
                Ok(m) => m,
                Err(e) => {
                    skipped(&workflow, version, &format!("model metadata: {e}"));
                    continue;
                }
            };
            out.push(ModelVersion {
                version,
                workflow,
                path,
                metadata,
                promoted,
            });
        }
        Ok(out)
    }
}

/// Why a decoded observation cannot be used for `workflow` (`None`: it fits).
pub fn misfit(workflow: &Workflow, o: &Observation) -> Option<String> {
    let n = workflow.len();
    let names_fit = o
        .window
        .functions
        .iter()
        .map(|f| f.function.as_str())
        .eq(workflow.functions.iter().map(|f| f.name.as_str()));
    if o.workflow != workflow.name {
        Some(format!("it is of workflow {:?}", o.workflow))
    } else if !names_fit {
        Some("its functions are not the workflow's".into())
    } else if o.actions.len() != n || o.window.config.0.len() != n {
        Some(format!(
            "{} actions and {} configured functions for {n} functions",
            o.actions.len(),
            o.window.config.0.len()
        ))
    } else if !o.reward.is_finite() || o.actions.iter().flatten().any(|a| !a.is_finite()) {
        Some("a reward or action is not a finite number".into())
    } else {
        None
    }
}

fn skipped(workflow: &str, id: i64, why: &str) {
    tracing::warn!(
        workflow,
        row = id,
        why,
        "skipping a stored observation that cannot be used"
    );
    metrics::counter!("faasconf_store_skipped_rows_total", "workflow" => workflow.to_owned())
        .increment(1);
}

/// A history row as an observation (`session` names the import; rows are independent windows).
pub fn observation_from_history(
    workflow: &Workflow,
    row: &HistoryRow,
    session: &str,
    reward: f64,
    qos_met: bool,
) -> Observation {
    let config = row.config();
    let functions = workflow
        .functions
        .iter()
        .zip(&row.functions)
        .map(|(spec, f)| FunctionWindow {
            function: spec.name.clone(),
            cpu_usage_percent: f.cpu_percent,
            cpu_throttled_periods: f.throttled_periods,
            memory_percent_of_limit: f.memory_percent,
            network_rx_bytes_per_second: f.network_rx_bytes_per_second,
            requests: 0,
            rejections: 0,
            rejections_with_room: 0,
            oom_failures: 0,
            unavailable: 0,
            completed: 0,
            latency_p75_seconds: f.p75_seconds,
            latency_p95_seconds: f.p95_seconds,
            ready_replicas: f.config.replicas,
        })
        .collect();
    // An open-loop row: no users, its arrivals and requests in flight.
    let (users, arrivals, mean_in_flight) = match row.arrivals_per_second {
        Some(rate) => (0, (rate * 30.0).round().max(0.0) as u64, row.users),
        None => (row.users.round().max(0.0) as u32, 0, 0.0),
    };
    let window = WindowReport {
        index: row.line as u64,
        start_seconds: 0.0,
        duration_seconds: 30.0,
        config_version: 0,
        transient: false,
        config: config.clone(),
        users,
        workflow: WorkflowWindow {
            mean_latency_seconds: row.e2e_mean_seconds,
            p95_latency_seconds: row.e2e_p95_seconds,
            successful_requests: row.successful.round().max(0.0) as u64,
            total_requests: row.total.round().max(0.0) as u64,
            success_ratio: row.success_ratio(),
            throughput_rps: row.successful / 30.0,
            cost: row.price,
            rollout_stalled: false,
            arrivals,
            mean_in_flight,
            missing_series: Vec::new(),
        },
        functions,
    };
    Observation {
        workflow: workflow.name.clone(),
        source: Source::History,
        session: session.to_owned(),
        seq: row.line as u64,
        users,
        actions: row.actions.clone(),
        window,
        reward,
        qos_met,
    }
}

/// A stored window as a history row, for calibration from the store
/// ([`HistoryRow::from_window`]): the inverse of [`observation_from_history`] for every field
/// calibration reads (an imported row comes back equal, its line from the observation's
/// position). `None` for a window calibration cannot use.
pub fn history_from_observation(workflow: &Workflow, o: &Observation) -> Option<HistoryRow> {
    HistoryRow::from_window(workflow, &o.window, o.seq as usize, &o.actions)
}

#[cfg(test)]
mod tests;
