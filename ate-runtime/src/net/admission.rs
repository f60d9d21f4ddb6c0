//! Who a server lets in: connections counted per client address, checked as a connection is
//! accepted, before the handshake (which costs the server a signature) starts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;

/// The address a client's connections are counted under: an IPv4 address as it is (also when
/// it arrives IPv4-mapped, on a socket listening on `[::]`), and an IPv6 address by its /64
/// prefix, the block one host or one subscriber is commonly given (counting each of its
/// addresses apart would let one host open as many connections as it has addresses).
pub(crate) fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Open connections per client address ([`client_of`]), at most `max` each.
#[derive(Debug)]
pub(crate) struct PerClient {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    /// A table allowing `max` connections per client (at least one).
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(PerClient {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` when its client has `max` open.
    /// The slot is given back when dropped.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let client = client_of(ip);
        let mut open = self.open.lock();
        let count = open.entry(client).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            table: self.clone(),
            client,
        })
    }

    /// How many connections `ip`'s client has open.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        self.open.lock().get(&client_of(ip)).copied().unwrap_or(0)
    }

    /// How many clients have a connection open (the table never holds more).
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.open.lock().len()
    }
}

/// One connection counted for its client; counted no more once dropped.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    table: Arc<PerClient>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock();
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_prefixes() {
        assert_eq!(client_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(client_of(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_of(ip("::1")), ip("::"));
    }

    #[test]
    fn each_client_gets_at_most_max_and_slots_come_back() {
        let table = PerClient::new(2);
        let a = ip("127.0.0.1");
        let first = table.try_acquire(a).expect("first");
        let second = table.try_acquire(a).expect("second");
        assert!(table.try_acquire(a).is_none(), "a third is refused");
        // Other clients are counted apart; addresses of one /64 together.
        let b = table.try_acquire(ip("127.0.0.2")).expect("another client");
        let v6 = table.try_acquire(ip("2001:db8::1")).expect("v6");
        let v6_same = table.try_acquire(ip("2001:db8::2")).expect("same /64");
        assert!(table.try_acquire(ip("2001:db8::3")).is_none());
        assert!(
            table.try_acquire(ip("::ffff:127.0.0.1")).is_none(),
            "mapped"
        );
        assert_eq!(table.open(a), 2);
        drop(first);
        assert_eq!(table.open(a), 1);
        let again = table.try_acquire(a).expect("a slot came back");
        drop((second, again, b, v6, v6_same));
        assert_eq!(table.clients(), 0, "no entry outlives its connections");
        // A limit of 0 counts as 1.
        let one = PerClient::new(0);
        let only = one.try_acquire(a).expect("one");
        assert!(one.try_acquire(a).is_none());
        drop(only);
    }
}
