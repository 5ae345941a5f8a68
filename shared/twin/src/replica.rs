//! One function replica: a container with a CPU quota shared by its requests in flight
//! (processor sharing), a memory limit, and a concurrency limit.
//!
//! CPU model: `k` requests in their CPU phase, each able to keep `p` cores busy, on a quota of
//! `L` cores. While `k*p <= L` every request progresses at `p`. Beyond, the replica is
//! throttled: the quota is shared (`L/k` each) and a fraction `waste` of the excess demand
//! (`k*p/L - 1`) is burnt without progress, so each request progresses at
//! `L/k / (1 + waste*(k*p/L - 1))`. The rate never falls when `L` grows or `k` shrinks.
//! A per-window interference factor scales progress (noisy neighbours).
//!
//! Progress is tracked with a virtual clock: all CPU-phase requests progress at the same rate,
//! so each finishes when the clock reaches its start value plus its work (a min-heap).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use faasconf_core::{FunctionConfig, FunctionProfile};

use crate::time::Time;

/// Lifecycle of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplicaState {
    /// Scheduled, not ready yet (cold start).
    Starting,
    /// Serving.
    Ready,
    /// Serving what it holds, taking nothing new; gone when empty.
    Draining,
    /// Killed for memory; restarts after a back-off.
    Restarting,
    /// Its memory limit is below the idle working set: it never becomes ready.
    CrashLoop,
    /// Removed.
    Gone,
}

/// Window accumulators of one replica.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplicaUsage {
    /// CPU consumed (including waste), core-seconds.
    pub cpu_seconds: f64,
    /// Time spent throttled, seconds.
    pub throttled_seconds: f64,
    /// Integral of the working set as a fraction of this replica's limit, over time, seconds.
    pub memory_fraction_seconds: f64,
    /// Time spent running (ready or draining), seconds.
    pub running_seconds: f64,
}

/// Counters that only grow over a replica's life (what cAdvisor exports).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplicaTotals {
    /// CPU consumed, core-seconds.
    pub cpu_seconds: f64,
    /// Time with runnable work, seconds (CFS periods elapse in it).
    pub busy_seconds: f64,
    /// Time throttled, seconds.
    pub throttled_seconds: f64,
    /// Bytes received.
    pub network_rx_bytes: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Replica {
    pub function: usize,
    /// Pod name: `<function>-<template hex>-<id>`.
    pub pod: String,
    pub state: ReplicaState,
    /// Template generation (configuration it was created with).
    pub template: u64,
    pub cpu_cores: f64,
    pub memory_limit_mib: f64,
    pub concurrency: u32,
    parallelism: f64,
    waste: f64,
    memory_base_mib: f64,
    memory_per_request_mib: f64,
    /// Accepted requests (activation id, generation) holding a slot.
    pub holders: Vec<(u32, u32)>,
    cpu_active: u32,
    vclock: f64,
    rate: f64,
    speed: f64,
    last: Time,
    heap: BinaryHeap<Reverse<(Time, u32, u32)>>,
    /// Bumped on every change of the next CPU completion, to drop stale events.
    pub epoch: u32,
    pub usage: ReplicaUsage,
    pub totals: ReplicaTotals,
}

impl Replica {
    pub fn new(
        function: usize,
        pod: String,
        config: &FunctionConfig,
        profile: &FunctionProfile,
        template: u64,
        now: Time,
    ) -> Self {
        Self {
            function,
            pod,
            state: ReplicaState::Starting,
            template,
            cpu_cores: f64::from(config.cpu_millis) / 1000.0,
            memory_limit_mib: f64::from(config.memory_mib),
            concurrency: config.concurrency,
            parallelism: profile.parallelism,
            waste: profile.throttle_waste,
            memory_base_mib: profile.memory_base_mib,
            memory_per_request_mib: profile.memory_per_request_mib,
            holders: Vec::new(),
            cpu_active: 0,
            vclock: 0.0,
            rate: 0.0,
            speed: 1.0,
            last: now,
            heap: BinaryHeap::new(),
            epoch: 0,
            usage: ReplicaUsage::default(),
            totals: ReplicaTotals::default(),
        }
    }

