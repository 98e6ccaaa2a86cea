/*!
Tenants: who owns the engine's shared resources, and how much of them.

Every virtual socket belongs to a [`Tenant`] (a `run`, a `batch` entry, a
service team). The engine enforces the tenant's [`Quota`] where the
resource lives: sockets and datagram sockets when opened, requests in
flight when a wire key is reserved, queued replies when the reader delivers
one. A tenant that reaches a quota is refused alone; its neighbours never
see `resource-exhausted` because of it, since the engine admits a tenant
only while the sum of in-flight quotas fits the key table
([`super::Engine::tenant`]).

Work the reader does for a socket (parsing and routing its replies) is
charged to the socket's [`Account`], which the runtime counts against the
run's CPU budget.
*/

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How much of the engine one tenant may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Virtual sockets open.
    pub sockets: usize,
    /// Of those, datagram sockets (each is a kernel socket, a file descriptor).
    pub datagram_sockets: usize,
    /// Requests sent and not yet answered (wire keys reserved for them).
    pub in_flight: usize,
    /// Replies delivered and not yet taken by the plugin, over all its sockets.
    pub queued: usize,
}

impl Default for Quota {
    /// Room for a multiping of a /16 at once, far below what hurts the host.
    fn default() -> Self {
        Quota {
            sockets: 1024,
            datagram_sockets: 64,
            in_flight: 1 << 16,
            queued: 1 << 16,
        }
    }
}

/// A quota that was reached: what, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaExceeded {
    /// [`Quota::sockets`].
    Sockets(usize),
    /// [`Quota::datagram_sockets`].
    DatagramSockets(usize),
    /// [`Quota::in_flight`].
    InFlight(usize),
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaExceeded::Sockets(n) => {
                write!(f, "the tenant's quota of {n} open sockets is used up")
            }
            QuotaExceeded::DatagramSockets(n) => {
                write!(f, "the tenant's quota of {n} datagram sockets is used up")
            }
            QuotaExceeded::InFlight(n) => write!(
                f,
                "the tenant's quota of {n} requests in flight is used up (unanswered requests \
                 are remembered for up to a minute)"
            ),
        }
    }
}

/// Counters of one tenant since it was admitted.
#[derive(Debug, Default)]
pub struct TenantCounters {
    /// Requests handed to the kernel.
    pub sent: AtomicU64,
    /// Replies delivered to its sockets.
    pub received: AtomicU64,
    /// Replies dropped because its queues were full.
    pub queue_drops: AtomicU64,
    /// Requests refused because a quota was reached.
    pub refused: AtomicU64,
}

pub(crate) struct TenantState {
    name: String,
    quota: Quota,
    sockets: AtomicUsize,
    datagram_sockets: AtomicUsize,
    in_flight: AtomicUsize,
    queued: AtomicUsize,
    pub(crate) counters: TenantCounters,
    /// Called when the last handle goes: gives the in-flight reservation back.
    release: Box<dyn Fn(usize) + Send + Sync>,
}

impl Drop for TenantState {
    fn drop(&mut self) {
        (self.release)(self.quota.in_flight);
    }
}

/// Takes one unit of `counter` if it stays within `limit`.
fn acquire(counter: &AtomicUsize, limit: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        })
        .is_ok()
}

fn release(counter: &AtomicUsize, n: usize) {
    if n > 0 {
        counter.fetch_sub(n, Ordering::AcqRel);
    }
}

impl TenantState {
    pub(crate) fn new(
        name: &str,
        quota: Quota,
        release: Box<dyn Fn(usize) + Send + Sync>,
    ) -> TenantState {
        TenantState {
            name: name.to_owned(),
            quota,
            sockets: AtomicUsize::new(0),
            datagram_sockets: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            counters: TenantCounters::default(),
            release,
        }
    }

    /// Reserves one request in flight.
    pub(crate) fn acquire_in_flight(&self) -> Result<(), QuotaExceeded> {
        if acquire(&self.in_flight, self.quota.in_flight) {
            Ok(())
        } else {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            Err(QuotaExceeded::InFlight(self.quota.in_flight))
        }
    }

    pub(crate) fn release_in_flight(&self, n: usize) {
        release(&self.in_flight, n);
    }

    /// Reserves room for one queued reply.
    pub(crate) fn acquire_queued(&self) -> bool {
        acquire(&self.queued, self.quota.queued)
    }

    pub(crate) fn release_queued(&self, n: usize) {
        release(&self.queued, n);
    }
}

