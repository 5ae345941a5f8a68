//! Plots of a run, as SVG and PNG (plotters): per workflow, each method's mean best
//! QoS-meeting cost against the load with the oracle dashed (the paper's cost figure), and
//! each method's mean QoS violations per load. Text is drawn with a font read at run time
//! (DejaVu Sans, Debian's `fonts-dejavu-core`); without it no plot is drawn, and the error says
//! so.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::protocol::CellResult;
use crate::rq1::Rq1;

/// Where the font is looked for.
pub const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Why plots were not drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No font to draw text with.
    #[error("no font for the plots (looked for {FONT_PATHS:?}; install fonts-dejavu-core)")]
    NoFont,
    /// Drawing failed.
    #[error("plot {path}: {message}")]
    Draw {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

fn register_font() -> Result<(), PlotError> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        FONT_PATHS.iter().any(|path| {
            std::fs::read(path).ok().is_some_and(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
        })
    });
    if ok { Ok(()) } else { Err(PlotError::NoFont) }
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One series: a method's mean of `value` per load (loads where no cell has a value are left out).
fn series(
    cells: &[&CellResult],
    method: &str,
    loads: &[u32],
    value: fn(&CellResult) -> Option<f64>,
) -> Vec<(f64, f64)> {
    loads
        .iter()
        .filter_map(|&u| {
            let values: Vec<f64> = cells
                .iter()
                .filter(|c| c.method == method && c.users == u)
                .filter_map(|c| value(c))
                .collect();
            (!values.is_empty()).then(|| {
                (
                    f64::from(u),
                    values.iter().sum::<f64>() / values.len() as f64,
                )
            })
        })
        .collect()
}

/// A labelled line; the dashed one is the reference (the oracle).
type Line = (String, Vec<(f64, f64)>, bool);

/// A line chart.
pub(crate) struct Chart<'a> {
    title: String,
    x_label: &'a str,
    y_label: &'a str,
    lines: Vec<Line>,
}

impl<'a> Chart<'a> {
    /// An empty chart.
    pub(crate) fn new(title: impl Into<String>, x_label: &'a str, y_label: &'a str) -> Self {
        Self {
            title: title.into(),
            x_label,
            y_label,
            lines: Vec::new(),
        }
    }

    /// Adds a solid line.
    pub(crate) fn line(&mut self, label: String, points: Vec<(f64, f64)>) {
        self.lines.push((label, points, false));
    }
}

/// Writes `chart` as `<stem>.svg` in `dir`.
pub(crate) fn save_chart(chart: &Chart, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, PlotError> {
    register_font()?;
    save(chart, dir, stem)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    chart: &Chart,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let points = chart.lines.iter().flat_map(|(_, p, _)| p.iter());
    let (x0, x1, y1) = points.fold((f64::MAX, f64::MIN, 0.0_f64), |(a, b, c), &(x, y)| {
        (a.min(x), b.max(x), c.max(y))
    });
    let (x0, x1) = if x0 > x1 {
        (0.0, 1.0)
    } else {
        (x0 - 1.0, x1 + 1.0)
    };
    let mut ctx = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, 0.0..(y1 * 1.15).max(1.0))
        .map_err(|e| e.to_string())?;
    ctx.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, points, dashed)) in chart.lines.iter().enumerate() {
        let colour = if *dashed {
            BLACK
        } else {
            COLOURS[i % COLOURS.len()]
        };
        let style = colour.stroke_width(2);
        if *dashed {
            ctx.draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))
                .map_err(|e| e.to_string())?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        } else {
            ctx.draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(|e| e.to_string())?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
            // Markers only where there are few points (a load grid, not a time series).
            let markers = if points.len() <= 20 { &points[..] } else { &[] };
            ctx.draw_series(markers.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// A figure drawn the same way on every backend.
trait Figure {
    /// Width and height, pixels.
    const SIZE: (u32, u32);
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

impl Figure for Chart<'_> {
    const SIZE: (u32, u32) = (800, 500);
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw(root, self)
    }
}

impl Figure for Bars<'_> {
    const SIZE: (u32, u32) = (1000, 500);
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw_bars(root, self)
    }
}

