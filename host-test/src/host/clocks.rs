//! Each node's clocks, as its WASI context sees them: real time, or skewed (a rate of drift,
//! a wall-clock offset) with jumps that a test or scenario applies while the node runs. They
//! read tokio's clock, so they follow virtual time when the runtime's time is paused, and a
//! node's clock runs on continuously across its instances (stateless calls included).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Settings and jumps for one node's clocks.
#[derive(Debug)]
pub struct ClockControl {
    /// Rate against true time (1.0 exact, 1.01 one percent fast). Set before the node starts.
    rate: Mutex<f64>,
    /// Added to the monotonic clock (forward only, as after a suspend).
    mono_jump_ns: AtomicU64,
    /// Added to the wall clock; may be negative.
    wall_offset_ms: AtomicI64,
    /// True time and wall time when the node's clocks were first read.
    origin: OnceLock<(Instant, Duration)>,
}

impl Default for ClockControl {
    fn default() -> Self {
        ClockControl {
            rate: Mutex::new(1.0),
            mono_jump_ns: AtomicU64::new(0),
            wall_offset_ms: AtomicI64::new(0),
            origin: OnceLock::new(),
        }
    }
}

impl ClockControl {
    pub fn set_rate(&self, rate: f64) {
        *self.rate.lock().unwrap() = rate.clamp(0.5, 2.0);
    }

    /// The monotonic clock leaps forward by `d` (a suspended VM resuming).
    pub fn jump_monotonic(&self, d: Duration) {
        self.mono_jump_ns
            .fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }

    /// The wall clock is set off by `ms` (an NTP step, a bad RTC). Only SigV4 dates read it.
    pub fn jump_wall_ms(&self, ms: i64) {
        self.wall_offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Time elapsed on this node's clock since its origin, at its rate.
    fn elapsed(&self) -> (Duration, Duration) {
        let (origin, wall) = *self.origin.get_or_init(|| {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            (Instant::now(), wall)
        });
        let rate = *self.rate.lock().unwrap();
        (
            Instant::now()
                .saturating_duration_since(origin)
                .mul_f64(rate),
            wall,
        )
    }
}

/// `wasi:clocks/monotonic-clock` of a node.
pub struct NodeMonotonicClock(pub Arc<ClockControl>);

impl HostMonotonicClock for NodeMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        // Start at one second, not zero, like a clock that has been running.
        let (elapsed, _) = self.0.elapsed();
        1_000_000_000 + elapsed.as_nanos() as u64 + self.0.mono_jump_ns.load(Ordering::SeqCst)
    }
}

/// `wasi:clocks/wall-clock` of a node.
pub struct NodeWallClock(pub Arc<ClockControl>);

impl HostWallClock for NodeWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let (elapsed, wall) = self.0.elapsed();
        let t = wall + elapsed;
        let offset = self.0.wall_offset_ms.load(Ordering::SeqCst);
        if offset >= 0 {
            t + Duration::from_millis(offset as u64)
        } else {
            t.saturating_sub(Duration::from_millis(offset.unsigned_abs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn clocks_follow_virtual_time_at_their_rate_and_jump() {
        let fast = Arc::new(ClockControl::default());
        fast.set_rate(1.01);
        let mono = NodeMonotonicClock(fast.clone());
        let wall = NodeWallClock(fast.clone());
        let (m0, w0) = (mono.now(), wall.now());
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(mono.now() - m0, 101_000_000_000);
        assert_eq!(wall.now() - w0, Duration::from_secs(101));
        fast.jump_monotonic(Duration::from_secs(5));
        fast.jump_wall_ms(-60_000);
        assert_eq!(mono.now() - m0, 106_000_000_000);
        assert_eq!(
            w0 + Duration::from_secs(101) - wall.now(),
            Duration::from_secs(60)
        );
    }
}
