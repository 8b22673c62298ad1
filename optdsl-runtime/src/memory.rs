//! How much memory this process can still take: `MemAvailable` of
//! `/proc/meminfo`, lowered to what the process's cgroup (v2) allows, so a
//! size computed from input can be refused with an error before it is
//! allocated, instead of aborting on a failed allocation.

use std::path::Path;

/// Bytes this process can allocate without swapping or exceeding its
/// cgroup's `memory.max`: the smaller of the system's `MemAvailable` and the
/// cgroup's limit less its usage. `None` where neither can be read (not
/// Linux, or `/proc` not mounted).
pub fn available_bytes() -> Option<u64> {
    let system = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_available(&text));
    match (system, cgroup_headroom()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `MemAvailable` (kB) of a `/proc/meminfo` text, in bytes.
fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// `memory.max - memory.current` of this process's cgroup v2, if it has a limit.
fn cgroup_headroom() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = groups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let max = read("memory.max")?; // "max" (no limit) does not parse
    Some(max.saturating_sub(read("memory.current").unwrap_or(0)))
}

/// A byte count for people: `512 bytes`, `3.2 MB`, `40.1 GB`, `8.0 TB`
/// (powers of 1000).
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available_and_prints_sizes() {
        let text = "MemTotal:       24684084 kB\nMemFree: 1 kB\nMemAvailable:   23432052 kB\n";
        assert_eq!(meminfo_available(text), Some(23_432_052 * 1024));
        assert_eq!(meminfo_available("MemTotal: 5 kB\n"), None);
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(40_107_200_040), "40.1 GB");
        assert_eq!(human_bytes(u128::from(u64::MAX) * 8), "147.6 EB");
    }
}
