//! The twin's state and public API: build it for a workflow, configuration and workload, run
//! windows, apply configurations, change the workload. The event handlers are in `events.rs`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use faasconf_core::{FunctionConfig, FunctionProfile, PlatformProfile, Workflow, WorkflowConfig};

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::replica::{Replica, ReplicaState};
use crate::report::{
    FunctionTally, FunctionWindow, WindowReport, WorkflowTally, WorkflowWindow, percentile,
};
use crate::rng::Rng;
use crate::time::Time;
use crate::workload::Workload;

/// Options of a twin run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwinOptions {
    /// Window length, seconds (default 30).
    pub window_seconds: f64,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for TwinOptions {
    fn default() -> Self {
        Self {
            window_seconds: 30.0,
            seed: 0,
        }
    }
}

/// Something that happens at a point in simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A closed-loop user sends its next request.
    UserSend { user: u32 },
    /// The next Poisson arrival (of the workload with this epoch).
    PoissonArrival { epoch: u32 },
    /// A call reaches the function's route (after the gateway).
    CallArrive { act: u32, generation: u32 },
    /// A request's non-CPU phase ends.
    IoDone { act: u32, generation: u32 },
    /// A replica's next CPU completion (stale unless `epoch` matches).
    CpuDone { replica: u32, epoch: u32 },
    /// A call's response reaches its caller.
    Return { act: u32, generation: u32, ok: bool },
    /// A replica finishes starting (cold start, restart).
    ReplicaReady { replica: u32 },
    /// A trace minute begins (of the workload with this epoch).
    Minute { minute: u32, epoch: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Scheduled {
    pub time: Time,
    pub seq: u64,
    pub event: EventKey,
}

/// Events ordered only by (time, seq); the payload rides along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventKey(pub Event);

impl PartialOrd for EventKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EventKey {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

pub(crate) const NONE: u32 = u32::MAX;

/// One running piece of a request: a plan node being executed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Activation {
    pub generation: u32,
    pub live: bool,
    pub node: u32,
    pub parent: u32,
    pub parent_generation: u32,
    /// Sequence position, or children still pending in a join.
    pub cursor: u32,
    pub failed: bool,
    /// For calls: the replica holding the request, and when it was accepted.
    pub replica: u32,
    pub accepted_at: Time,
    /// For calls: CPU work drawn at acceptance, core-seconds.
    pub work: f64,
    /// For the root: when the request was sent and by which user.
    pub sent_at: Time,
    pub user: u32,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct User {
    pub active: bool,
    pub retiring: bool,
    pub busy: bool,
}

/// Per-function runtime state.
#[derive(Debug, Clone, Default)]
pub(crate) struct FunctionRuntime {
    pub replicas: Vec<u32>,
    pub round_robin: usize,
    /// Replicas of the previous template still to drain as new ones become ready.
    pub to_drain: Vec<u32>,
    pub tally: FunctionTally,
    /// The gateway's counters for this function since the twin started.
    pub gateway: crate::exposition::GatewayCounters,
}

/// The twin: a discrete-event simulation of one workflow on OpenFaaS-on-Kubernetes.
#[derive(Debug, Clone)]
pub struct Twin {
    pub(crate) workflow: Workflow,
    pub(crate) plan: Plan,
    pub(crate) profiles: Vec<FunctionProfile>,
    pub(crate) platform: PlatformProfile,
    pub(crate) config: WorkflowConfig,
    pub(crate) config_version: u64,
    pub(crate) template: u64,
    pub(crate) workload: Workload,
    pub(crate) options: TwinOptions,
    pub(crate) now: Time,
    pub(crate) events: BinaryHeap<Reverse<Scheduled>>,
    pub(crate) seq: u64,
    /// Think times and arrivals.
    pub(crate) rng_workload: Rng,
    /// Routing, transient failures, branch choices, interference.
    pub(crate) rng_platform: Rng,
    /// Per function: each request's CPU work and non-CPU time, in order of acceptance.
    pub(crate) rng_service: Vec<Rng>,
    pub(crate) replicas: Vec<Replica>,
    pub(crate) functions: Vec<FunctionRuntime>,
    pub(crate) acts: Vec<Activation>,
    pub(crate) free_acts: Vec<u32>,
    pub(crate) users: Vec<User>,
    pub(crate) tally: WorkflowTally,
    /// Requests in the system (the twin's ground truth for a cluster's Little's-law figure).
    pub(crate) in_flight: crate::report::InFlight,
    /// End-to-end requests by status code (cumulative, for the exposition).
    pub(crate) requests: crate::exposition::CodeHistograms,
    pub(crate) window_index: u64,
    pub(crate) changed_in_window: bool,
    /// Bumped when the workload changes, to stop the old workload's arrival chain.
    pub(crate) workload_epoch: u32,
}

impl Twin {
    /// A twin with `config` deployed and warm (every replica ready) at time 0.
    pub fn new(
        workflow: Workflow,
        config: WorkflowConfig,
        workload: Workload,
        options: TwinOptions,
    ) -> Result<Self> {
        workflow.validate_config(&config)?;
        workload.validate()?;
        if !(options.window_seconds.is_finite()
            && options.window_seconds >= 1.0
            && options.window_seconds <= 3600.0)
        {
            return Err(Error::core(faasconf_core::Error::field(
                "window_seconds",
                format!("{} is not in [1, 3600]", options.window_seconds),
            )));
        }
        let plan = Plan::compile(&workflow);
        let profiles = workflow.functions.iter().map(|f| f.profile).collect();
        let platform = workflow.platform;
        let n = workflow.len();
        let mut twin = Twin {
            workflow,
            plan,
            profiles,
            platform,
            config: config.clone(),
            config_version: 1,
            template: 0,
            workload: workload.clone(),
            options,
            now: Time::ZERO,
            events: BinaryHeap::new(),
            seq: 0,
            rng_workload: Rng::stream(options.seed, 0),
            rng_platform: Rng::stream(options.seed, 1),
            rng_service: (0..n as u64)
                .map(|f| Rng::stream(options.seed, 2 + f))
                .collect(),
            replicas: Vec::new(),
            functions: vec![FunctionRuntime::default(); n],
            acts: Vec::new(),
            free_acts: Vec::new(),
            users: Vec::new(),
            tally: WorkflowTally::default(),
            in_flight: crate::report::InFlight::default(),
            requests: crate::exposition::CodeHistograms::new(
                &crate::exposition::REQUEST_BUCKETS,
                &[200, 500],
            ),
            window_index: 0,
            changed_in_window: false,
            workload_epoch: 0,
        };
        for (f, c) in config.0.iter().enumerate() {
            for _ in 0..c.replicas {
                let id = twin.add_replica(f, c);
                twin.mark_started(id, true);
            }
        }
        twin.start_workload();
        twin.draw_interference();
        Ok(twin)
    }

    /// The workflow simulated.
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// The configuration in force.
    pub fn config(&self) -> &WorkflowConfig {
        &self.config
    }

    /// Version of the configuration in force (1 for the initial one).
    pub fn config_version(&self) -> u64 {
        self.config_version
    }

    /// The workload driving the twin.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// Current simulated time, seconds.
    pub fn now_seconds(&self) -> f64 {
        self.now.seconds()
    }

    /// Simulates one window and reports it.
    pub fn run_window(&mut self) -> WindowReport {
        let start = self.now;
        let end = start + self.options.window_seconds;
        while let Some(Reverse(next)) = self.events.peek().copied() {
            if next.time >= end {
                break; // windows are [start, end): what happens at `end` belongs to the next
            }
            self.events.pop();
            self.now = next.time;
            self.handle(next.event.0);
        }
        self.now = end;
        let report = self.close_window(start);
        self.draw_interference();
        report
    }

    /// Applies a new configuration (validated against the bounds) as Kubernetes would: a
    /// template change (CPU, memory, concurrency) rolls every replica of the function (new pods
    /// cold start; old ones drain as new ones become ready); a replica change scales.
    pub fn apply_config(&mut self, config: WorkflowConfig) -> Result<u64> {
        self.workflow.validate_config(&config)?;
        if config == self.config {
            return Ok(self.config_version);
        }
        self.template += 1;
        for f in 0..self.workflow.len() {
            let (old, new) = (self.config.0[f], config.0[f]);
            if old == new {
                continue;
            }
            let template_changed = (old.cpu_millis, old.memory_mib, old.concurrency)
                != (new.cpu_millis, new.memory_mib, new.concurrency);
            if template_changed {
                self.roll_function(f, &new);
            } else {
                self.scale_function(f, &new);
            }
        }
        self.config = config;
        self.config_version += 1;
        self.changed_in_window = true;
        Ok(self.config_version)
    }

    /// [`Self::apply_config`], the configuration then numbered `version` whether it changed or
    /// not: for a caller that keeps the version of record itself (the actuator counts every
    /// apply between two windows, and hands the twin only the last).
    pub fn apply_config_numbered(&mut self, config: WorkflowConfig, version: u64) -> Result<u64> {
        self.apply_config(config)?;
        self.config_version = version;
        Ok(version)
    }

    /// Replaces the workload from now on.
    pub fn set_workload(&mut self, workload: Workload) -> Result<()> {
        workload.validate()?;
        self.workload = workload;
        self.workload_epoch = self.workload_epoch.wrapping_add(1);
        for user in &mut self.users {
            user.retiring = true;
        }
        self.start_workload();
        Ok(())
    }

    pub(crate) fn schedule(&mut self, at: Time, event: Event) {
        self.seq += 1;
        self.events.push(Reverse(Scheduled {
            time: at,
            seq: self.seq,
            event: EventKey(event),
        }));
    }

    pub(crate) fn add_replica(&mut self, function: usize, config: &FunctionConfig) -> u32 {
        let id = self.replicas.len() as u32;
        let pod = format!(
            "{}-{:x}-{id}",
            self.workflow.functions[function].name, self.template
        );
        let replica = Replica::new(
            function,
            pod,
            config,
            &self.profiles[function],
            self.template,
            self.now,
        );
        self.replicas.push(replica);
        self.functions[function].replicas.push(id);
        id
    }

    /// Starts a new replica: ready at once when `warm`, else after its cold start.
    pub(crate) fn mark_started(&mut self, id: u32, warm: bool) {
        let replica = &mut self.replicas[id as usize];
        if !replica.fits_idle() {
            replica.state = ReplicaState::CrashLoop;
        } else if warm {
            replica.advance(self.now);
            replica.state = ReplicaState::Ready;
        } else {
            let delay = self.profiles[replica.function].cold_start_seconds;
            self.schedule(self.now + delay, Event::ReplicaReady { replica: id });
        }
    }

    /// Replicas of function `f` that are neither draining nor gone.
    fn active_replicas(&self, f: usize) -> impl Iterator<Item = u32> + '_ {
        self.functions[f].replicas.iter().copied().filter(|&r| {
            !matches!(
                self.replicas[r as usize].state,
                ReplicaState::Draining | ReplicaState::Gone
            )
        })
    }

    fn roll_function(&mut self, f: usize, new: &FunctionConfig) {
        let old: Vec<u32> = self.active_replicas(f).collect();
        // Pods that never served (starting, crash-looping) are replaced at once.
        let (serving, idle): (Vec<u32>, Vec<u32>) = old.into_iter().partition(|&r| {
            matches!(
                self.replicas[r as usize].state,
                ReplicaState::Ready | ReplicaState::Restarting
            )
        });
        for r in idle {
            self.drain(r);
        }
        self.functions[f].to_drain = serving;
        for _ in 0..new.replicas {
            let id = self.add_replica(f, new);
            self.mark_started(id, false);
        }
        // With every new pod crash-looping the rollout never progresses: the old pods keep serving.
    }

    fn scale_function(&mut self, f: usize, new: &FunctionConfig) {
        let live: Vec<u32> = self
            .active_replicas(f)
            .filter(|r| !self.functions[f].to_drain.contains(r))
            .collect();
        let want = new.replicas as usize;
        if live.len() < want {
            for _ in live.len()..want {
                let id = self.add_replica(f, new);
                self.mark_started(id, false);
            }
        } else {
            // Kubernetes removes not-ready pods first, then the least busy.
            let excess = live.len() - want;
            let mut victims = live;
            victims.sort_by_key(|&r| {
                let rep = &self.replicas[r as usize];
                (rep.state == ReplicaState::Ready, rep.inflight())
            });
            for r in victims.into_iter().take(excess) {
                self.drain(r);
            }
        }
    }

    pub(crate) fn drain(&mut self, r: u32) {
        let now = self.now;
        let replica = &mut self.replicas[r as usize];
        replica.advance(now);
        if replica.inflight() == 0 || !replica.is_running() {
            replica.state = ReplicaState::Gone;
        } else {
            replica.state = ReplicaState::Draining;
        }
    }

    fn draw_interference(&mut self) {
        let sigma = self.platform.interference_sigma;
        for f in 0..self.functions.len() {
            for i in 0..self.functions[f].replicas.len() {
                let r = self.functions[f].replicas[i];
                let speed = self.rng_platform.lognormal_factor(sigma);
                self.replicas[r as usize].set_speed(self.now, speed);
                self.reschedule_cpu(r);
            }
        }
    }

    fn close_window(&mut self, start: Time) -> WindowReport {
        let duration = self.now - start;
        let mut functions = Vec::with_capacity(self.functions.len());
        for f in 0..self.functions.len() {
            let mut usage = crate::replica::ReplicaUsage::default();
            let mut ready = 0;
            for &r in &self.functions[f].replicas {
                let replica = &mut self.replicas[r as usize];
                let u = replica.take_usage(self.now);
                usage.cpu_seconds += u.cpu_seconds;
                usage.throttled_seconds += u.throttled_seconds;
                usage.memory_fraction_seconds += u.memory_fraction_seconds;
                usage.running_seconds += u.running_seconds;
                ready += u32::from(replica.state == ReplicaState::Ready);
            }
            let replicas = &self.replicas;
            self.functions[f]
                .replicas
                .retain(|&r| replicas[r as usize].state != ReplicaState::Gone);
            let tally = std::mem::take(&mut self.functions[f].tally);
            let mut latencies = tally.latencies;
            let running = usage.running_seconds;
            functions.push(FunctionWindow {
                function: self.workflow.functions[f].name.clone(),
                cpu_usage_percent: if running > 0.0 {
                    100.0 * usage.cpu_seconds / running
                } else {
                    0.0
                },
                cpu_throttled_periods: (usage.throttled_seconds / 0.1).round(),
                // Each pod's working set against its own limit (old and new pods differ during a rollout).
                memory_percent_of_limit: if running > 0.0 {
                    100.0 * usage.memory_fraction_seconds / running
                } else {
                    0.0
                },
                network_rx_bytes_per_second: tally.accepted as f64
                    * self.profiles[f].network_rx_bytes
                    / duration,
                requests: tally.requests,
                rejections: tally.rejections,
                rejections_with_room: tally.rejections_with_room,
                oom_failures: tally.oom_failures,
                unavailable: tally.unavailable,
                completed: latencies.len() as u64,
                latency_p75_seconds: percentile(&mut latencies, 0.75),
                latency_p95_seconds: percentile(&mut latencies, 0.95),
                ready_replicas: ready,
            });
        }
        let now = self.now.seconds();
        self.in_flight.step(now, 0, &mut self.tally);
        let tally = std::mem::take(&mut self.tally);
        let mut e2e = tally.latencies;
        let total = e2e.len() as u64;
        let mean = if total > 0 {
            e2e.iter().sum::<f64>() / total as f64
        } else {
            0.0
        };
        let workflow = WorkflowWindow {
            mean_latency_seconds: mean,
            p95_latency_seconds: percentile(&mut e2e, 0.95),
            successful_requests: tally.successful,
            total_requests: total,
            success_ratio: if total > 0 {
                tally.successful as f64 / total as f64
            } else {
                0.0
            },
            throughput_rps: tally.successful as f64 / duration,
            cost: self.config.cost(),
            rollout_stalled: self.functions.iter().any(|f| !f.to_drain.is_empty()),
            arrivals: tally.arrivals,
            mean_in_flight: if duration > 0.0 {
                tally.in_flight_area / duration
            } else {
                0.0
            },
            missing_series: Vec::new(),
        };
        let report = WindowReport {
            index: self.window_index,
            start_seconds: start.seconds(),
            duration_seconds: duration,
            config_version: self.config_version,
            transient: self.changed_in_window,
            config: self.config.clone(),
            users: self
                .users
                .iter()
                .filter(|u| u.active && !u.retiring)
                .count() as u32,
            workflow,
            functions,
        };
        self.window_index += 1;
        self.changed_in_window = false;
        report
    }
}
