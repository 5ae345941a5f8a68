//! Builds the binaries once per test run and starts them as processes.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use faasconf_launch::{ANY_LOOPBACK_PORT, Logs, ServiceProcess};

/// Writes a shell script (a stand-in for a tool a test's subject calls) and makes it executable.
pub fn write_script(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The repository's root (the workspace), where the tests find scripts, manifests and protos.
pub fn repository() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Directory of the binaries built for this test run (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> -> target/<profile>
            let dir = exe
                .parent()
                .and_then(|p| p.parent())
                .expect("target directory")
                .to_path_buf();
            let profile = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("debug")
                .to_owned();
            // The whole workspace with its tests, as `cargo test --workspace` resolves it: the
            // binaries then share the features (tokio's `test-util`, serde_json's `raw_value`,
            // ...) of what that command already built, so only they are compiled here. Three
            // packages alone resolve other features and rebuild tokio and all above it.
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "-q", "--workspace", "--bins", "--tests"]);
            if profile == "release" {
                cmd.arg("--release");
            }
            cmd.current_dir(repository());
            // What cargo set for this test process is not the build's environment: build
            // scripts that watch such a variable (ring's watches CARGO_MANIFEST_DIR) would see it
            // change and rebuild ring and everything above it, minutes on 2 cores.
            for (name, _) in std::env::vars_os() {
                if name.to_str().is_some_and(is_set_by_cargo_for_tests) {
                    cmd.env_remove(&name);
                }
            }
            let status = cmd.status().expect("running cargo build");
            assert!(status.success(), "cargo build of the binaries failed");
            dir
        })
        .clone()
}

/// Whether cargo sets the environment variable `name` for the test binaries it runs (as against
/// variables that configure cargo itself, such as `CARGO_HOME` or `CARGO_TARGET_DIR`).
fn is_set_by_cargo_for_tests(name: &str) -> bool {
    matches!(
        name,
        "CARGO_MANIFEST_DIR"
            | "CARGO_MANIFEST_PATH"
            | "CARGO_CRATE_NAME"
            | "CARGO_PRIMARY_PACKAGE"
            | "CARGO_TARGET_TMPDIR"
            | "OUT_DIR"
    ) || name.starts_with("CARGO_PKG_")
}

/// A `Command` for one of the binaries.
pub fn command(name: &str) -> Command {
    Command::new(bin_dir().join(name))
}

/// A small, quick training run for tests that need a model, not a good one.
pub const SMALL_TRAINING: [&str; 10] = [
    "--samples",
    "200",
    "--updates",
    "50",
    "--online-steps",
    "20",
    "--loads",
    "20",
    "--seed",
    "1",
];

/// An actuator on the twin for `parallel` at 20 users, paced by its subscribers, with
/// `/metrics` on a free port.
pub const VIRTUAL_PARALLEL_ACTUATOR: [&str; 8] = [
    "--workflow",
    "parallel",
    "--clock",
    "virtual",
    "--users",
    "20",
    "--metrics-addr",
    "127.0.0.1:0",
];

/// The virtual-clock actuator of [`VIRTUAL_PARALLEL_ACTUATOR`] playing `cluster` (a `parallel`
/// that differs from the built-in one) from a topology file written into `dir`, with `extra`
/// arguments.
pub fn actuator_playing(
    cluster: &faasconf_core::Workflow,
    dir: &std::path::Path,
    extra: &[&str],
) -> Server {
    let topology = dir.join("cluster-topology.json");
    std::fs::write(
        &topology,
        faasconf_core::catalog::topology_file(cluster).to_string(),
    )
    .unwrap();
    let args: Vec<&str> = VIRTUAL_PARALLEL_ACTUATOR
        .into_iter()
        .map(|a| {
            if a == "parallel" {
                topology.to_str().unwrap()
            } else {
                a
            }
        })
        .chain(extra.iter().copied())
        .collect();
    Server::start("faasconf-actuator", &args)
}

/// The policy serving `parallel` from `store` (metrics on a free port), tuning against
/// `actuator` when one is given.
pub fn parallel_policy(store: &std::path::Path, actuator: Option<&str>) -> Server {
    policy_serving(store, "parallel", actuator)
}

/// The policy serving `workflow` (a built-in name or a topology file) from `store`, tuning
/// against `actuator` when given.
pub fn policy_serving(store: &std::path::Path, workflow: &str, actuator: Option<&str>) -> Server {
    let mut args = vec![
        "--metrics-addr",
        "127.0.0.1:0",
        "--store",
        store.to_str().unwrap(),
        "--workflow",
        workflow,
    ];
    args.extend(actuator.iter().flat_map(|a| ["--actuator", a]));
    Server::start("faasconf-policy", &args)
}

