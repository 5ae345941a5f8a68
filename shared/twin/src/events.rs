//! The twin's event handlers: orchestrator stages, gateway routing, replicas (429, OOM, cold
//! start), CPU completions, and responses. The load side (users, arrivals) is in `arrivals`.

use faasconf_core::{FailureMode, Routing};

use crate::plan::Node;
use crate::replica::ReplicaState;
use crate::sim::{Activation, Event, NONE, Twin};
use crate::workload::Workload;

/// Back-off before a container killed for memory restarts (kubelet's first CrashLoopBackOff).
const OOM_RESTART_BACKOFF_SECONDS: f64 = 10.0;

/// Why a call was refused before any replica took it.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// Replicas are ready but the chosen one (or every one) is at its concurrency limit.
    TooManyRequests { with_room: bool },
    /// Pods are down for memory (crash-looping or restarting after an OOM kill).
    Memory,
    /// Nothing is ready yet (cold start, rollout).
    Unavailable,
}

/// The shortest gateway traversal, seconds.
const MIN_GATEWAY_LEG_SECONDS: f64 = 0.0005;

impl Twin {
    pub(crate) fn handle(&mut self, event: Event) {
        match event {
            Event::UserSend { user } => self.user_send(user),
            Event::PoissonArrival { epoch } => {
                if epoch == self.workload_epoch {
                    self.poisson_arrival();
                }
            }
            Event::CallArrive { act, generation } => {
                if self.is_live(act, generation) {
                    self.call_arrive(act);
                }
            }
            Event::IoDone { act, generation } => {
                // A request whose container was killed keeps its activation until the failure
                // reaches the caller, but it has no replica to run on any more.
                if self.is_live(act, generation) && self.holds_slot(act) {
                    self.begin_cpu(act);
                }
            }
            Event::CpuDone { replica, epoch } => self.cpu_done(replica, epoch),
            Event::Return {
                act,
                generation,
                ok,
            } => {
                if self.is_live(act, generation) {
                    self.complete(act, ok);
                }
            }
            Event::ReplicaReady { replica } => self.replica_ready(replica),
            Event::Minute { minute, epoch } => {
                if epoch == self.workload_epoch {
                    self.trace_minute(minute);
                }
            }
        }
    }

    /// One gateway traversal: half the round-trip overhead, never under half a millisecond
    /// (no network answers in zero time; a zero would let a failing closed loop spin forever
    /// at one instant).
    fn gateway_leg(&self) -> f64 {
        (self.platform.gateway_overhead_seconds / 2.0).max(MIN_GATEWAY_LEG_SECONDS)
    }

    /// Whether a call activation still holds a slot on a replica (not killed with it).
    fn holds_slot(&self, act: u32) -> bool {
        self.acts[act as usize].replica != NONE
    }

    fn is_live(&self, act: u32, generation: u32) -> bool {
        let a = &self.acts[act as usize];
        a.live && a.generation == generation
    }

    // ---- workload ----

    pub(crate) fn start_workload(&mut self) {
        match self.workload.clone() {
            Workload::ClosedLoop { users } => self.set_users(users),
            Workload::Poisson {
                requests_per_second,
            } => {
                let gap = self.rng_workload.exponential(1.0 / requests_per_second);
                self.schedule(
                    self.now + gap,
                    Event::PoissonArrival {
                        epoch: self.workload_epoch,
                    },
                );
            }
            Workload::Trace { .. } => self.trace_minute(0),
        }
    }

    // ---- plan execution ----

    pub(crate) fn spawn(&mut self, node: u32, parent: u32, parent_generation: u32) -> u32 {
        let fresh = Activation {
            generation: 0,
            live: true,
            node,
            parent,
            parent_generation,
            cursor: 0,
            failed: false,
            replica: NONE,
            accepted_at: self.now,
            work: 0.0,
            sent_at: self.now,
            user: NONE,
        };
        match self.free_acts.pop() {
            Some(id) => {
                let generation = self.acts[id as usize].generation;
                self.acts[id as usize] = Activation {
                    generation,
                    ..fresh
                };
                id
            }
            None => {
                self.acts.push(fresh);
                (self.acts.len() - 1) as u32
            }
        }
    }

