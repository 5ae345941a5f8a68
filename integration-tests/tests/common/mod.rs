//! Builds the binaries once per test run and starts them as processes.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args([
                "build",
                "-q",
                "-p",
                "faasconf",
                "-p",
                "faasconf-actuator",
                "-p",
                "faasconf-policy",
            ]);
            if profile == "release" {
                cmd.arg("--release");
            }
            cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
            let status = cmd.status().expect("running cargo build");
            assert!(status.success(), "cargo build of the binaries failed");
            dir
        })
        .clone()
}

/// A `Command` for one of the binaries.
pub fn command(name: &str) -> Command {
    Command::new(bin_dir().join(name))
}

/// A running server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The `/metrics` address, when the server announced one.
    pub metrics_addr: Option<String>,
}

impl Server {
    /// Starts `name` on 127.0.0.1 port 0 with `args` and waits for its `listening on` line.
    pub fn start(name: &str, args: &[&str]) -> Server {
        let mut child = command(name)
            .args(["--grpc-addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut metrics_addr = None;
        while !line.starts_with("listening on ") {
            line.clear();
            let read = reader.read_line(&mut line).expect("reading server stdout");
            assert!(
                read > 0 && Instant::now() < deadline,
                "{name} exited or never said where it listens"
            );
            if let Some(addr) = line.trim().strip_prefix("metrics on ") {
                metrics_addr = Some(addr.to_owned());
            }
        }
        let addr = line.trim().trim_start_matches("listening on ").to_owned();
        Server {
            child,
            addr,
            metrics_addr,
        }
    }

    /// GET `/metrics` over plain HTTP/1.0; the body.
    pub fn scrape(&self) -> String {
        use std::io::{Read, Write};
        let addr = self
            .metrics_addr
            .as_ref()
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
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
