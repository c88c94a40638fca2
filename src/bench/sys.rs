//! What the operating system can tell about the bench process: CPU time per group of
//! threads (one group per side of the loopback pair) and the peak resident set.
//!
//! Linux only (`/proc`); elsewhere the figures are reported as unknown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// CPU time spent by the threads of one tokio runtime.
///
/// [`CpuClock::install`] hooks the runtime's thread start and stop: live threads are read
/// from `/proc/self/task/TID/schedstat` (nanoseconds on CPU), exited ones keep their final
/// figure. Reading twice and subtracting gives the CPU a side used in between.
#[derive(Debug, Clone, Default)]
pub struct CpuClock(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    live: Mutex<Vec<i32>>,
    exited_ns: AtomicU64,
}

impl CpuClock {
    /// Hooks a runtime under construction so that its threads are counted.
    pub fn install<'a>(
        &self,
        builder: &'a mut tokio::runtime::Builder,
    ) -> &'a mut tokio::runtime::Builder {
        let (start, stop) = (self.clone(), self.clone());
        builder.on_thread_start(move || start.enter()).on_thread_stop(move || stop.leave())
    }

    /// Counts the calling thread from now on (until it calls [`CpuClock::leave`]).
    pub fn enter(&self) {
        if let Some(tid) = tid() {
            self.0.live.lock().unwrap_or_else(|e| e.into_inner()).push(tid);
        }
    }

    /// Stops counting the calling thread, keeping the CPU time it used.
    pub fn leave(&self) {
        let Some(me) = tid() else { return };
        let used = thread_cpu_ns(me).unwrap_or(0);
        let mut live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|&t| t != me);
        self.0.exited_ns.fetch_add(used, Ordering::Relaxed);
    }

    /// CPU time used so far by every thread counted; `None` where the OS does not say.
    pub fn used(&self) -> Option<Duration> {
        let live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut ns = self.0.exited_ns.load(Ordering::Relaxed);
        for &t in live.iter() {
            ns += thread_cpu_ns(t)?;
        }
        Some(Duration::from_nanos(ns))
    }
}

#[cfg(target_os = "linux")]
fn tid() -> Option<i32> {
    Some(nix::unistd::gettid().as_raw())
}

#[cfg(not(target_os = "linux"))]
fn tid() -> Option<i32> {
    None
}

/// Nanoseconds a thread of this process has spent on a CPU.
fn thread_cpu_ns(tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    parse_schedstat(&text)
}

/// The first field of a schedstat line: time on CPU in nanoseconds.
fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Resets the process's peak RSS to its current RSS (Linux 4.0+); false if not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak RSS in bytes since start or the last [`reset_peak_rss`].
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// `VmHWM:   12345 kB` from /proc/PID/status, in bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        assert_eq!(parse_schedstat("50200019 4472582 189\n"), Some(50_200_019));
        assert_eq!(parse_schedstat(""), None);
        let status = "Name:\tdcsend\nVmPeak:\t  99 kB\nVmHWM:\t    2124 kB\nVmRSS:\t 2000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2124 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn counts_the_cpu_of_a_runtimes_threads() {
        let clock = CpuClock::default();
        let rt = clock
            .install(&mut tokio::runtime::Builder::new_multi_thread())
            .worker_threads(1)
            .build()
            .unwrap();
        let before = clock.used().unwrap();
        // Burn 60 ms of CPU on a worker thread, by that thread's own clock, so a loaded
        // machine only makes it take longer (bounded by 10 s of wall time).
        rt.block_on(async {
            tokio::spawn(async {
                use nix::time::{ClockId, clock_gettime};
                let cpu =
                    || Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap());
                let (start, wall) = (cpu(), std::time::Instant::now());
                let mut x = 0u64;
                while cpu() - start < Duration::from_millis(60)
                    && wall.elapsed() < Duration::from_secs(10)
                {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
            .await
            .unwrap();
        });
        let during = clock.used().unwrap() - before;
        assert!(during >= Duration::from_millis(30), "{during:?}");
        rt.shutdown_timeout(Duration::from_secs(5));
        // Every thread exited: the total is kept, and nothing is counted twice.
        let after = clock.used().unwrap();
        assert!(after >= before + during, "{after:?}");
        assert!(clock.0.live.lock().unwrap().is_empty());
    }
}
