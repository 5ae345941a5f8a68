//! Simulated time: seconds as a totally ordered `f64` (never NaN by construction).

use std::cmp::Ordering;
use std::ops::{Add, Sub};

/// A point in simulated time, seconds since the twin started.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Time(f64);

impl Time {
    /// The start.
    pub const ZERO: Time = Time(0.0);

    /// Seconds since the start.
    pub fn seconds(self) -> f64 {
        self.0
    }
}

impl From<f64> for Time {
    fn from(seconds: f64) -> Self {
        Time(seconds)
    }
}

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Add<f64> for Time {
    type Output = Time;
    fn add(self, rhs: f64) -> Time {
        Time(self.0 + rhs)
    }
}

impl Sub for Time {
    type Output = f64;
    fn sub(self, rhs: Time) -> f64 {
        self.0 - rhs.0
    }
}