/// A tenant of the engine: its quotas and counters. Cheap to clone; the
/// engine takes its in-flight reservation back when the last clone goes.
#[derive(Clone)]
pub struct Tenant {
    pub(crate) state: Arc<TenantState>,
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.state.name)
            .field("quota", &self.state.quota)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Its quotas.
    pub fn quota(&self) -> Quota {
        self.state.quota
    }

    /// Its counters.
    pub fn counters(&self) -> &TenantCounters {
        &self.state.counters
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::Acquire)
    }

    /// Replies queued now, over all its sockets.
    pub fn queued(&self) -> usize {
        self.state.queued.load(Ordering::Acquire)
    }

    /// Sockets open now.
    pub fn sockets(&self) -> usize {
        self.state.sockets.load(Ordering::Acquire)
    }

    /// Charges work done for this tenant's sockets to `cpu_ns` (a run's
    /// CPU counter) from now on.
    pub fn account(&self, cpu_ns: Arc<AtomicU64>) -> Account {
        Account {
            tenant: Arc::clone(&self.state),
            cpu_ns,
        }
    }
}

/// Who a socket's costs go to: the tenant's quotas, and a run's CPU counter.
#[derive(Clone)]
pub struct Account {
    pub(crate) tenant: Arc<TenantState>,
    pub(crate) cpu_ns: Arc<AtomicU64>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("tenant", &self.tenant.name)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Charges `ns` of host CPU time to the run.
    pub(crate) fn charge(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// A socket held against a tenant's quota; given back when dropped.
#[derive(Debug)]
pub(crate) struct SocketSlot {
    account: Account,
}

impl SocketSlot {
    /// Takes a socket from the quota.
    pub(crate) fn take(account: &Account) -> Result<SocketSlot, QuotaExceeded> {
        let t = &account.tenant;
        if !acquire(&t.sockets, t.quota.sockets) {
            return Err(QuotaExceeded::Sockets(t.quota.sockets));
        }
        Ok(SocketSlot {
            account: account.clone(),
        })
    }

    pub(crate) fn account(&self) -> &Account {
        &self.account
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        release(&self.account.tenant.sockets, 1);
    }
}

/// A kernel datagram socket held against a tenant's quota: given back when
/// the descriptor is really closed (its reader gone), not when the guest
/// closes the socket — so a guest opening and closing in a loop holds at
/// most its quota of descriptors.
pub(crate) struct DatagramSlot {
    tenant: Arc<TenantState>,
}

impl DatagramSlot {
    /// Takes a datagram socket from the quota.
    pub(crate) fn take(account: &Account) -> Result<DatagramSlot, QuotaExceeded> {
        let t = &account.tenant;
        if !acquire(&t.datagram_sockets, t.quota.datagram_sockets) {
            return Err(QuotaExceeded::DatagramSockets(t.quota.datagram_sockets));
        }
        Ok(DatagramSlot {
            tenant: Arc::clone(t),
        })
    }
}

impl Drop for DatagramSlot {
    fn drop(&mut self) {
        release(&self.tenant.datagram_sockets, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(quota: Quota) -> (Tenant, Arc<AtomicUsize>) {
        let returned = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&returned);
        let state = TenantState::new(
            "t",
            quota,
            Box::new(move |n| {
                r.fetch_add(n, Ordering::SeqCst);
            }),
        );
        (
            Tenant {
                state: Arc::new(state),
            },
            returned,
        )
    }

    #[test]
    fn socket_slots_are_given_back_when_dropped() {
        let (t, _) = tenant(Quota {
            sockets: 2,
            datagram_sockets: 1,
            ..Quota::default()
        });
        let account = t.account(Arc::default());
        let d = DatagramSlot::take(&account).unwrap();
        assert!(matches!(
            DatagramSlot::take(&account),
            Err(QuotaExceeded::DatagramSockets(1))
        ));
        let (a, b) = (
            SocketSlot::take(&account).unwrap(),
            SocketSlot::take(&account).unwrap(),
        );
        assert_eq!(
            SocketSlot::take(&account).unwrap_err(),
            QuotaExceeded::Sockets(2)
        );
        drop((a, b, d));
        assert_eq!(t.sockets(), 0);
        SocketSlot::take(&account).unwrap();
        DatagramSlot::take(&account).unwrap();
    }

    #[test]
    fn in_flight_is_bounded_and_the_reservation_returns_with_the_last_handle() {
        let (t, returned) = tenant(Quota {
            in_flight: 2,
            ..Quota::default()
        });
        t.state.acquire_in_flight().unwrap();
        t.state.acquire_in_flight().unwrap();
        assert_eq!(
            t.state.acquire_in_flight().unwrap_err(),
            QuotaExceeded::InFlight(2)
        );
        assert_eq!(t.counters().refused.load(Ordering::Relaxed), 1);
        t.state.release_in_flight(1);
        t.state.acquire_in_flight().unwrap();
        let account = t.account(Arc::default());
        drop(t);
        assert_eq!(returned.load(Ordering::SeqCst), 0, "an account keeps it");
        drop(account);
        assert_eq!(returned.load(Ordering::SeqCst), 2);
    }
}