    fn spawn_child(&mut self, node: u32, parent: u32) {
        let generation = self.acts[parent as usize].generation;
        let child = self.spawn(node, parent, generation);
        self.start(child);
    }

    pub(crate) fn start(&mut self, act: u32) {
        let node = self.acts[act as usize].node;
        match self.plan.node(node).clone() {
            Node::Call { .. } => {
                let generation = self.acts[act as usize].generation;
                let overhead = 2.0 * self.gateway_leg();
                if self.platform.call_failure_ratio > 0.0
                    && self.rng_platform.uniform() < self.platform.call_failure_ratio
                {
                    self.schedule(
                        self.now + overhead,
                        Event::Return {
                            act,
                            generation,
                            ok: false,
                        },
                    );
                } else {
                    self.schedule(
                        self.now + self.gateway_leg(),
                        Event::CallArrive { act, generation },
                    );
                }
            }
            Node::Sequence(children) => self.spawn_child(children[0], act),
            Node::Parallel(children) => {
                self.acts[act as usize].cursor = children.len() as u32;
                for child in children {
                    self.spawn_child(child, act);
                }
            }
            Node::Branch { cumulative, arms } => {
                let u = self.rng_platform.uniform();
                let arm = cumulative
                    .iter()
                    .position(|&c| u < c)
                    .unwrap_or(arms.len() - 1);
                self.spawn_child(arms[arm], act);
            }
        }
    }

    /// Ends an activation and tells its parent (if the parent still waits for it).
    fn complete(&mut self, act: u32, ok: bool) {
        let a = self.acts[act as usize];
        let slot = &mut self.acts[act as usize];
        slot.live = false;
        slot.generation = slot.generation.wrapping_add(1);
        self.free_acts.push(act);
        if a.parent == NONE {
            self.request_done(a.sent_at, a.user, ok);
            return;
        }
        let parent = self.acts[a.parent as usize];
        if !parent.live || parent.generation != a.parent_generation {
            return; // orphan: its caller was killed or already failed
        }
        self.child_done(a.parent, ok);
    }

    fn child_done(&mut self, parent: u32, ok: bool) {
        let node = self.acts[parent as usize].node;
        match self.plan.node(node) {
            Node::Sequence(children) => {
                if !ok && self.platform.failure_mode == FailureMode::FailFast {
                    self.complete(parent, false);
                    return;
                }
                let p = &mut self.acts[parent as usize];
                p.failed |= !ok;
                p.cursor += 1;
                let (next, failed) = (p.cursor as usize, p.failed);
                match children.get(next).copied() {
                    Some(child) => self.spawn_child(child, parent),
                    None => self.complete(parent, !failed),
                }
            }
            Node::Parallel(_) => {
                let p = &mut self.acts[parent as usize];
                p.cursor -= 1;
                p.failed |= !ok;
                if p.cursor == 0 {
                    let ok = !p.failed;
                    self.complete(parent, ok);
                }
            }
            Node::Branch { .. } => self.complete(parent, ok),
            // The caller's container may have been killed while it waited: its failure is
            // already on the way back; what its callees answer no longer matters.
            Node::Call { .. } => {
                if self.holds_slot(parent) {
                    self.finish_call(parent, ok);
                }
            }
        }
    }

    // ---- functions and replicas ----

