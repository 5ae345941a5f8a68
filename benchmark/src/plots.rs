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

struct Chart<'a> {
    title: String,
    y_label: &'a str,
    lines: Vec<Line>,
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
        .x_desc("closed-loop users")
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
            ctx.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
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

fn save(chart: &Chart, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, PlotError> {
    let svg = dir.join(format!("{stem}.svg"));
    let png = dir.join(format!("{stem}.png"));
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |message| PlotError::Draw { path, message }
    };
    draw(SVGBackend::new(&svg, (800, 500)).into_drawing_area(), chart).map_err(failed(&svg))?;
    draw(
        BitMapBackend::new(&png, (800, 500)).into_drawing_area(),
        chart,
    )
    .map_err(failed(&png))?;
    Ok(vec![svg, png])
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
        let methods: Vec<&str> = run.options.methods.iter().map(|m| m.name()).collect();
        let mut cost = Chart {
            title: format!(
                "{workflow}: best QoS-meeting cost in {} iterations",
                run.options.protocol.iterations
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rq1::{OracleCell, Rq1Options};

    #[test]
    fn every_workflow_gets_a_cost_and_a_violation_figure_in_both_formats() {
        let cell = |method: &str, users, best: Option<f64>| CellResult {
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
        };
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
        match rq1_plots(&run, dir.path()) {
            Ok(files) => {
                assert_eq!(files.len(), 4);
                for f in &files {
                    let bytes = std::fs::read(f).expect("written");
                    assert!(bytes.len() > 1000, "{} has content", f.display());
                }
                let svg = std::fs::read_to_string(&files[0]).expect("svg");
                assert!(svg.contains("faasconf") && svg.contains("oracle"), "legend");
                assert!(&std::fs::read(&files[1]).expect("png")[1..4] == b"PNG");
            }
            // Only a machine without the font may skip; the error says what to install.
            Err(PlotError::NoFont) => {
                assert!(FONT_PATHS.iter().all(|p| !Path::new(p).exists()));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
