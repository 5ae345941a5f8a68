//! A real Prometheus (Debian package `prometheus`, started here on a free loopback port) scrapes
//! the twin backend's exporter; the `prometheus` telemetry source reads the windows back; they
//! must match the twin's own windows within the tolerances below.
//!
//! Why the tolerances: counts come from `increase()` over the window, which Prometheus
//! extrapolates from the first and last sample in the range to the range's edges; with a
//! 100 ms scrape over an 8 s window that inflates counts and rates by up to 100/7900 ≈ 1.3% (plus
//! one sample of phase jitter), so counts and rates get 6% + 1. Ratios (success ratio, mean
//! latency) divide two equally inflated counts and must match within 1%. Quantiles come from
//! histogram buckets, so Prometheus' estimate and the twin's exact nearest-rank value must lie in
//! the same or an adjacent bucket. Memory is a gauge: Prometheus averages what the exporter
//! showed during the wall-clock window (the state at the previous window's end), the twin
//! averages over simulated time, so it gets 15 points.
//!
//! The offered load, as a cluster measures it (issue: measured load): the arrival rate from the
//! histogram's count and the requests in flight by Little's law must be within 10% of the twin's
//! ground truth (arrivals it started, its time-averaged count of requests in the system), and the
//! measured window, open loop in requests per second, must get a `RecommendConfig` answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::Server;
use faasconf_core::catalog::builtin;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::telemetry::{FunctionWindow, WorkflowWindow};
use faasconf_prometheus::{Labels, PrometheusSettings, PrometheusSource, Queries};
use faasconf_proto::v1::actuator_client::ActuatorClient;
use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{self, StreamTelemetryRequest, TelemetryWindow};

const WINDOW_SECONDS: u64 = 8;

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(target: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 100ms\n  scrape_timeout: 90ms\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: faasconf-twin\n    honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (apt-get install prometheus)");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(port) {
        assert!(Instant::now() < deadline, "prometheus did not get ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    Prometheus {
        child,
        url,
        _dir: dir,
    }
}

fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = write!(s, "GET /-/ready HTTP/1.0\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

fn close(what: &str, prometheus: f64, twin: f64, relative: f64, absolute: f64) -> Option<String> {
    let ok = (prometheus - twin).abs() <= relative * twin.abs() + absolute;
    (!ok).then(|| format!("{what}: prometheus {prometheus:.4} vs twin {twin:.4}"))
}

/// Index of the bucket holding `x` (bounds are upper bounds; past the last: len).
fn bucket(bounds: &[f64], x: f64) -> usize {
    bounds.iter().position(|b| x <= *b).unwrap_or(bounds.len())
}

fn same_bucket(what: &str, bounds: &[f64], prometheus: f64, twin: f64) -> Option<String> {
    (bucket(bounds, prometheus).abs_diff(bucket(bounds, twin)) > 1).then(|| {
        format!(
            "{what}: prometheus {prometheus:.3} s vs twin {twin:.3} s are more than a bucket apart"
        )
    })
}

fn compare_workflow(p: &WorkflowWindow, t: &faasconf_proto::v1::WorkflowMetrics) -> Vec<String> {
    [
        close(
            "total_requests",
            p.total_requests as f64,
            t.total_requests as f64,
            0.06,
            1.0,
        ),
        close(
            "successful_requests",
            p.successful_requests as f64,
            t.successful_requests as f64,
            0.06,
            1.0,
        ),
        close("success_ratio", p.success_ratio, t.success_ratio, 0.0, 0.01),
        close(
            "mean_latency_seconds",
            p.mean_latency_seconds,
            t.mean_latency_seconds,
            0.01,
            1e-6,
        ),
        same_bucket(
            "p95_latency_seconds",
            &faasconf_twin_buckets::REQUEST,
            p.p95_latency_seconds,
            t.p95_latency_seconds,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The measured window as the actuator's Kubernetes telemetry builds it (no users: open loop).
fn measured_report(
    twin: &TelemetryWindow,
    measured: faasconf_prometheus::Measured,
) -> WindowReport {
    let workflow = builtin("parallel").unwrap();
    let config =
        faasconf_proto::convert::config_from_proto(&workflow, twin.config.as_ref(), "config")
            .expect("the twin's configuration");
    WindowReport {
        index: twin.index,
        start_seconds: twin.start_seconds,
        duration_seconds: WINDOW_SECONDS as f64,
        config_version: twin.config_version,
        transient: false,
        config,
        users: 0,
        workflow: measured.workflow,
        functions: measured.functions,
    }
}

/// Arrival rate and requests in flight, measured against the twin's ground truth (10%).
fn compare_load(p: &WindowReport, t: &v1::WorkflowMetrics, seconds: f64) -> Vec<String> {
    [
        close(
            "arrival_rate",
            p.arrival_rate(),
            t.arrivals as f64 / seconds,
            0.10,
            0.0,
        ),
        close("in_flight", p.in_flight(), t.mean_in_flight, 0.10, 0.0),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn compare_function(
    p: &FunctionWindow,
    t: &faasconf_proto::v1::FunctionMetrics,
    twin_answered: f64,
) -> Vec<String> {
    let f = &p.function;
    [
        close(
            &format!("{f}.answered"),
            p.requests as f64,
            twin_answered,
            0.06,
            1.0,
        ),
        close(
            &format!("{f}.rejections"),
            p.rejections as f64,
            t.rejections as f64,
            0.06,
            1.0,
        ),
        close(
            &format!("{f}.cpu_usage_percent"),
            p.cpu_usage_percent,
            t.cpu_usage_percent,
            0.06,
            1.0,
        ),
        close(
            &format!("{f}.network_rx_bytes_per_second"),
            p.network_rx_bytes_per_second,
            t.network_rx_bytes_per_second,
            0.06,
            1.0,
        ),
        close(
            &format!("{f}.memory_percent_of_limit"),
            p.memory_percent_of_limit,
            t.memory_percent_of_limit,
            0.0,
            15.0,
        ),
        close(
            &format!("{f}.ready_replicas"),
            f64::from(p.ready_replicas),
            f64::from(t.ready_replicas),
            0.0,
            0.0,
        ),
        same_bucket(
            &format!("{f}.latency_p95_seconds"),
            &faasconf_twin_buckets::GATEWAY,
            p.latency_p95_seconds,
            t.latency_p95_seconds,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The exporter's bucket bounds (kept here as the test's own copy of what a scrape shows).
mod faasconf_twin_buckets {
    pub const GATEWAY: [f64; 11] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    pub const REQUEST: [f64; 18] = [
        0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
        60.0,
    ];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_back_the_twins_windows() {
    let started = Instant::now();
    let window = WINDOW_SECONDS.to_string();
    let actuator = Server::start(
        "faasconf-actuator",
        &[
            "--workflow",
            "parallel",
            "--clock",
            "real",
            "--window-seconds",
            &window,
            "--users",
            "10",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    // A small model for the recommendation at the end, trained while the windows pass.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    let trainer = {
        let store = store.clone();
        std::thread::spawn(move || common::train_parallel(&store, &common::SMALL_TRAINING))
    };
    let prometheus = start_prometheus(actuator.metrics_addr().unwrap());
    let source = PrometheusSource::new(PrometheusSettings {
        url: prometheus.url.clone(),
        namespace: "openfaas-fn".into(),
        labels: Labels::default(),
        queries: Queries::default(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    eprintln!("prometheus ready at {:?}", started.elapsed());
    let workflow = builtin("parallel").unwrap();
    let mut client = ActuatorClient::connect(actuator.endpoint()).await.unwrap();
    let mut stream = client
        .stream_telemetry(StreamTelemetryRequest {
            workflow: "parallel".into(),
            lockstep: false,
        })
        .await
        .unwrap()
        .into_inner();
    let mut problems = Vec::new();
    let mut compared = 0;
    while compared < 3 {
        let twin: TelemetryWindow = stream.message().await.unwrap().expect("a window");
        // The exporter shows this window's counters from now on. The first window has no
        // samples before it to take an increase from.
        let published = SystemTime::now();
        eprintln!("window {} at {:?}", twin.index, started.elapsed());
        if twin.index < 1 {
            continue;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let end = published + Duration::from_millis(1000);
        let measured = source
            .window(&workflow, end, Duration::from_secs(WINDOW_SECONDS))
            .await
            .unwrap();
        let tw = twin.workflow_metrics.as_ref().unwrap();
        eprintln!(
            "window {}: e2e prometheus {:?}\n          twin {:?}",
            twin.index, measured.workflow, tw
        );
        let mut found = compare_workflow(&measured.workflow, tw);
        for (p, t) in measured.functions.iter().zip(&twin.functions) {
            eprintln!("  {}: prometheus {p:?}\n      twin {t:?}", p.function);
            // Calls the gateway answered in the window: completed, rejected, failed for memory,
            // unavailable (the gateway records each when it answers, as the twin counts them).
            let answered = (t.completed + t.rejections + t.oom_failures + t.unavailable) as f64;
            found.extend(compare_function(p, t, answered));
        }
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("window {}: {p}", twin.index)),
        );
        compared += 1;
    }
    assert!(
        problems.is_empty(),
        "prometheus and the twin disagree:\n{}",
        problems.join("\n")
    );
    let measured = measure_the_load(&mut client, &mut stream, &source, &workflow).await;
    trainer.join().expect("training finished");
    let policy = common::parallel_policy(&store, None);
    recommend_at_the_measured_rate(&policy, &workflow, &measured).await;
    drop(prometheus);
    assert!(policy.terminate().success());
    assert!(actuator.terminate().success());
    eprintln!("done at {:?}", started.elapsed());
}

/// Windows of the load phase, measured together as one span.
const LOAD_WINDOWS: u64 = 6;

/// The offered load as a cluster measures it, against the twin's ground truth. With the
/// starting configuration a request takes longer than a window (a handful finish per window),
/// so the load is measured under a generous configuration (requests take a few seconds) and
/// over a span of several windows: the arrival rate from the histogram's count and the requests
/// in flight by Little's law must be within 10% of the arrivals the twin started and its
/// time-averaged count of requests in the system.
async fn measure_the_load(
    client: &mut ActuatorClient<tonic::transport::Channel>,
    stream: &mut tonic::Streaming<TelemetryWindow>,
    source: &PrometheusSource,
    workflow: &faasconf_core::Workflow,
) -> WindowReport {
    let got = client
        .get_workflow(v1::GetWorkflowRequest {
            workflow: "parallel".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut config = got.current_config.unwrap();
    for (f, spec) in config.functions.iter_mut().zip(&workflow.functions) {
        f.cpu_millis = spec.bounds.cpu_millis.max;
        f.replicas = spec.bounds.replicas.max.min(5);
    }
    let version = client
        .apply_config(v1::ApplyConfigRequest {
            workflow: "parallel".into(),
            config: Some(config),
            dry_run: false,
            expected_version: got.config_version,
        })
        .await
        .unwrap()
        .into_inner()
        .config_version;
    let mut span: Vec<TelemetryWindow> = Vec::new();
    while span.len() < LOAD_WINDOWS as usize {
        let twin = stream.message().await.unwrap().expect("a window");
        // Steady windows of the new configuration, after one to settle.
        let settled = twin.config_version == version && !twin.transient;
        if settled || !span.is_empty() {
            span.push(twin);
        }
    }
    let published = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let seconds = LOAD_WINDOWS * WINDOW_SECONDS;
    let measured = source
        .window(
            workflow,
            published + Duration::from_millis(1000),
            Duration::from_secs(seconds),
        )
        .await
        .unwrap();
    let last = span.last().expect("a window");
    let mut report = measured_report(last, measured);
    report.duration_seconds = seconds as f64;
    let metrics = |w: &TelemetryWindow| w.workflow_metrics.clone().unwrap_or_default();
    let arrivals: u64 = span.iter().map(|w| metrics(w).arrivals).sum();
    let in_flight =
        span.iter().map(|w| metrics(w).mean_in_flight).sum::<f64>() / LOAD_WINDOWS as f64;
    let truth = v1::WorkflowMetrics {
        arrivals,
        mean_in_flight: in_flight,
        ..Default::default()
    };
    eprintln!(
        "load over {seconds} s: prometheus {:.3} rps, {:.3} in flight (mean latency {:.3} s); twin {:.3} rps, {in_flight:.3} in flight",
        report.arrival_rate(),
        report.in_flight(),
        report.workflow.mean_latency_seconds,
        arrivals as f64 / seconds as f64,
    );
    let problems = compare_load(&report, &truth, seconds as f64);
    assert!(
        problems.is_empty(),
        "the measured load is not the twin's:\n{}",
        problems.join("\n")
    );
    report
}

/// The policy answers for the measured open-loop load: with the measured window itself (the
/// fast path; its load travels as requests per second) and on the twin at the measured rate.
async fn recommend_at_the_measured_rate(
    policy: &Server,
    workflow: &faasconf_core::Workflow,
    last: &WindowReport,
) {
    let current = faasconf_proto::window::window_to_proto(workflow, last);
    let rate = last.arrival_rate();
    assert_eq!(
        current.load.as_ref().and_then(|l| l.kind),
        Some(v1::load::Kind::RequestsPerSecond(rate)),
        "a cluster's window carries its measured rate"
    );
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let load = Some(v1::Load {
        kind: Some(v1::load::Kind::RequestsPerSecond(rate)),
    });
    let fast = client
        .recommend_config(v1::RecommendConfigRequest {
            workflow: "parallel".into(),
            load,
            current: Some(current),
            ..Default::default()
        })
        .await
        .expect("a recommendation for the measured window")
        .into_inner();
    assert_eq!(fast.config.map(|c| c.functions.len()), Some(6));
    let twin = client
        .recommend_config(v1::RecommendConfigRequest {
            workflow: "parallel".into(),
            load,
            ..Default::default()
        })
        .await
        .expect("a recommendation at the measured rate")
        .into_inner();
    assert!(twin.twin_validated, "{twin:?}");
    eprintln!(
        "recommended at {rate:.3} rps: predicted mean latency {:.3} s, cost {:.3}",
        twin.predicted_mean_latency_ms / 1000.0,
        twin.predicted_cost
    );
}
