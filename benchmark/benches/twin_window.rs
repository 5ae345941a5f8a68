//! Speed of the twin: one 30 s window in steady state (the twin is warmed by one window).
//! Target (issue 2): TcktApp at 40 closed-loop users in <= 5 ms on one core.

use criterion::{Criterion, criterion_group, criterion_main};
use faasconf_benchmark::{parallel_10_users, tcktapp_40_users};

fn twin_window(c: &mut Criterion) {
    let mut group = c.benchmark_group("twin_window_30s");
    let mut tcktapp = tcktapp_40_users(1);
    tcktapp.run_window();
    group.bench_function("tcktapp_40_users", |b| b.iter(|| tcktapp.run_window()));
    let mut parallel = parallel_10_users(1);
    parallel.run_window();
    group.bench_function("parallel_10_users", |b| b.iter(|| parallel.run_window()));
    group.finish();
}

criterion_group!(benches, twin_window);
criterion_main!(benches);
