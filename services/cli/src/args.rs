//! Command-line arguments, parsed and checked by clap before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// faasconf: keep serverless workflows within their latency target at the lowest cost.
#[derive(Debug, Parser)]
#[command(name = "faasconf", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Built-in workflows and topology files.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// The twin: simulate, calibrate, evaluate.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Train the agents of a workflow offline (twin samples + history) and register the model.
    Train(TrainArgs),
    /// Train in a running policy service (its store: measured windows, calibration) and follow
    /// the job; Ctrl-C or SIGTERM cancels it.
    TrainJob(TrainJobArgs),
    /// Ask a running policy service for a configuration (what a CI job needs).
    Recommend(RecommendArgs),
    /// Start a tuning session against a cluster's actuator, follow it (one line per iteration:
    /// cost, latency, QoS verdict, what changed) and stop it on Ctrl-C or SIGTERM.
    Tune(TuneArgs),
    /// The whole loop on the embedded twin: pre-train, start both services, tune for 15
    /// iterations, print what happened.
    Demo(DemoArgs),
    /// Compare faasconf with the baselines on the twin (the paper's evaluation).
    Bench(BenchArgs),
}

/// Where the experience store and the models live.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The experience store (SQLite file, created if missing).
    #[arg(long, env = "FAASCONF_STORE", default_value = "faasconf.db")]
    pub store: PathBuf,
    /// Where model versions are written (default: the store's path with extension `models`).
    #[arg(long, env = "FAASCONF_MODELS")]
    pub models: Option<PathBuf>,
}

impl StoreArgs {
    /// The models directory.
    pub fn models_dir(&self) -> PathBuf {
        self.models
            .clone()
            .unwrap_or_else(|| self.store.with_extension("models"))
    }
}

/// The learning algorithm (`attmf` is the method; the others are the paper's ablations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlgorithmChoice {
    /// Topology-masked attention mean field.
    Attmf,
    /// Uniform mean field.
    Mf,
    /// MADDPG, full concatenation.
    Maddpg,
    /// Single-agent DDPG.
    Ddpg,
}

/// How `attmf` turns attention scores into neighbour weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoringChoice {
    /// GAT-MF's squared dot product, masked by the adjacency.
    Squared,
    /// Scaled dot product through a softmax, non-neighbours at minus infinity.
    Softmax,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Built-in workflow or topology file.
    #[arg(long)]
    pub workflow: String,
    /// Profiles JSON (as written by `sim calibrate`) overriding the workflow's own: the twin
    /// samples are drawn from it (keyed by its fingerprint, never mixed with another twin's).
    /// Without it, a twin an earlier `--calibrate` adopted (`<models>/twins/<workflow>.json`)
    /// is trained on.
    #[arg(long)]
    pub profiles: Option<PathBuf>,
    /// Twin samples to draw (stored; a rerun with the same seed reuses them).
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// History CSV in the FaaSConf format to import first (e.g. ../shared/data/parallel_10_train.csv).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Learning algorithm.
    #[arg(long, value_enum, default_value_t = AlgorithmChoice::Attmf)]
    pub algorithm: AlgorithmChoice,
    /// Attention scoring (attmf only).
    #[arg(long, value_enum, default_value_t = ScoringChoice::Squared)]
    pub scoring: ScoringChoice,
    /// Gradient updates.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub updates: u64,
    /// Online steps on the twin after the offline updates, one update each.
    #[arg(long, default_value_t = 2000)]
    pub online_steps: u64,
    /// Discount of future rewards (the reference's 0.9).
    #[arg(long, default_value_t = 0.9)]
    pub gamma: f64,
    /// Weight of imitating QoS-meeting actions in the actor loss (0: the reference's pure
    /// policy gradient).
    #[arg(long, default_value_t = 2.5)]
    pub imitation: f64,
    /// Closed-loop user levels the twin samples cover.
    #[arg(long, value_delimiter = ',', default_value = "10,20,30")]
    pub loads: Vec<u32>,
    /// QoS mean latency target, milliseconds (rewards; default: the workflow's — its topology
    /// file's `qos`, else 13000).
    #[arg(long)]
    pub qos_latency_ms: Option<f64>,
    /// QoS minimum success ratio (rewards; default: the workflow's, else 0.9).
    #[arg(long)]
    pub min_success_ratio: Option<f64>,
    /// Seed of sampling, initialisation and training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Promote the new model (the first model of a workflow always is).
    #[arg(long)]
    pub promote: bool,
    /// Calibrate the twin from the store's measured windows first (tuning sessions' windows,
    /// imported history; closed or open loop) and train on it when it predicts a held-out fifth
    /// of them better than the twin it would replace. The model records the calibration
    /// (`calibration.json` beside it).
    #[arg(long)]
    pub calibrate: bool,
    /// Objective evaluations of that calibration (each simulates every fitted window).
    #[arg(long, default_value_t = faasconf_training::calibration::EVALUATIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=5000))]
    pub calibration_evaluations: usize,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct TrainJobArgs {
    /// How to reach the policy service.
    #[command(flatten)]
    pub connection: PolicyConnection,
    /// The workflow: its name, or its topology file (the name inside it is used).
    #[arg(long)]
    pub workflow: String,
    /// Twin samples (0: the service's default).
    #[arg(long, default_value_t = 0)]
    pub samples: u32,
    /// Passes over the samples (0: the service's default number of updates).
    #[arg(long, default_value_t = 0)]
    pub epochs: u32,
    /// Seed of sampling, initialisation and training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Learning algorithm: attmf, mf, maddpg or ddpg (empty: attmf).
    #[arg(long, default_value = "")]
    pub algorithm: String,
    /// Calibrate the service's twin from the measured windows in its store first (see
    /// `train --calibrate`); an adopted calibration becomes the twin the service plans on.
    #[arg(long)]
    pub calibrate: bool,
    /// Objective evaluations of that calibration (0: the service's default).
    #[arg(long, default_value_t = 0)]
    pub calibration_evaluations: u32,
    /// Promote the model the job registers (the service serves its newest otherwise).
    #[arg(long)]
    pub promote: bool,
    /// The summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// How often to read the job's status, milliseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub poll_ms: u64,
}