    fn call_arrive(&mut self, act: u32) {
        let Node::Call { function, .. } = *self.plan.node(self.acts[act as usize].node) else {
            return;
        };
        self.functions[function].tally.requests += 1;
        let generation = self.acts[act as usize].generation;
        let Some(replica) = self.route(function) else {
            let refusal = self.classify_refusal(function);
            self.refuse(function, act, generation, refusal);
            return;
        };
        if self.replicas[replica as usize].would_oom_with_one_more() {
            self.oom_kill(replica);
            self.refuse(function, act, generation, Refusal::Memory);
            return;
        }
        self.replicas[replica as usize].accept(self.now, act, generation);
        self.replicas[replica as usize].totals.network_rx_bytes +=
            self.profiles[function].network_rx_bytes;
        self.functions[function].tally.accepted += 1;
        let a = &mut self.acts[act as usize];
        a.replica = replica;
        a.accepted_at = self.now;
        // Both draws at acceptance: the k-th accepted request of a function gets the same work
        // whatever else changes (common random numbers across configurations).
        let profile = &self.profiles[function];
        let service = &mut self.rng_service[function];
        let io = service.lognormal_mean_cv(profile.io_seconds, profile.io_cv);
        a.work = service.lognormal_mean_cv(profile.cpu_core_seconds, profile.cpu_cv);
        if io > 0.0 {
            self.schedule(self.now + io, Event::IoDone { act, generation });
        } else {
            self.begin_cpu(act);
        }
    }

    /// Why no replica took a call, from the function's replicas in one pass: a ready replica
    /// exists (so they are full: 429), or pods are down for memory, or nothing is ready yet.
    fn classify_refusal(&self, function: usize) -> Refusal {
        let (mut any_ready, mut with_room, mut memory_bound) = (false, false, false);
        for &r in &self.functions[function].replicas {
            let replica = &self.replicas[r as usize];
            match replica.state {
                ReplicaState::Ready => {
                    any_ready = true;
                    with_room |= replica.inflight() < replica.concurrency;
                }
                ReplicaState::CrashLoop | ReplicaState::Restarting => memory_bound = true,
                _ => {}
            }
        }
        if any_ready {
            Refusal::TooManyRequests { with_room }
        } else if memory_bound {
            Refusal::Memory
        } else {
            Refusal::Unavailable
        }
    }

    /// Counts a refused call (gateway code and window tally) and answers the caller.
    fn refuse(&mut self, function: usize, act: u32, generation: u32, refusal: Refusal) {
        let runtime = &mut self.functions[function];
        let code = match refusal {
            Refusal::TooManyRequests { with_room } => {
                runtime.tally.rejections += 1; // HTTP 429 from a saturated watchdog
                runtime.tally.rejections_with_room += u64::from(with_room);
                429
            }
            Refusal::Memory => {
                runtime.tally.oom_failures += 1;
                500
            }
            Refusal::Unavailable => {
                runtime.tally.unavailable += 1;
                503
            }
        };
        runtime.gateway.record(code, 0.0);
        let back = self.now + self.gateway_leg();
        self.schedule(
            back,
            Event::Return {
                act,
                generation,
                ok: false,
            },
        );
    }

    /// The platform's choice of replica (see [`Routing`]). `None`: nothing ready, or the
    /// choice is full (least-inflight: every ready replica is full).
    fn route(&mut self, function: usize) -> Option<u32> {
        let runtime = &self.functions[function];
        let n = runtime.replicas.len();
        let ready = |r: u32| self.replicas[r as usize].state == ReplicaState::Ready;
        let has_room =
            |r: u32| self.replicas[r as usize].inflight() < self.replicas[r as usize].concurrency;
        let chosen = match self.platform.routing {
            Routing::LeastInflight => {
                let mut best: Option<(u32, u32)> = None;
                for i in 0..n {
                    let r = runtime.replicas[(runtime.round_robin + i) % n];
                    let load = self.replicas[r as usize].inflight();
                    if ready(r) && has_room(r) && best.is_none_or(|(_, l)| load < l) {
                        best = Some((r, load));
                    }
                }
                best.map(|(r, _)| r)
            }
            Routing::Random => {
                let count = runtime.replicas.iter().filter(|&&r| ready(r)).count();
                if count == 0 {
                    None
                } else {
                    let pick = self.rng_platform.below(count);
                    let r = self.functions[function]
                        .replicas
                        .iter()
                        .copied()
                        .filter(|&r| ready(r))
                        .nth(pick);
                    r.filter(|&r| has_room(r))
                }
            }
        };
        self.functions[function].round_robin = self.functions[function].round_robin.wrapping_add(1);
        chosen
    }

