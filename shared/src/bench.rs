//! Helpers for the benchmarks (feature `test-support`).

/// This process's peak resident memory so far (`VmHWM` in `/proc/self/status`), in KiB; 0 where
/// the figure is not available.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
