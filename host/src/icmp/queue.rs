//! A virtual socket's inbox: bounded per socket and per tenant, and it
//! never blocks the reader — a full queue drops and counts.
//!
//! The queue also carries the socket's account: its requests count in
//! flight against the tenant from send until the table lets them go
//! (answered, expired) — closing the socket does not free them early, so a
//! tenant cannot outgrow its quota by closing and reopening.
//!
//! Replies are indexed by (id, sequence): taking the reply to one request,
//! or asking whether it came, costs O(1) however much is queued, so the
//! reader never waits long for the lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

use super::table::Rejected;
use super::tenant::{Account, QuotaExceeded};
use super::types::Reply;

type Key = (u16, u16);

/// Queued replies: by (id, sequence), and in arrival order.
#[derive(Debug, Default)]
struct Items {
    by_key: HashMap<Key, VecDeque<(u64, Reply)>>,
    /// Arrival order; records of replies already taken by key are skipped
    /// (and compacted away when they pile up).
    order: VecDeque<(Key, u64)>,
    len: usize,
    next_serial: u64,
}

impl Items {
    fn push(&mut self, reply: Reply) {
        let key = (reply.id, reply.sequence);
        let serial = self.next_serial;
        self.next_serial += 1;
        self.by_key
            .entry(key)
            .or_default()
            .push_back((serial, reply));
        self.order.push_back((key, serial));
        self.len += 1;
    }

    fn pop_key(&mut self, key: Key) -> Option<(u64, Reply)> {
        let replies = self.by_key.get_mut(&key)?;
        let first = replies.pop_front();
        if replies.is_empty() {
            self.by_key.remove(&key);
        }
        if first.is_some() {
            self.len -= 1;
        }
        first
    }

    fn take(&mut self, key: Key) -> Option<Reply> {
        let (_, reply) = self.pop_key(key)?;
        if self.order.len() > 2 * self.len + 64 {
            let by_key = &self.by_key;
            self.order.retain(|(k, serial)| {
                by_key
                    .get(k)
                    .is_some_and(|q| q.iter().any(|(s, _)| s == serial))
            });
        }
        Some(reply)
    }

    fn take_first(&mut self) -> Option<Reply> {
        while let Some((key, serial)) = self.order.pop_front() {
            let current = self
                .by_key
                .get(&key)
                .and_then(|q| q.front())
                .is_some_and(|(s, _)| *s == serial);
            if current {
                return self.pop_key(key).map(|(_, r)| r);
            }
        }
        None
    }