/// How `faasconf recommend` prints the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecommendFormat {
    /// The whole response as JSON.
    Json,
    /// An OpenFaaS stack.yml `functions:` fragment.
    Openfaas,
    /// Kubernetes strategic-merge patches of the functions' Deployments (YAML documents).
    Patch,
}

/// How to reach the policy service (`recommend`, `tune`).
#[derive(Debug, Args)]
pub struct PolicyConnection {
    /// The policy service, e.g. http://127.0.0.1:50052.
    #[arg(
        long,
        env = "FAASCONF_ENDPOINT",
        default_value = "http://127.0.0.1:50052"
    )]
    pub endpoint: String,
    /// How long to wait for the policy service (connecting and answering), seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_seconds: u64,
    /// PEM CA certificates to verify the policy service with (TLS: an `https://` endpoint).
    #[arg(long, env = "FAASCONF_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate to present to the policy service (mutual TLS).
    #[arg(long, env = "FAASCONF_TLS_CLIENT_CERT")]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM key of --tls-client-cert.
    #[arg(long, env = "FAASCONF_TLS_CLIENT_KEY")]
    pub tls_client_key: Option<PathBuf>,
    /// File holding the bearer token the policy service requires.
    #[arg(long, env = "FAASCONF_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Send --token-file's token over a plaintext `http://` endpoint (loopback development
    /// only; otherwise use `https://` with --tls-ca).
    #[arg(long, env = "FAASCONF_ALLOW_PLAINTEXT_TOKEN")]
    pub allow_plaintext_token: bool,
}