/// `faasconf train --workflow parallel --store <store> <args>`: trains a model into the store
/// (asserting it worked) and returns the training report.
pub fn train_parallel(store: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = command("faasconf")
        .args(["train", "--workflow", "parallel", "--store"])
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `message` as a request carrying `token` as its bearer token.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Polls a tuning session until it is neither pending nor running.
pub async fn wait_for_session_end(
    client: &mut faasconf_proto::v1::policy_client::PolicyClient<tonic::transport::Channel>,
    session_id: &str,
) -> faasconf_proto::v1::TuningStatus {
    wait_for_session_end_with_token(client, session_id, None).await
}

/// [`wait_for_session_end`], each poll carrying `token` (a bearer token) when one is given.
pub async fn wait_for_session_end_with_token(
    client: &mut faasconf_proto::v1::policy_client::PolicyClient<tonic::transport::Channel>,
    session_id: &str,
    token: Option<&str>,
) -> faasconf_proto::v1::TuningStatus {
    loop {
        let message = faasconf_proto::v1::GetTuningStatusRequest {
            session_id: session_id.into(),
        };
        let request = match token {
            Some(token) => with_token(message, token),
            None => tonic::Request::new(message),
        };
        let s = client
            .get_tuning_status(request)
            .await
            .unwrap()
            .into_inner();
        if !faasconf_proto::states::tuning_is_active(s.state()) {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The `FAASCONF_*` variables a binary reads, from its `--help`.
pub fn environment_of(binary: &str) -> std::collections::BTreeSet<String> {
    let out = command(binary).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    help.split("[env: ")
        .skip(1)
        .map(|rest| rest.split('=').next().unwrap().to_owned())
        .collect()
}

/// `promtool check metrics` (Debian package prometheus, installed by .ci/run) must accept `text`.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running server process; stopped when dropped.
pub struct Server {
    process: ServiceProcess,
}

impl Server {
    /// Starts `name` on 127.0.0.1 port 0 with `args` and waits for its `listening on` line.
    pub fn start(name: &str, args: &[&str]) -> Server {
        let args = ["--grpc-addr", ANY_LOOPBACK_PORT].iter().chain(args);
        let process = ServiceProcess::start(&bin_dir().join(name), args, Logs::Discard)
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Server { process }
    }

    /// Starts `name` like [`Server::start`] with `env` added to its environment.
    pub fn start_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(bin_dir().join(name));
        command.args(["--grpc-addr", ANY_LOOPBACK_PORT]).args(args);
        command.envs(env.iter().copied());
        let process = ServiceProcess::start_command(command, Logs::Discard)
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Server { process }
    }

    /// The gRPC address (`host:port`).
    pub fn addr(&self) -> &str {
        self.process.grpc_addr()
    }

    /// The `/metrics` address, when the server announced one.
    pub fn metrics_addr(&self) -> Option<&str> {
        self.process.metrics_addr()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// GET `/metrics` over plain HTTP/1.0; the body.
    pub fn scrape(&self) -> String {
        use std::io::{Read, Write};
        let addr = self
            .metrics_addr()
            .expect("the server announced a metrics address");
        let mut stream = std::net::TcpStream::connect(addr).expect("connecting to /metrics");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("reading /metrics");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        body.to_owned()
    }

    /// `http://<addr>` for tonic clients.
    pub fn endpoint(&self) -> String {
        self.process.endpoint()
    }

    /// Resident memory now, MB.
    pub fn rss_mb(&self) -> f64 {
        self.process
            .rss_mb()
            .expect("the server's /proc/<pid>/status")
    }

    /// CPU time the server has used so far (user + system), seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which may hold spaces) start at state (field 3);
        // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.process.exited().unwrap().is_none()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.process
            .terminate(Duration::from_secs(20))
            .expect("server stops after SIGTERM")
    }

    /// Sends SIGTERM and waits at most `grace` for the exit status (`None`: still running then;
    /// it is killed).
    pub fn terminate_within(self, grace: Duration) -> Option<std::process::ExitStatus> {
        self.process.terminate(grace).ok()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(self) {
        self.process.kill().expect("killing the server");
    }
}

/// Runs `binary` with `args`, expecting it to refuse to start: its standard error, once it
/// exited unsuccessfully (within 60 s; a binary that starts serving instead fails the test).
pub fn refuses_to_start(binary: &str, args: &[&str]) -> String {
    let mut child = command(binary)
        .args([
            "--grpc-addr",
            ANY_LOOPBACK_PORT,
            "--metrics-addr",
            ANY_LOOPBACK_PORT,
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{binary} {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{binary} {args:?} exited 0: {stderr}");
    stderr
}

/// The field violations of an INVALID_ARGUMENT status (`google.rpc.BadRequest`).
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Calls `path` (any gRPC method path, served or not) with an empty message over `channel`,
/// with `token` as bearer token when given; the status it answered.
pub async fn call_path(
    channel: tonic::transport::Channel,
    path: &str,
    token: Option<&str>,
) -> tonic::Status {
    use faasconf_proto::v1::{ListWorkflowsRequest, ListWorkflowsResponse};
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = match token {
        Some(t) => with_token(ListWorkflowsRequest {}, t),
        None => tonic::Request::new(ListWorkflowsRequest {}),
    };
    let codec = tonic_prost::ProstCodec::<ListWorkflowsRequest, ListWorkflowsResponse>::default();
    match grpc
        .unary(
            request,
            http::uri::PathAndQuery::try_from(path).unwrap(),
            codec,
        )
        .await
    {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

/// The first telemetry window of `workflow` from the actuator at `endpoint` (a subscriber that
/// leaves at once).
pub async fn first_window(endpoint: &str, workflow: &str) -> faasconf_proto::v1::TelemetryWindow {
    use faasconf_proto::v1;
    let mut actuator = v1::actuator_client::ActuatorClient::connect(endpoint.to_owned())
        .await
        .unwrap();
    let mut stream = actuator
        .stream_telemetry(v1::StreamTelemetryRequest {
            workflow: workflow.into(),
            lockstep: false,
        })
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap()
}

/// Asserts `status` is `code` with a message under 1 KiB (whatever the request echoed).
pub fn assert_small(status: &tonic::Status, code: tonic::Code) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().len() < 1024,
        "a {} byte message",
        status.message().len()
    );
}