    fn has(&self, matching: Option<Key>) -> bool {
        match matching {
            Some(key) => self.by_key.contains_key(&key),
            None => self.len > 0,
        }
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct Queue {
    items: Mutex<Items>,
    notify: Notify,
    capacity: usize,
    closed: AtomicBool,
    account: Account,
    /// Messages delivered.
    pub received: AtomicU64,
    /// Messages dropped because the queue (or the tenant's) was full.
    pub drops: AtomicU64,
    /// Echo replies with a foreign payload.
    pub corrupted: AtomicU64,
}

impl Queue {
    /// An empty queue of at most `capacity` messages, charged to `account`.
    pub fn new(capacity: usize, account: Account) -> Queue {
        Queue {
            items: Mutex::new(Items::default()),
            notify: Notify::new(),
            capacity,
            closed: AtomicBool::new(false),
            account,
            received: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
        }
    }

    /// Who this socket's costs go to.
    pub fn account(&self) -> &Account {
        &self.account
    }

    fn items(&self) -> std::sync::MutexGuard<'_, Items> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more request of this socket in flight.
    pub fn start_request(&self) -> Result<(), QuotaExceeded> {
        self.account.tenant.acquire_in_flight()
    }

    /// One request of this socket is no longer in flight (answered,
    /// expired or never sent). The table calls it once per request.
    pub fn settle_request(&self) {
        self.account.tenant.release_in_flight(1);
    }

    /// Adds a reply, or drops and counts it when this queue or the
    /// tenant's queues are full.
    pub fn push(&self, reply: Reply) -> Result<(), Rejected> {
        if self.is_closed() {
            return Err(Rejected::Closed);
        }
        let counters = &self.account.tenant.counters;
        let mut items = self.items();
        if items.len >= self.capacity || !self.account.tenant.acquire_queued() {
            drop(items);
            self.drops.fetch_add(1, Ordering::Relaxed);
            counters.queue_drops.fetch_add(1, Ordering::Relaxed);
            return Err(Rejected::QueueFull);
        }
        items.push(reply);
        drop(items);
        self.received.fetch_add(1, Ordering::Relaxed);
        counters.received.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_waiters();
        Ok(())
    }

    /// Takes the first reply matching `matching` (any when `None`).
    pub fn take(&self, matching: Option<(u16, u16)>) -> Option<Reply> {
        let mut items = self.items();
        let reply = match matching {
            Some(key) => items.take(key),
            None => items.take_first(),
        }?;
        drop(items);
        self.account.tenant.release_queued(1);
        Some(reply)
    }

    /// Takes up to `max` replies, oldest first.
    pub fn take_many(&self, max: usize) -> Vec<Reply> {
        let mut items = self.items();
        let mut taken = Vec::with_capacity(max.min(items.len));
        while taken.len() < max
            && let Some(r) = items.take_first()
        {
            taken.push(r);
        }
        drop(items);
        self.account.tenant.release_queued(taken.len());
        taken
    }

    /// Waits until `take` may find something new, or `deadline` passes.
    /// Returns false on timeout.
    pub async fn wait_until(
        &self,
        deadline: tokio::time::Instant,
        matching: Option<(u16, u16)>,
    ) -> bool {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.items().has(matching) {
                return true;
            }
            if self.is_closed() {
                return false;
            }
            // A deadline already reached (a zero timeout: "what is queued?")
            // returns now; the timer would round it up to its next tick (1 ms).
            if deadline <= tokio::time::Instant::now() {
                return false;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Stops deliveries, gives the queued replies back to the tenant, and
    /// wakes waiters.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let dropped = std::mem::take(&mut *self.items()).len;
        self.account.tenant.release_queued(dropped);
        self.notify.notify_waiters();
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::icmp::tenant::{Quota, TenantState};
    use crate::icmp::types::{Address, Family, TimestampSource};

    fn account(quota: Quota) -> Account {
        let state = TenantState::new("t", quota, Box::new(|_| {}));
        crate::icmp::Tenant {
            state: Arc::new(state),
        }
        .account(Arc::default())
    }

    fn reply(seq: u16) -> Reply {
        Reply {
            source: Address::new("192.0.2.1".parse().unwrap()),
            family: Family::V4,
            id: 1,
            sequence: seq,
            icmp_type: 0,
            code: 0,
            bytes_received: 8,
            received_at_ns: 0,
            timestamp_source: TimestampSource::Kernel,
            rtt_ns: 0,
            ttl: None,
            original_destination: None,
            mtu: None,
            duplicate: false,
        }
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let q = Queue::new(1, account(Quota::default()));
        q.push(reply(1)).unwrap();
        assert_eq!(q.push(reply(2)).unwrap_err(), Rejected::QueueFull);
        assert_eq!(q.drops.load(Ordering::Relaxed), 1);
        assert_eq!(q.take(Some((1, 2))), None);
        assert_eq!(q.take(Some((1, 1))).map(|r| r.sequence), Some(1));
    }

    #[test]
    fn taken_by_key_or_in_arrival_order_and_the_order_stays_compact() {
        let q = Queue::new(100_000, account(Quota::default()));
        for s in 1..=3 {
            q.push(reply(s)).unwrap();
        }
        assert_eq!(q.take(Some((1, 2))).map(|r| r.sequence), Some(2));
        let rest: Vec<u16> = q.take_many(10).iter().map(|r| r.sequence).collect();
        assert_eq!(rest, [1, 3]);
        // A ping-like pattern (push one, take it by key) forever: the
        // arrival-order records of taken replies do not pile up.
        for s in 0..10_000u16 {
            q.push(reply(s)).unwrap();
            q.take(Some((1, s))).unwrap();
        }
        assert!(q.items().order.len() <= 64 + 1, "{}", q.items().order.len());
        assert_eq!(q.take(None), None);
    }

    #[test]
    fn the_tenant_bound_spans_its_sockets() {
        let a = account(Quota {
            queued: 3,
            ..Quota::default()
        });
        let (q1, q2) = (Queue::new(100, a.clone()), Queue::new(100, a.clone()));
        q1.push(reply(1)).unwrap();
        q1.push(reply(2)).unwrap();
        q2.push(reply(3)).unwrap();
        assert_eq!(q2.push(reply(4)).unwrap_err(), Rejected::QueueFull);
        assert_eq!(q1.take_many(10).len(), 2);
        q2.push(reply(4)).unwrap();
        q2.close();
        assert_eq!(a.tenant.counters.queue_drops.load(Ordering::Relaxed), 1);
        // Closing gave its two back: three fit again.
        for s in 5..8 {
            q1.push(reply(s)).unwrap();
        }
    }
}