impl PolicyConnection {
    /// A plaintext connection to `endpoint` without credentials (a service this process started
    /// on loopback), waiting up to 60 s.
    pub fn plaintext(endpoint: String) -> Self {
        Self {
            endpoint,
            timeout_seconds: 60,
            tls_ca: None,
            tls_client_cert: None,
            tls_client_key: None,
            token_file: None,
            allow_plaintext_token: false,
        }
    }
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// How to reach the policy service.
    #[command(flatten)]
    pub connection: PolicyConnection,
    /// The workflow: its name, or its topology file (the name inside it is used).
    #[arg(long)]
    pub workflow: String,
    /// Closed-loop concurrent users (at most 1000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(faasconf_core::limits::MAX_USERS)))]
    pub users: u32,
    /// QoS mean latency target, milliseconds (default: the workflow's as the policy serves it —
    /// its topology file's `qos`, else 13000).
    #[arg(long)]
    pub qos_latency_ms: Option<f64>,
    /// QoS minimum success ratio (default: the workflow's, else 0.9).
    #[arg(long)]
    pub min_success_ratio: Option<f64>,
    /// A model version (default: the promoted one).
    #[arg(long, default_value = "")]
    pub model_version: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RecommendFormat::Json)]
    pub format: RecommendFormat,
    /// Namespace of the functions (patch format).
    #[arg(long, default_value = "openfaas-fn")]
    pub namespace: String,
    /// With `--format openfaas`: merge the recommendation into this stack.yml in place (only
    /// limits, requests, max_inflight and scale labels change; comments and layout stay)
    /// instead of printing it. A request at or below its new limit stays.
    #[arg(long)]
    pub stack: Option<PathBuf>,
    /// With `--stack`: set every request to its limit, also where the stack's is lower.
    #[arg(long)]
    pub requests_equal_limits: bool,
    /// With `--format patch`: write one patch file per function, `<dir>/<function>.yaml`, for
    /// `kubectl patch deployment <function> --patch-file`, instead of printing them.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// How the session reads the cluster's load (`tune --load-model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadModelChoice {
    /// Closed-loop users where the windows report them, otherwise the measured arrival rate.
    Measured,
    /// Open-loop arrivals at the measured rate (a cluster's own traffic).
    OpenLoop,
    /// Closed-loop users (a closed-loop load generator drives the cluster).
    ClosedLoop,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// How to reach the policy service.
    #[command(flatten)]
    pub connection: PolicyConnection,
    /// The actuator the session tunes against, e.g. http://127.0.0.1:50051 (default: the
    /// policy's --actuator; it accepts only those it was started with).
    #[arg(long, default_value = "")]
    pub actuator: String,
    /// The workflow: its name, or its topology file (the name inside it is used).
    #[arg(long)]
    pub workflow: String,
    /// Tuning iterations (windows) before the session ends.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=i64::from(faasconf_core::limits::MAX_TUNING_ITERATIONS)))]
    pub iterations: u32,
    /// QoS mean latency target, milliseconds (default: the workflow's as the policy serves it —
    /// its topology file's `qos`, else 13000).
    #[arg(long)]
    pub qos_latency_ms: Option<f64>,
    /// QoS minimum success ratio (default: the workflow's, else 0.9).
    #[arg(long)]
    pub min_success_ratio: Option<f64>,
    /// Revert after this many consecutive QoS-missing windows following a change.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=i64::from(faasconf_core::limits::MAX_ROLLBACK_WINDOWS)))]
    pub rollback_after: u32,
    /// End as converged when the best cost has not improved for this many iterations (0:
    /// never).
    #[arg(long, default_value_t = 0)]
    pub converge_after: u32,
    /// A model version (default: the promoted one).
    #[arg(long, default_value = "")]
    pub model_version: String,
    /// How the cluster's load is read and screened (default: the policy's --load-model).
    #[arg(long, value_enum)]
    pub load_model: Option<LoadModelChoice>,
    /// Consent to start from a defined configuration when knobs are unset on the platform (no
    /// CPU or memory limit, no max_inflight): they start at the top of their bounds, and the
    /// session applies that first. Without it such a session is refused, naming each knob.
    #[arg(long)]
    pub define_start: bool,
    /// Decide for the load just measured instead of the load forecast over the next windows.
    #[arg(long)]
    pub reactive: bool,
    /// Apply the policy's proposals without screening them on the twin.
    #[arg(long)]
    pub no_twin_screening: bool,
    /// Seed of exploration and screening.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How often the session's status is read, milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub poll_ms: u64,
    /// JSON Lines on standard output: one object per iteration, then the session's summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The workflow.
    #[arg(long, default_value = "parallel")]
    pub workflow: String,
    /// Closed-loop users of the twin.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// Tuning iterations.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
    /// Twin samples for the brief pre-training.
    #[arg(long, default_value_t = 1500)]
    pub samples: usize,
    /// Gradient updates of the pre-training.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..))]
    pub updates: u64,
    /// Learning algorithm.
    #[arg(long, value_enum, default_value_t = AlgorithmChoice::Attmf)]
    pub algorithm: AlgorithmChoice,
    /// Apply the policy's proposals without screening them on the twin.
    #[arg(long)]
    pub no_twin_screening: bool,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Working directory for the store and models (default: a fresh temporary one). A store
    /// already there is reused: its samples join the pre-training and the safe history, so
    /// only a fresh directory reproduces a run from its seed.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Print a JSON summary as the last line.
    #[arg(long)]
    pub json: bool,
}

