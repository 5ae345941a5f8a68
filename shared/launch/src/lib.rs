//! Starting faasconf's services as child processes on loopback ports chosen at run time, and
//! stopping them: what the demo, the speed benchmark and the integration tests do alike.
//!
//! A service started with `--grpc-addr 127.0.0.1:0` binds a free port and announces it on its
//! standard output (`metrics on <addr>` first when it serves `/metrics`, then
//! `listening on <addr>`). [`ServiceProcess::start`] waits for that line (bounded), keeps
//! draining the output afterwards so the service never blocks on a full pipe, and stops the
//! service when dropped: SIGTERM first (graceful shutdown), SIGKILL if it has not exited
//! within [`STOP_GRACE`].

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The address that makes a service bind a free loopback port.
pub const ANY_LOOPBACK_PORT: &str = "127.0.0.1:0";
/// How long a service may take to announce its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a dropped service may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a service could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The binary is not where it was looked for.
    #[error(
        "{name} not found beside {beside}: build the services first (cargo build --release --bins)"
    )]
    NotFound {
        /// The binary's name.
        name: String,
        /// The directory it was looked for in.
        beside: String,
    },
    /// The process could not be spawned or waited for.
    #[error("{binary}: {source}")]
    Io {
        /// The binary.
        binary: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The service exited, or stayed silent, before it announced where it listens.
    #[error("{binary} {reason} before it announced where it listens")]
    NoAddress {
        /// The binary.
        binary: String,
        /// "exited" or "took longer than 60 s".
        reason: String,
    },
    /// The service did not exit after SIGTERM within the grace period.
    #[error("{binary} did not exit within {grace:?} of SIGTERM")]
    DidNotStop {
        /// The binary.
        binary: String,
        /// The grace period.
        grace: Duration,
    },
}

/// The binary `name` in the directory of the running executable (where cargo puts all of a
/// workspace's binaries).
pub fn beside_current_exe(name: &str) -> Result<PathBuf, LaunchError> {
    let exe = std::env::current_exe().map_err(|source| LaunchError::Io {
        binary: name.to_owned(),
        source,
    })?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let path = dir.join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(LaunchError::NotFound {
            name: name.to_owned(),
            beside: dir.display().to_string(),
        })
    }
}

/// Where the service's standard error goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// Discarded.
    Discard,
    /// To this process's standard error.
    Inherit,
}

/// A service process; stopped when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    binary: String,
    grpc_addr: String,
    metrics_addr: Option<String>,
}

impl ServiceProcess {
    /// Starts `binary` with `args` and waits until it announces its gRPC address.
    pub fn start<I, S>(binary: &Path, args: I, logs: Logs) -> Result<Self, LaunchError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(binary);
        command.args(args);
        Self::start_command(command, logs)
    }

    /// Starts `command` (a service binary with its arguments and, say, environment) and waits
    /// until it announces its gRPC address.
    pub fn start_command(mut command: Command, logs: Logs) -> Result<Self, LaunchError> {
        let name = Path::new(command.get_program()).display().to_string();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(match logs {
                Logs::Discard => Stdio::null(),
                Logs::Inherit => Stdio::inherit(),
            })
            .spawn()
            .map_err(|source| LaunchError::Io {
                binary: name.clone(),
                source,
            })?;
        let (lines, announced) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            // Reads every line for as long as the service runs: the first ones are the
            // announcements; the rest are drained so the service never blocks writing.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = lines.send(line);
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let mut metrics_addr = None;
        let failure = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match announced.recv_timeout(left) {
                Ok(line) => {
                    let line = line.trim();
                    if let Some(addr) = line.strip_prefix("metrics on ") {
                        metrics_addr = Some(addr.to_owned());
                    } else if let Some(addr) = line.strip_prefix("listening on ") {
                        return Ok(Self {
                            child,
                            binary: name,
                            grpc_addr: addr.to_owned(),
                            metrics_addr,
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break "exited",
                Err(mpsc::RecvTimeoutError::Timeout) => break "took longer than 60 s",
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        Err(LaunchError::NoAddress {
            binary: name,
            reason: failure.to_owned(),
        })
    }

    /// Starts a faasconf service with its gRPC and `/metrics` servers on free loopback ports,
    /// then `args`.
    pub fn start_on_loopback<I, S>(binary: &Path, args: I, logs: Logs) -> Result<Self, LaunchError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let addresses = [
            "--grpc-addr",
            ANY_LOOPBACK_PORT,
            "--metrics-addr",
            ANY_LOOPBACK_PORT,
        ];
        let args: Vec<std::ffi::OsString> = addresses
            .iter()
            .map(|a| a.into())
            .chain(args.into_iter().map(|a| a.as_ref().to_owned()))
            .collect();
        Self::start(binary, args, logs)
    }

    /// The gRPC address it listens on (`host:port`).
    pub fn grpc_addr(&self) -> &str {
        &self.grpc_addr
    }

    /// `http://<grpc address>`, for tonic clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The `/metrics` address, when the service announced one.
    pub fn metrics_addr(&self) -> Option<&str> {
        self.metrics_addr.as_deref()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set (VmHWM), MB; `None` where `/proc` does not tell.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        self.memory_mb("VmHWM:")
    }

    /// Resident set now (VmRSS), MB.
    pub fn rss_mb(&self) -> Option<f64> {
        self.memory_mb("VmRSS:")
    }

    fn memory_mb(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// The exit status, if the process has exited (it is not waited for).
    pub fn exited(&mut self) -> Result<Option<ExitStatus>, LaunchError> {
        self.child.try_wait().map_err(|source| LaunchError::Io {
            binary: self.binary.clone(),
            source,
        })
    }

    /// Sends SIGTERM and waits up to `grace` for the exit status.
    pub fn terminate(mut self, grace: Duration) -> Result<ExitStatus, LaunchError> {
        self.signal_and_wait(grace)
    }

    /// Kills the process at once (SIGKILL), as a crash or an OOM kill would, and reaps it.
    pub fn kill(mut self) -> Result<ExitStatus, LaunchError> {
        let io = |source| LaunchError::Io {
            binary: self.binary.clone(),
            source,
        };
        self.child.kill().map_err(io)?;
        self.child.wait().map_err(io)
    }

    fn signal_and_wait(&mut self, grace: Duration) -> Result<ExitStatus, LaunchError> {
        let io = |source| LaunchError::Io {
            binary: self.binary.clone(),
            source,
        };
        if let Some(status) = self.child.try_wait().map_err(io)? {
            return Ok(status);
        }
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map_err(io)?;
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait().map_err(io)? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(LaunchError::DidNotStop {
                    binary: self.binary.clone(),
                    grace,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if self.signal_and_wait(STOP_GRACE).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests;
