//! The twin's load side: closed-loop users (think time, joining and retiring), open-loop Poisson
//! arrivals, trace minutes, and what happens when a request completes.

use crate::sim::{Event, NONE, Twin, User};
use crate::time::Time;
use crate::workload::Workload;

impl Twin {
    pub(crate) fn trace_minute(&mut self, minute: u32) {
        let Workload::Trace { .. } = self.workload else {
            return;
        };
        let users = self.workload.users_at_minute(minute as usize);
        self.set_users(users);
        self.schedule(
            self.now + 60.0,
            Event::Minute {
                minute: minute + 1,
                epoch: self.workload_epoch,
            },
        );
    }

    /// Brings the number of active closed-loop users to `target`: new users start within a
    /// second; surplus users retire after their current request.
    pub(crate) fn set_users(&mut self, target: u32) {
        let mut active = self
            .users
            .iter()
            .filter(|u| u.active && !u.retiring)
            .count() as u32;
        for user in self.users.iter_mut().rev() {
            if active <= target {
                break;
            }
            if user.active && !user.retiring {
                user.retiring = true;
                active -= 1;
            }
        }
        while active < target {
            let id = match self.users.iter().position(|u| !u.active) {
                Some(i) => i,
                None => {
                    self.users.push(User::default());
                    self.users.len() - 1
                }
            };
            self.users[id] = User {
                active: true,
                retiring: false,
                busy: self.users[id].busy,
            };
            if !self.users[id].busy {
                let offset = self.rng_workload.uniform();
                self.users[id].busy = true;
                self.schedule(self.now + offset, Event::UserSend { user: id as u32 });
            }
            active += 1;
        }
    }

    pub(crate) fn user_send(&mut self, user: u32) {
        let u = &mut self.users[user as usize];
        if !u.active || u.retiring {
            u.active = false;
            u.retiring = false;
            u.busy = false;
            return;
        }
        self.start_request(user);
    }

    pub(crate) fn poisson_arrival(&mut self) {
        let Workload::Poisson {
            requests_per_second,
        } = self.workload
        else {
            return;
        };
        self.start_request(NONE);
        let gap = self.rng_workload.exponential(1.0 / requests_per_second);
        self.schedule(
            self.now + gap,
            Event::PoissonArrival {
                epoch: self.workload_epoch,
            },
        );
    }

    pub(crate) fn start_request(&mut self, user: u32) {
        let root = self.plan.root;
        let act = self.spawn(root, NONE, 0);
        let a = &mut self.acts[act as usize];
        a.sent_at = self.now;
        a.user = user;
        self.tally.arrivals += 1;
        self.in_flight.step(self.now.seconds(), 1, &mut self.tally);
        self.start(act);
    }

    pub(crate) fn request_done(&mut self, sent_at: Time, user: u32, ok: bool) {
        self.in_flight.step(self.now.seconds(), -1, &mut self.tally);
        self.tally.latencies.push(self.now - sent_at);
        self.tally.successful += u64::from(ok);
        self.requests
            .record(if ok { 200 } else { 500 }, self.now - sent_at);
        if user == NONE {
            return;
        }
        let u = &mut self.users[user as usize];
        if u.active && !u.retiring {
            let think = self.platform.user_think_seconds * 2.0 * self.rng_workload.uniform();
            self.schedule(self.now + think, Event::UserSend { user });
        } else {
            *u = User::default();
        }
    }
}
