//! Memory use of this process, as Linux reports it.

/// Resident set size of this process now, from `/proc/self/status`.
pub fn current_rss() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Peak resident set size of this process, from `/proc/self/status`.
pub fn peak_rss() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// A size in `/proc/self/status` (given there in kB), in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