/// An experiment of `faasconf bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Experiment {
    /// Every method on workflows x loads x seeds, against the oracle.
    Rq1,
    /// Every method under 85 minutes of dynamic load shaped by the Azure Functions trace.
    Rq2,
    /// faasconf's ablations (without safe exploration, hardware-only, without the twin's
    /// screening, other learning algorithms) at each workflow's middle load.
    Rq3,
    /// RecommendConfig latency and throughput, training step time, twin windows per second,
    /// the services' memory (needs the release service binaries beside this one).
    Speed,
    /// The policy under 16 concurrent RecommendConfig clients, 30 s per path (fast, twin):
    /// answers per second, latency, refusals, memory (needs the release policy binary).
    Load,
    /// rq1's protocol on clusters that are not the twin: per-function CPU-work and I/O-time
    /// factors drawn from 0.6-1.6; faasconf screens on the unscaled twin (refitting it to the
    /// windows it sees), the baselines warm up on the cluster.
    Mismatch,
    /// Synthetic workflows of 25, 50 and 100 functions (chains, fan-out, nested calls, mixed):
    /// decision time, training update time, memory, twin speed at 10-1000 requests/s, attmf
    /// against mf.
    Scale,
    /// Assembles `<out>/RESULTS.md` from the experiments' results under `<out>/<experiment>/`
    /// (runs nothing).
    Results,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The experiment.
    #[arg(value_enum)]
    pub experiment: Experiment,
    /// The reduced grid (minutes on 2 cores) instead of the full one.
    #[arg(long)]
    pub quick: bool,
    /// Where `<experiment>.json` and `<experiment>.md` are written.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Seeds (comma-separated; default: the grid's).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Methods (comma-separated; default: all).
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    /// Workflows (comma-separated; default: the grid's), each at its grid loads; for scale,
    /// synthetic shapes (chain, fan-out, nested, mixed).
    #[arg(long, value_delimiter = ',')]
    pub workflows: Vec<String>,
    /// Loads (comma-separated user counts; default: each workflow's grid loads).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub loads: Vec<u32>,
    /// rq2's load shape: azure85 (default), periodic, spiky or steps (85-minute segments of
    /// the Azure Functions trace; see docs/benchmark.md).
    #[arg(long)]
    pub shape: Option<String>,
    /// scale's workflow sizes (comma-separated function counts; default: the grid's).
    #[arg(long, value_delimiter = ',')]
    pub functions: Vec<usize>,
}

#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// List the built-in workflows.
    List,
    /// Show a workflow (built-in name or topology file) as JSON: functions, bounds, edges,
    /// adjacency.
    Show {
        /// Built-in name or path to a YAML/JSON topology file.
        workflow: String,
    },
    /// Generate a synthetic workflow and print (or write) its topology file (JSON): chains,
    /// fan-out/fan-in, nested calls or a mix, of any size, with microservice-like profiles.
    Generate {
        /// chain, fan-out, nested or mixed.
        #[arg(long, value_parser = faasconf_core::synthetic::Shape::parse)]
        shape: faasconf_core::synthetic::Shape,
        /// Functions (2-200).
        #[arg(long)]
        functions: usize,
        /// Seed of the profiles (and of the mixed shape).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write the topology file here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Run the twin and print one JSON window per line.
    Run(RunArgs),
    /// Fit function profiles to history: a CSV in the FaaSConf format, or the windows a store
    /// holds (imported history, tuning sessions' windows; any mix of configurations and loads).
    Calibrate(CalibrateArgs),
    /// Import a history CSV into a store (without training), e.g. to calibrate from the store.
    Import(ImportArgs),
    /// Simulate every configuration of a JSON Lines file.
    Evaluate(EvaluateArgs),
    /// How well the twin (with its profiles) predicts a history file: Spearman and median APE.
    Fidelity(FidelityArgs),
}

/// Where the workflow and its profiles come from.
#[derive(Debug, Args)]
pub struct WorkflowArgs {
    /// Built-in workflow (sequential, parallel, branch, tcktapp) or a topology file.
    #[arg(long, env = "FAASCONF_WORKFLOW")]
    pub workflow: String,
    /// Profiles JSON (as written by `sim calibrate`) overriding the workflow's own.
    #[arg(long, env = "FAASCONF_PROFILES")]
    pub profiles: Option<PathBuf>,
}

