//! `/metrics`: the Prometheus text exposition (format 0.0.4) — the standard
//! `process_*` metrics, jemalloc gauges, per-route HTTP and memory metrics, and a
//! fill/capacity gauge per bound.

use std::fmt::Write as _;

use super::metrics::{family, render_routes, render_voice};
use crate::limits::BoundReport;

fn proc_stat() -> Option<(f64, u64)> {
    // utime + stime (fields 14, 15) in clock ticks; starttime (22) in ticks since boot
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) as f64 / ticks;
    let start_ticks: u64 = f.get(19)?.parse().ok()?;
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some((cpu, btime + (start_ticks as f64 / ticks) as u64))
}

fn max_fds() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    s.lines().find(|l| l.starts_with("Max open files"))?.split_whitespace().nth(3)?.parse().ok()
}

pub fn render(out: &mut String, bounds: &[BoundReport]) {
    let mut g = |name: &str, help: &str, kind: &str, v: Option<f64>| {
        if let Some(v) = v {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }
    };
    let stat = proc_stat();
    g("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", stat.map(|s| s.0));
    g("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", stat.map(|s| s.1 as f64));
    g("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", crate::proc::resident_bytes().map(|b| b as f64));
    g("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", crate::proc::virtual_bytes().map(|b| b as f64));
    g("process_open_fds", "Number of open file descriptors.", "gauge", crate::proc::open_fds().map(|n| n as f64));
    g("process_max_fds", "Maximum number of open file descriptors.", "gauge", max_fds().map(|n| n as f64));
    g("process_threads", "Number of OS threads in the process.", "gauge", crate::proc::threads().map(|n| n as f64));
    if let Some(a) = super::allocator_stats() {
        for (name, v, help) in [
            ("jemalloc_allocated_bytes", a.allocated, "Bytes in live allocations."),
            ("jemalloc_active_bytes", a.active, "Bytes in active pages."),
            ("jemalloc_resident_bytes", a.resident, "Bytes in physically resident allocator pages."),
            ("jemalloc_mapped_bytes", a.mapped, "Bytes mapped by the allocator."),
            ("jemalloc_retained_bytes", a.retained, "Bytes retained as virtual memory."),
            ("jemalloc_metadata_bytes", a.metadata, "Allocator metadata bytes."),
        ] {
            g(name, help, "gauge", Some(v as f64));
        }
    }
    render_routes(out);
    render_voice(out);
    family(out, "oipd_bound_capacity", "gauge", "Capacity of each bounded structure.");
    for b in bounds {
        let _ = writeln!(out, "oipd_bound_capacity{{bound=\"{}\",unit=\"{}\"}} {}", b.name, b.unit, b.capacity);
    }
    family(out, "oipd_bound_fill", "gauge", "Current fill of each bounded structure.");
    for b in bounds {
        let _ = writeln!(out, "oipd_bound_fill{{bound=\"{}\",unit=\"{}\"}} {}", b.name, b.unit, b.fill);
    }
}
