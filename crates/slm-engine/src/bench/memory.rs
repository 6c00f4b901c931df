//! Resident memory of this process, for the benchmark's "peak memory" column.
//!
//! Linux keeps the peak resident set size in `VmHWM` of `/proc/self/status`; writing `5` to
//! `/proc/self/clear_refs` (Linux 4.0+) resets that peak to the current RSS, so a peak can be
//! measured per benchmark row. Where the reset is refused (or off Linux) the peak is the
//! process's since it started, and [`PeakScope`] says so.

use serde::Serialize;

/// What a peak figure covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeakScope {
    /// The peak was reset just before the measured work: it covers that work only (plus what
    /// was already resident, e.g. the mapped weights).
    Row,
    /// The reset was refused: the peak since the process started.
    Process,
    /// No figure on this system.
    Unavailable,
}

/// Reset the peak RSS to the current RSS; `Row` if that worked, else what a later
/// [`peak_rss_bytes`] will mean.
pub fn reset_peak() -> PeakScope {
    match std::fs::write("/proc/self/clear_refs", "5") {
        Ok(()) => PeakScope::Row,
        Err(_) if peak_rss_bytes().is_some() => PeakScope::Process,
        Err(_) => PeakScope::Unavailable,
    }
}

/// `VmHWM` (peak resident set size) in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k.saturating_mul(1024))
}

/// `VmRSS` (current resident set size) in bytes.
pub fn current_rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k.saturating_mul(1024))
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, key)
}

/// The value of a `Key:   1234 kB` line.
fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let mut parts = line.get(key.len()..)?.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tslm\nVmPeak:\t  100 kB\nVmHWM:\t    2184 kB\nVmRSS:\t 2000 kB\n";
        assert_eq!(parse_status_kib(s, "VmHWM:"), Some(2184));
        assert_eq!(parse_status_kib(s, "VmRSS:"), Some(2000));
        assert_eq!(parse_status_kib(s, "VmSwap:"), None);
        assert_eq!(parse_status_kib("VmHWM: 12 MB\n", "VmHWM:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peak_follows_a_large_allocation_and_resets() {
        let before = peak_rss_bytes().expect("VmHWM on Linux");
        let big: Vec<u8> = vec![1u8; 64 << 20];
        // Touch every page so it is resident.
        let sum: u64 = big.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        assert!(sum > 0);
        let peak = peak_rss_bytes().expect("VmHWM");
        assert!(peak >= before.max(64 << 20), "peak {peak} after 64 MiB");
        drop(big);
        if reset_peak() == PeakScope::Row {
            let after = peak_rss_bytes().expect("VmHWM");
            assert!(after + (32 << 20) < peak, "reset peak {after} vs {peak}");
        }
    }
}