/// The load driven into the workflow: exactly one of users, rps, trace.
#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "load")]
pub struct LoadArgs {
    /// Closed-loop concurrent users.
    #[arg(long)]
    pub users: Option<u32>,
    /// Open-loop Poisson arrivals per second.
    #[arg(long)]
    pub rps: Option<f64>,
    /// Per-minute trace CSV (Azure Functions 2019 layout) scaled into --min-users..--max-users.
    #[arg(long)]
    pub trace: Option<PathBuf>,
}

/// Shaping of a trace load.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Row of the trace file (0-based data row).
    #[arg(long, default_value_t = 0)]
    pub trace_row: usize,
    /// First minute used.
    #[arg(long, default_value_t = 0)]
    pub trace_start: usize,
    /// Minutes used.
    #[arg(long, default_value_t = 85)]
    pub trace_minutes: usize,
    /// Users at the trace's minimum.
    #[arg(long, default_value_t = 10)]
    pub min_users: u32,
    /// Users at the trace's maximum.
    #[arg(long, default_value_t = 40)]
    pub max_users: u32,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Configuration JSON: `{"<function>": {"cpu_millis", "memory_mib", "replicas", "concurrency"}}`.
    /// Default: every knob at the middle of its range.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Windows to simulate.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub windows: u32,
    /// Window length, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub window_seconds: f64,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the windows here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Platform structure choices for calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoutingChoice {
    /// Fit both and keep the better.
    Auto,
    /// Load-aware proxy.
    LeastInflight,
    /// kube-proxy (random).
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailureChoice {
    /// Fit both and keep the better.
    Auto,
    /// Orchestrator stops at the first failed stage.
    FailFast,
    /// Orchestrator runs every stage and fails at the end.
    RunToEnd,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// History CSV in the FaaSConf data format (one row per 30 s window).
    #[arg(long, required_unless_present = "store", conflicts_with = "store")]
    pub history: Option<PathBuf>,
    /// Or the experience store whose windows of the workflow are fitted (closed-loop windows
    /// that completed their rollout; others are counted and left out).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Workflow the history was measured on (its function order must match the CSV).
    #[arg(long)]
    pub workflow: String,
    /// Closed-loop users of the history, checked against every row when given (the CSV's qps
    /// column; a store's windows may mix loads).
    #[arg(long)]
    pub users: Option<u32>,
    /// Where to write the fitted profiles (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Cross-validation folds for the fit-quality report (0: none).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Objective evaluations per platform structure.
    #[arg(long, default_value_t = 600)]
    pub max_evaluations: usize,
    /// Windows simulated per history row while fitting.
    #[arg(long, default_value_t = 2)]
    pub windows: u32,
    /// Windows simulated per held-out row when measuring fit quality.
    #[arg(long, default_value_t = 6)]
    pub report_windows: u32,
    /// Routing to fit.
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
    /// Orchestrator failure mode to fit.
    #[arg(long, value_enum, default_value_t = FailureChoice::Auto)]
    pub failure_mode: FailureChoice,
    /// Seed of the simulations and of the fold assignment.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// History CSV in the FaaSConf data format.
    #[arg(long)]
    pub history: PathBuf,
    /// Workflow the history was measured on.
    #[arg(long)]
    pub workflow: String,
    /// The experience store (SQLite file, created if missing).
    #[arg(long)]
    pub store: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    /// Closed-loop concurrent users.
    #[arg(long)]
    pub users: u32,
    /// JSON Lines input: `{"id": .., "config": {"<function>": {knobs}}}` per line.
    #[arg(long)]
    pub input: PathBuf,
    /// JSON Lines output, one line per input line, same ids.
    #[arg(long)]
    pub output: PathBuf,
    /// Seed (the same for every configuration: common random numbers).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Windows measured per configuration (after one warm-up window).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub windows: u32,
}

#[derive(Debug, Args)]
pub struct FidelityArgs {
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    /// History CSV in the FaaSConf data format: the measurements to compare with.
    #[arg(long)]
    pub history: PathBuf,
    /// Windows simulated per row (after one warm-up window).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub windows: u32,
    /// Seed of the simulations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
