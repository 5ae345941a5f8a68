use std::time::Instant;
use faasconf_core::{catalog, history};
use faasconf_twin::calibrate::{calibrate, predict_rows, CalibrationOptions};
use faasconf_twin::fidelity::Fidelity;
fn main() {
    let mut w = catalog::builtin("parallel").unwrap();
    if std::env::var("ROUTING").as_deref() == Ok("random") { w.platform.routing = faasconf_core::Routing::Random; }
    if std::env::var("FAIL").as_deref() == Ok("end") { w.platform.failure_mode = faasconf_core::FailureMode::RunToEnd; }
    let rows = history::read_history(std::path::Path::new("../shared/data/parallel_10_train.csv"), &w).unwrap();
    let t = Instant::now();
    let (train, test): (Vec<_>, Vec<_>) = rows.iter().cloned().enumerate().partition(|(i, _)| i % 5 != 0);
    let train: Vec<_> = train.into_iter().map(|x| x.1).collect();
    let test: Vec<_> = test.into_iter().map(|x| x.1).collect();
    let mut opts = CalibrationOptions::default();
    if let Ok(v) = std::env::var("EVALS") { opts.max_evaluations = v.parse().unwrap(); }
    if let Ok(v) = std::env::var("CW") { opts.windows = v.parse().unwrap(); }
    let c = calibrate(&w, &train, &opts, &mut |d, t| if d % 20 == 0 { eprintln!("{d}/{t}") });
    println!("calibrated in {:?}: loss {} -> {} ({} evals)", t.elapsed(), c.initial_loss, c.loss, c.evaluations);
    println!("{}", serde_json::to_string(&c.profiles).unwrap());
    let fw = w.clone().with_profiles(&c.profiles);
    let ew: u32 = std::env::var("EW").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let preds = predict_rows(&fw, &test, ew, 1, 0);
    let dump: Vec<_> = test.iter().zip(&preds).map(|(r, p)| serde_json::json!({"line": r.line, "e2e": p.e2e_mean_seconds, "sr": p.success_ratio, "p75": p.p75_seconds, "tot": p.total_requests})).collect();
    std::fs::write("/tmp/preds.json", serde_json::to_string(&dump).unwrap()).unwrap();
    println!("{}", serde_json::to_string(&Fidelity::measure(&w, &test, &preds)).unwrap());
}
