//! The load shapes `rq2` can play (`--shape`): 85-minute segments of the Azure Functions 2019
//! trace (`../shared/data/azure/invocations_per_minute_140fn.csv`, CC-BY 4.0, Microsoft), each
//! scaled into the run's user range. Besides rq2's own, three of different character, chosen
//! by a fixed rule over every function and every segment starting at a multiple of 15 minutes
//! (30 for spiky and steps) before forecasting was tuned on any of them (scripted selection,
//! documented in docs/benchmark.md):
//! - `periodic`: the strongest autocorrelation at a lag of 5-30 minutes among segments with a
//!   mean of at least 30 calls and a coefficient of variation of at least 0.2 (rq2's, spiky's
//!   and steps' functions left out): a timer's dip every 5 minutes (0.85 at lag 5);
//! - `spiky`: the highest peak over median among segments with a median of at least 50;
//! - `steps`: the largest shift between the means of two parts (each at least 15 minutes)
//!   relative to the spread within them.

use serde::{Deserialize, Serialize};

/// A load shape of `rq2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// rq2's own: quiet stretches, two bursts to the peak, a long plateau and a late spike.
    Azure85,
    /// A timer's dip every 5 minutes.
    Periodic,
    /// Bursts 10-40x the median.
    Spiky,
    /// A level that halves and stays there.
    Steps,
}

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 4] = [Shape::Azure85, Shape::Periodic, Shape::Spiky, Shape::Steps];

    /// Invocations per minute (only the shape matters).
    pub fn per_minute(self) -> &'static [f64] {
        match self {
            Shape::Azure85 => &super::AZURE_85_MINUTES,
            Shape::Periodic => &PERIODIC,
            Shape::Spiky => &SPIKY,
            Shape::Steps => &STEPS,
        }
    }

    /// The shape called `name` (`--shape`).
    pub fn parse(name: &str) -> Result<Shape, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown shape {name:?} (known: {})",
                    Self::ALL.map(Shape::name).join(", ")
                )
            })
    }

    /// The shape's name (`--shape`).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Azure85 => "azure85",
            Shape::Periodic => "periodic",
            Shape::Spiky => "spiky",
            Shape::Steps => "steps",
        }
    }
}

/// Data row 95 (0-based), function `003a9666…`, minutes 210-294 (0-based).
pub const PERIODIC: [f64; 85] = [
    24.0, 37.0, 33.0, 29.0, 28.0, 21.0, 38.0, 29.0, 32.0, 28.0, 20.0, 40.0, 33.0, 30.0, 26.0, 22.0,
    42.0, 30.0, 36.0, 28.0, 23.0, 37.0, 27.0, 29.0, 29.0, 22.0, 38.0, 29.0, 31.0, 30.0, 22.0, 41.0,
    33.0, 30.0, 34.0, 19.0, 35.0, 32.0, 29.0, 32.0, 23.0, 37.0, 30.0, 30.0, 32.0, 23.0, 39.0, 31.0,
    32.0, 31.0, 19.0, 39.0, 30.0, 30.0, 29.0, 24.0, 36.0, 30.0, 30.0, 31.0, 24.0, 43.0, 29.0, 32.0,
    32.0, 19.0, 42.0, 27.0, 30.0, 30.0, 16.0, 44.0, 29.0, 32.0, 27.0, 20.0, 39.0, 28.0, 31.0, 31.0,
    18.0, 38.0, 32.0, 30.0, 27.0,
];

/// Data row 118 (0-based), function `f3f5a51a…`, minutes 840-924 (0-based).
pub const SPIKY: [f64; 85] = [
    64.0, 114.0, 64.0, 90.0, 83.0, 75.0, 81.0, 65.0, 59.0, 78.0, 80.0, 354.0, 1265.0, 54.0, 97.0,
    54.0, 51.0, 95.0, 91.0, 114.0, 108.0, 76.0, 89.0, 68.0, 294.0, 1078.0, 2249.0, 1109.0, 69.0,
    184.0, 257.0, 158.0, 360.0, 400.0, 358.0, 273.0, 126.0, 41.0, 16.0, 8.0, 171.0, 1108.0, 298.0,
    458.0, 0.0, 20.0, 127.0, 122.0, 628.0, 577.0, 5.0, 1.0, 60.0, 20.0, 30.0, 0.0, 17.0, 16.0,
    12.0, 3.0, 13.0, 21.0, 32.0, 8.0, 9.0, 23.0, 27.0, 17.0, 1.0, 16.0, 32.0, 17.0, 2.0, 55.0,
    659.0, 1545.0, 2605.0, 1942.0, 5.0, 0.0, 72.0, 8.0, 19.0, 4.0, 244.0,
];

/// Data row 102 (0-based), function `944307c2…`, minutes 540-624 (0-based).
pub const STEPS: [f64; 85] = [
    119.0, 119.0, 119.0, 119.0, 118.0, 118.0, 117.0, 119.0, 118.0, 119.0, 119.0, 119.0, 117.0,
    120.0, 119.0, 119.0, 74.0, 59.0, 60.0, 60.0, 59.0, 60.0, 60.0, 60.0, 59.0, 60.0, 60.0, 59.0,
    60.0, 60.0, 60.0, 59.0, 60.0, 60.0, 59.0, 60.0, 60.0, 60.0, 59.0, 60.0, 60.0, 60.0, 59.0, 60.0,
    60.0, 60.0, 59.0, 60.0, 60.0, 59.0, 60.0, 60.0, 60.0, 59.0, 60.0, 60.0, 60.0, 59.0, 60.0, 60.0,
    59.0, 57.0, 59.0, 60.0, 59.0, 60.0, 59.0, 59.0, 58.0, 60.0, 60.0, 59.0, 59.0, 60.0, 60.0, 59.0,
    59.0, 60.0, 59.0, 58.0, 58.0, 60.0, 58.0, 60.0, 60.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_by_name_and_vary() {
        for shape in Shape::ALL {
            assert_eq!(Shape::parse(shape.name()), Ok(shape));
            let minutes = shape.per_minute();
            assert_eq!(minutes.len(), 85, "{shape:?}");
            let (lo, hi) = minutes
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &m| (a.min(m), b.max(m)));
            assert!(hi > lo, "{shape:?} is flat");
        }
        assert!(Shape::parse("flat").unwrap_err().contains("periodic"));
    }
}