    fn begin_cpu(&mut self, act: u32) {
        let a = self.acts[act as usize];
        self.replicas[a.replica as usize].start_cpu(self.now, act, a.generation, a.work);
        self.reschedule_cpu(a.replica);
    }

    pub(crate) fn reschedule_cpu(&mut self, replica: u32) {
        let r = &mut self.replicas[replica as usize];
        r.epoch = r.epoch.wrapping_add(1);
        let epoch = r.epoch;
        if let Some(at) = r.next_cpu_completion() {
            self.schedule(at.max(self.now), Event::CpuDone { replica, epoch });
        }
    }

    fn cpu_done(&mut self, replica: u32, epoch: u32) {
        if self.replicas[replica as usize].epoch != epoch {
            return;
        }
        let done = self.replicas[replica as usize].finish_cpu(self.now);
        self.reschedule_cpu(replica);
        for (act, generation) in done {
            if !self.is_live(act, generation) {
                continue;
            }
            match *self.plan.node(self.acts[act as usize].node) {
                Node::Call {
                    nested: Some(nested),
                    ..
                } => self.spawn_child(nested, act),
                _ => self.finish_call(act, true),
            }
        }
    }

    /// The function answers: its slot is freed, its log records the latency, the response
    /// travels back through the gateway.
    fn finish_call(&mut self, act: u32, ok: bool) {
        let a = self.acts[act as usize];
        let Node::Call { function, .. } = *self.plan.node(a.node) else {
            return;
        };
        let replica = &mut self.replicas[a.replica as usize];
        replica.release(self.now, act);
        if replica.state == ReplicaState::Draining && replica.inflight() == 0 {
            replica.state = ReplicaState::Gone;
        }
        let latency = self.now - a.accepted_at;
        self.functions[function].tally.latencies.push(latency);
        self.functions[function]
            .gateway
            .record(if ok { 200 } else { 500 }, latency);
        let back = self.now + self.gateway_leg();
        self.schedule(
            back,
            Event::Return {
                act,
                generation: a.generation,
                ok,
            },
        );
    }

    /// The kernel kills the container for memory: everything it holds fails; kubelet restarts
    /// it after a back-off and its cold start.
    fn oom_kill(&mut self, replica: u32) {
        let holders = self.replicas[replica as usize].kill(self.now);
        let function = self.replicas[replica as usize].function;
        self.replicas[replica as usize].state = ReplicaState::Restarting;
        let delay = OOM_RESTART_BACKOFF_SECONDS + self.profiles[function].cold_start_seconds;
        self.schedule(self.now + delay, Event::ReplicaReady { replica });
        self.functions[function].tally.oom_failures += holders.len() as u64;
        for _ in &holders {
            self.functions[function].gateway.record(500, 0.0);
        }
        let back = self.now + self.gateway_leg();
        for (act, generation) in holders {
            if self.is_live(act, generation) {
                // Its nested calls, if any, become orphans: the generation bump below drops them.
                self.schedule(
                    back,
                    Event::Return {
                        act,
                        generation,
                        ok: false,
                    },
                );
                let a = &mut self.acts[act as usize];
                a.replica = NONE;
            }
        }
    }

    fn replica_ready(&mut self, replica: u32) {
        let r = &mut self.replicas[replica as usize];
        if !matches!(r.state, ReplicaState::Starting | ReplicaState::Restarting) {
            return;
        }
        r.advance(self.now);
        r.state = ReplicaState::Ready;
        let function = r.function;
        let template = r.template;
        // A rollout drains one old pod per new pod ready; the last new pod drains the rest.
        let runtime = &mut self.functions[function];
        if !runtime.to_drain.is_empty() {
            let starting_new = runtime
                .replicas
                .iter()
                .filter(|&&id| {
                    self.replicas[id as usize].template == template
                        && self.replicas[id as usize].state == ReplicaState::Starting
                })
                .count();
            let count = if starting_new == 0 {
                runtime.to_drain.len()
            } else {
                1
            };
            let victims: Vec<u32> = runtime.to_drain.drain(..count).collect();
            for v in victims {
                self.drain(v);
            }
        }
    }
}
