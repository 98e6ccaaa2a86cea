//! The memory a run may take, counted over everything it allocates: all
//! its linear memories together (a component may define many), all its
//! tables (an element costs [`TABLE_ELEMENT_BYTES`]), and how many
//! instances, memories and tables it may create. wasmtime's own
//! `StoreLimits` bounds each memory separately; one run with eight memories
//! would get eight times its limit.

use wasmtime::ResourceLimiter;

/// What one table element is charged: a function reference and its
/// bookkeeping, rounded up.
pub const TABLE_ELEMENT_BYTES: usize = 16;

/// Instances, memories and tables a run may create. A Rust plugin needs a
/// handful of each; a Python one a few dozen instances.
pub const MAX_INSTANCES: usize = 256;
/// See [`MAX_INSTANCES`].
pub const MAX_MEMORIES: usize = 32;
/// See [`MAX_INSTANCES`].
pub const MAX_TABLES: usize = 256;

/// The error a refused growth traps with, so the runtime can name the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the plugin's memory limit of {limit} bytes is reached ({wanted} bytes wanted in all)")]
pub struct MemoryLimitReached {
    /// The limit.
    pub limit: usize,
    /// What the run would have held after the growth.
    pub wanted: usize,
}

/// Counts a run's memories and tables against one budget.
#[derive(Debug)]
pub struct RunLimiter {
    limit: usize,
    used: usize,
}

impl RunLimiter {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> RunLimiter {
        RunLimiter { limit, used: 0 }
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used
    }

    fn grow(&mut self, from: usize, to: usize) -> wasmtime::Result<bool> {
        let wanted = self.used.saturating_add(to.saturating_sub(from));
        if wanted > self.limit {
            // A trap, not a failed grow: the guest cannot carry on and
            // the host reports the limit by name.
            return Err(MemoryLimitReached {
                limit: self.limit,
                wanted,
            }
            .into());
        }
        self.used = wanted;
        Ok(true)
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut l = RunLimiter::new(1000);
        assert!(l.memory_growing(0, 600, None).unwrap());
        // A second memory does not get a budget of its own.
        let e = l.memory_growing(0, 600, None).unwrap_err();
        let reached = e.downcast_ref::<MemoryLimitReached>().unwrap();
        assert_eq!(reached.wanted, 1200);
        // Tables count too: 25 elements are 400 bytes.
        assert!(l.table_growing(0, 25, None).unwrap());
        assert_eq!(l.used(), 1000);
        assert!(l.table_growing(25, 26, None).is_err());
        // Absurd sizes saturate instead of wrapping.
        assert!(l.table_growing(0, usize::MAX, None).is_err());
    }
}