/// Writes `figure` as `<stem>.svg` in `dir` (one format: SVG is text, small, and renders
/// wherever the Markdown reports do).
fn save<F: Figure>(figure: &F, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, PlotError> {
    let svg = dir.join(format!("{stem}.svg"));
    figure
        .draw_on(SVGBackend::new(&svg, F::SIZE).into_drawing_area())
        .map_err(|message| PlotError::Draw {
            path: svg.display().to_string(),
            message,
        })?;
    Ok(vec![svg])
}

/// Draws the plots of `run` into `dir`; returns the files written.
pub fn rq1_plots(run: &Rq1, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    register_font()?;
    let mut written = Vec::new();
    for (workflow, loads) in &run.options.grid {
        let cells: Vec<&CellResult> = run
            .cells
            .iter()
            .filter(|c| &c.workflow == workflow)
            .collect();
        let methods: Vec<String> = run.options.methods.iter().map(|m| m.name()).collect();
        let mut cost = Chart {
            title: format!(
                "{workflow}: best QoS-meeting cost in {} iterations",
                run.options.protocol.iterations
            ),
            x_label: "closed-loop users",
            y_label: "cost (mean over seeds)",
            lines: methods
                .iter()
                .map(|m| {
                    (
                        m.to_string(),
                        series(&cells, m, loads, |c| c.best_cost),
                        false,
                    )
                })
                .collect(),
        };
        let oracle: Vec<(f64, f64)> = run
            .oracle
            .iter()
            .filter(|o| &o.workflow == workflow)
            .filter_map(|o| Some((f64::from(o.users), o.cost?)))
            .collect();
        cost.lines.push(("oracle".into(), oracle, true));
        written.extend(save(&cost, dir, &format!("rq1-{workflow}-cost"))?);
        let violations = Chart {
            title: format!(
                "{workflow}: QoS violations in {} iterations",
                run.options.protocol.iterations
            ),
            x_label: "closed-loop users",
            y_label: "violating iterations (mean over seeds)",
            lines: methods
                .iter()
                .map(|m| {
                    (
                        m.to_string(),
                        series(&cells, m, loads, |c| Some(f64::from(c.violations))),
                        false,
                    )
                })
                .collect(),
        };
        written.extend(save(
            &violations,
            dir,
            &format!("rq1-{workflow}-violations"),
        )?);
    }
    Ok(written)
}

/// The dynamic load's figures: per window, each method's cost (mean over seeds) with the
/// oracle's dashed, and each method's mean latency with the QoS target dashed.
pub fn rq2_plots(run: &crate::rq2::Rq2, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    register_font()?;
    let per_window = |method: &str, value: &dyn Fn(&crate::rq2::WindowRecord) -> Option<f64>| {
        let runs: Vec<_> = run.runs.iter().filter(|r| r.method == method).collect();
        let windows = runs.iter().map(|r| r.windows.len()).min().unwrap_or(0);
        (0..windows)
            .filter_map(|i| {
                let v: Vec<f64> = runs.iter().filter_map(|r| value(&r.windows[i])).collect();
                (!v.is_empty()).then(|| (i as f64, v.iter().sum::<f64>() / v.len() as f64))
            })
            .collect::<Vec<_>>()
    };
    let methods: Vec<String> = run.options.methods.iter().map(|m| m.name()).collect();
    let first = methods.first().cloned().unwrap_or_default();
    let mut cost = Chart {
        title: format!("{}: cost under the dynamic load", run.options.workflow),
        x_label: "30 s window",
        y_label: "cost (mean over seeds)",
        lines: methods
            .iter()
            .map(|m| (m.clone(), per_window(m, &|w| Some(w.cost)), false))
            .collect(),
    };
    cost.lines.push((
        "oracle".into(),
        per_window(&first, &|w| w.oracle_cost),
        true,
    ));
    let target = crate::rq1::qos_of(&run.options.workflow).mean_latency_seconds;
    let mut latency = Chart {
        title: format!("{}: latency under the dynamic load", run.options.workflow),
        x_label: "30 s window",
        y_label: "mean end-to-end latency, s",
        lines: methods
            .iter()
            .map(|m| (m.clone(), per_window(m, &|w| Some(w.e2e_mean_s)), false))
            .collect(),
    };
    let windows = f64::from(run.options.windows());
    latency.lines.push((
        "QoS target".into(),
        vec![(0.0, target), (windows - 1.0, target)],
        true,
    ));
    let mut written = save(&cost, dir, "rq2-cost")?;
    written.extend(save(&latency, dir, "rq2-latency")?);
    Ok(written)
}

/// Bars: per category (x), one bar per group, of height `value` (none: no bar).
struct Bars<'a> {
    title: String,
    y_label: &'a str,
    categories: Vec<String>,
    groups: Vec<(String, Vec<Option<f64>>)>,
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    bars: &Bars,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let top = bars
        .groups
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0_f64, |a, &b| a.max(b));
    let n = bars.categories.len().max(1);
    let mut ctx = ChartBuilder::on(&root)
        .caption(&bars.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..(top * 1.15).max(1.0))
        .map_err(|e| e.to_string())?;
    let categories = bars.categories.clone();
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                categories.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_style(("sans-serif", 12))
        .y_desc(bars.y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / bars.groups.len().max(1) as f64;
    for (j, (label, values)) in bars.groups.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
        ctx.draw_series(values.iter().enumerate().filter_map(|(i, v)| {
            v.map(|v| Rectangle::new([(left(i), 0.0), (left(i) + width, v)], colour.filled()))
        }))
        .map_err(|e| e.to_string())?
        .label(label.as_str())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled()));
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// The ablation's figures: per variant (x) and workflow (bars), the mean best QoS-meeting
/// cost, the mean violations and the mean end-to-end latency over the iterations.
pub fn rq3_plots(run: &Rq1, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    register_font()?;
    let methods: Vec<String> = run.options.methods.iter().map(|m| m.name()).collect();
    let short = |m: &str| {
        m.strip_prefix("faasconf-")
            .map_or_else(|| "whole".to_owned(), str::to_owned)
    };
    let mean_of = |workflow: &str, method: &str, value: &dyn Fn(&CellResult) -> Option<f64>| {
        let v: Vec<f64> = run
            .cells
            .iter()
            .filter(|c| c.workflow == workflow && c.method == method)
            .filter_map(value)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let figure =
        |title: &str, y_label: &'static str, value: &dyn Fn(&CellResult) -> Option<f64>| Bars {
            title: title.to_owned(),
            y_label,
            categories: methods.iter().map(|m| short(m)).collect(),
            groups: run
                .options
                .grid
                .iter()
                .map(|(w, _)| {
                    (
                        w.clone(),
                        methods.iter().map(|m| mean_of(w, m, value)).collect(),
                    )
                })
                .collect(),
        };
    let latency = |c: &CellResult| {
        let n = c.iterations.len();
        (n > 0).then(|| c.iterations.iter().map(|i| i.e2e_mean_s).sum::<f64>() / n as f64)
    };
    let mut written = Vec::new();
    for (stem, bars) in [
        (
            "rq3-cost",
            figure(
                "faasconf's variants: best QoS-meeting cost",
                "cost (mean over seeds)",
                &|c| c.best_cost,
            ),
        ),
        (
            "rq3-violations",
            figure(
                "faasconf's variants: QoS violations",
                "violating iterations (mean over seeds)",
                &|c| Some(f64::from(c.violations)),
            ),
        ),
        (
            "rq3-latency",
            figure(
                "faasconf's variants: end-to-end latency",
                "mean latency over the iterations, s",
                &latency,
            ),
        ),
    ] {
        written.extend(save(&bars, dir, stem)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rq1::{OracleCell, Rq1Options};

    fn cell(method: &str, users: u32, best: Option<f64>) -> CellResult {
        CellResult {
            workflow: "parallel".into(),
            users,
            method: method.into(),
            seed: 0,
            best_cost: best,
            best_config: None,
            feasible: best.is_some(),
            violations: 2,
            iterations_to_feasible: Some(1),
            decision_seconds: 0.0,
            wall_seconds: 0.0,
            iterations: Vec::new(),
            held: None,
        }
    }

    /// Checks what a plotting function wrote: SVG files with content, the legend named.
    fn written(plots: Result<Vec<PathBuf>, PlotError>, files: usize, legend: &[&str]) {
        match plots {
            Ok(written) => {
                assert_eq!(written.len(), files);
                for f in &written {
                    let bytes = std::fs::read(f).expect("written");
                    assert!(bytes.len() > 1000, "{} has content", f.display());
                }
                let svg = std::fs::read_to_string(&written[0]).expect("svg");
                for name in legend {
                    assert!(svg.contains(name), "legend names {name}");
                }
            }
            // Only a machine without the font may skip; the error says what to install.
            Err(PlotError::NoFont) => {
                assert!(FONT_PATHS.iter().all(|p| !Path::new(p).exists()));
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_workflow_gets_a_cost_and_a_violation_figure_in_both_formats() {
        let run = Rq1 {
            cells: vec![
                cell("faasconf", 10, Some(2.0)),
                cell("faasconf", 20, Some(3.8)),
                cell("random", 10, None),
                cell("random", 20, Some(6.0)),
            ],
            oracle: vec![OracleCell {
                workflow: "parallel".into(),
                users: 20,
                cost: Some(3.7),
                source: "search".into(),
                search_cost: Some(3.7),
                seconds: 1.0,
            }],
            options: Rq1Options {
                grid: vec![("parallel".into(), vec![10, 20])],
                ..Rq1Options::quick()
            },
            warm_up_seconds: Vec::new(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        written(rq1_plots(&run, dir.path()), 2, &["faasconf", "oracle"]);
    }

    #[test]
    fn the_ablation_and_the_dynamic_load_get_their_figures() {
        let run = Rq1 {
            cells: vec![
                cell("faasconf", 20, Some(3.8)),
                cell("faasconf-hw", 20, Some(4.5)),
            ],
            oracle: Vec::new(),
            options: crate::rq3::quick(),
            warm_up_seconds: Vec::new(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        written(
            rq3_plots(&run, dir.path()),
            3,
            &["parallel", "whole", "unscreened-mf"],
        );
        let window = |cost| crate::rq2::WindowRecord {
            window: 0,
            users: 12,
            cost,
            e2e_mean_s: 9.0,
            success_ratio: 1.0,
            qos_met: true,
            transient: false,
            oracle_cost: Some(2.0),
        };
        let dynamic = crate::rq2::Rq2 {
            runs: vec![crate::rq2::Rq2Run {
                method: "faasconf".into(),
                seed: 0,
                compliance: 1.0,
                violations: 0,
                cumulative_latency_s: 18.0,
                mean_cost: 2.5,
                above_oracle: Some(0.25),
                decision_seconds: 0.0,
                windows: vec![window(2.0), window(3.0)],
            }],
            oracle: vec![(10, Some(2.0))],
            options: crate::rq2::Rq2Options::quick(),
        };
        written(rq2_plots(&dynamic, dir.path()), 2, &["faasconf", "oracle"]);
    }
}