    pub fn inflight(&self) -> u32 {
        self.holders.len() as u32
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, ReplicaState::Ready | ReplicaState::Draining)
    }

    /// Whether the idle working set fits in the memory limit at all.
    pub fn fits_idle(&self) -> bool {
        self.memory_base_mib <= self.memory_limit_mib
    }

    /// Whether one more request would push the working set over the limit.
    pub fn would_oom_with_one_more(&self) -> bool {
        self.working_set(self.inflight() + 1) > self.memory_limit_mib
    }

    /// Working set now, MiB.
    pub fn working_set_now(&self) -> f64 {
        self.working_set(self.inflight())
    }

    fn working_set(&self, inflight: u32) -> f64 {
        self.memory_base_mib + self.memory_per_request_mib * f64::from(inflight)
    }

    /// Per-request progress rate for `k` requests in the CPU phase.
    pub fn progress_rate(cores: f64, parallelism: f64, waste: f64, k: u32) -> f64 {
        if k == 0 {
            return 0.0;
        }
        let k = f64::from(k);
        let demand = k * parallelism;
        if demand <= cores {
            parallelism
        } else {
            cores / k / (1.0 + waste * (demand / cores - 1.0))
        }
    }

    /// Brings accumulators and the virtual clock to `now`.
    pub fn advance(&mut self, now: Time) {
        let dt = now - self.last;
        if dt <= 0.0 {
            return;
        }
        if self.is_running() {
            self.usage.running_seconds += dt;
            self.usage.memory_fraction_seconds +=
                self.working_set(self.inflight()) / self.memory_limit_mib * dt;
        }
        if self.cpu_active > 0 {
            self.vclock += self.rate * dt;
            let demand = f64::from(self.cpu_active) * self.parallelism;
            let used = demand.min(self.cpu_cores) * dt;
            self.usage.cpu_seconds += used;
            self.totals.cpu_seconds += used;
            self.totals.busy_seconds += dt;
            if demand > self.cpu_cores {
                self.usage.throttled_seconds += dt;
                self.totals.throttled_seconds += dt;
            }
        }
        self.last = now;
    }

    fn update_rate(&mut self) {
        self.rate = self.speed
            * Self::progress_rate(
                self.cpu_cores,
                self.parallelism,
                self.waste,
                self.cpu_active,
            );
    }

    /// Sets the interference factor from `now` on.
    pub fn set_speed(&mut self, now: Time, speed: f64) {
        self.advance(now);
        self.speed = speed;
        self.update_rate();
    }

    /// Takes a slot for an accepted request.
    pub fn accept(&mut self, now: Time, act: u32, generation: u32) {
        self.advance(now);
        self.holders.push((act, generation));
    }

    /// Releases the slot of a request.
    pub fn release(&mut self, now: Time, act: u32) {
        self.advance(now);
        if let Some(i) = self.holders.iter().position(|h| h.0 == act) {
            self.holders.swap_remove(i);
        }
    }

    /// Starts the CPU phase of a request needing `work` core-seconds.
    pub fn start_cpu(&mut self, now: Time, act: u32, generation: u32, work: f64) {
        self.advance(now);
        self.heap
            .push(Reverse((Time::from(self.vclock + work), act, generation)));
        self.cpu_active += 1;
        self.update_rate();
    }

    /// Requests whose CPU work is done by `now`.
    pub fn finish_cpu(&mut self, now: Time) -> Vec<(u32, u32)> {
        self.advance(now);
        let tolerance = 1e-9 * self.vclock.abs().max(1.0);
        let mut done = Vec::new();
        while let Some(Reverse((finish, act, generation))) = self.heap.peek().copied() {
            if finish.seconds() > self.vclock + tolerance {
                break;
            }
            self.heap.pop();
            self.cpu_active -= 1;
            done.push((act, generation));
        }
        self.update_rate();
        done
    }

    /// When the next CPU completion happens at the current rate.
    pub fn next_cpu_completion(&self) -> Option<Time> {
        let Reverse((finish, _, _)) = self.heap.peek()?;
        (self.rate > 0.0)
            .then(|| self.last + ((finish.seconds() - self.vclock).max(0.0) / self.rate))
    }

    /// Kills the container: every holder is dropped and returned.
    pub fn kill(&mut self, now: Time) -> Vec<(u32, u32)> {
        self.advance(now);
        self.heap.clear();
        self.cpu_active = 0;
        self.update_rate();
        self.epoch = self.epoch.wrapping_add(1);
        std::mem::take(&mut self.holders)
    }

    /// Returns and resets the window accumulators (after advancing to `now`).
    pub fn take_usage(&mut self, now: Time) -> ReplicaUsage {
        self.advance(now);
        std::mem::take(&mut self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// More CPU never slows a request down, whatever the contention.
        #[test]
        fn progress_rate_never_falls_with_more_cpu(
            cores in 0.05f64..4.0, extra in 0.0f64..4.0, p in 0.1f64..4.0, waste in 0.0f64..5.0, k in 1u32..50,
        ) {
            let slow = Replica::progress_rate(cores, p, waste, k);
            let fast = Replica::progress_rate(cores + extra, p, waste, k);
            prop_assert!(fast >= slow * (1.0 - 1e-12), "{fast} < {slow}");
        }

        /// Fewer requests sharing a replica never slows each one down.
        #[test]
        fn progress_rate_never_falls_with_less_sharing(cores in 0.05f64..4.0, p in 0.1f64..4.0, waste in 0.0f64..5.0, k in 1u32..50) {
            prop_assert!(Replica::progress_rate(cores, p, waste, k) >= Replica::progress_rate(cores, p, waste, k + 1) * (1.0 - 1e-12));
        }
    }

    #[test]
    fn processor_sharing_finishes_in_the_right_order_and_time() {
        let config = FunctionConfig {
            cpu_millis: 1000,
            memory_mib: 512,
            replicas: 1,
            concurrency: 4,
        };
        let profile = FunctionProfile {
            parallelism: 1.0,
            throttle_waste: 0.0,
            ..Default::default()
        };
        let mut r = Replica::new(0, "f-0-0".into(), &config, &profile, 0, Time::ZERO);
        r.state = ReplicaState::Ready;
        r.start_cpu(Time::ZERO, 1, 0, 1.0);
        r.start_cpu(Time::ZERO, 2, 0, 2.0);
        // Two requests share one core: the first finishes at t=2 (1 core-s at 0.5 core each).
        let t1 = r.next_cpu_completion().unwrap();
        assert!((t1.seconds() - 2.0).abs() < 1e-9);
        assert_eq!(r.finish_cpu(t1), vec![(1, 0)]);
        // The second has 1 core-s left, now alone: t=3.
        let t2 = r.next_cpu_completion().unwrap();
        assert!((t2.seconds() - 3.0).abs() < 1e-9);
        assert_eq!(r.finish_cpu(t2), vec![(2, 0)]);
        let usage = r.take_usage(t2);
        assert!((usage.cpu_seconds - 3.0).abs() < 1e-9);
        assert!((usage.throttled_seconds - 2.0).abs() < 1e-9);
    }
}
