//! Peak memory of the twin: runs the TcktApp 40-user scenario for `--windows` windows (default
//! 200) and prints the process's peak resident set (VmHWM) before and after, in MB, as JSON.

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let windows: u64 = std::env::args()
        .skip_while(|a| a != "--windows")
        .nth(1)
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("--windows {v}: not a whole number"))
        })
        .unwrap_or(200);
    let before = peak_rss_kib();
    let mut twin = faasconf_benchmark::tcktapp_40_users(1);
    let mut requests = 0;
    for _ in 0..windows {
        requests += twin.run_window().workflow.total_requests;
    }
    let after = peak_rss_kib();
    let mb = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
    println!(
        "{{\"scenario\":\"tcktapp_40_users\",\"windows\":{windows},\"requests\":{requests},\"peak_rss_mb_before\":{:.2},\"peak_rss_mb_after\":{:.2},\"twin_mb\":{:.2}}}",
        mb(before),
        mb(after),
        mb(after) - mb(before)
    );
}
