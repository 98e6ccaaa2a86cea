//! The engine's two clocks: realtime (what kernel timestamps use) and a
//! monotonic count from the first use (what RTTs are cross-checked with).

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds since the Unix epoch on the realtime clock.
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Nanoseconds on the monotonic clock since the engine first read it.
pub fn mono_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
