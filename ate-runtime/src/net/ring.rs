//! Which server holds a chain: rendezvous (highest random weight) hashing of the chain key over
//! the configured servers. Every client and server with the same list agrees, and adding or
//! removing a server moves only the chains it gains or held.

use crate::crypto::Hash;

/// Servers, each named by its base URL (`ws://host:port`), among which chains are spread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    servers: Vec<String>,
}

impl Ring {
    /// A ring of `servers` (base URLs; duplicates and a trailing `/` are ignored).
    pub fn new<I, S>(servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut servers: Vec<String> = servers
            .into_iter()
            .map(|s| s.into().trim_end_matches('/').to_string())
            .collect();
        servers.sort();
        servers.dedup();
        Ring { servers }
    }

    /// The servers, sorted.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// Whether the ring names no server.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The server that holds `chain`, or `None` for an empty ring.
    pub fn owner(&self, chain: &str) -> Option<&str> {
        self.servers
            .iter()
            .max_by_key(|s| score(chain, s))
            .map(String::as_str)
    }

    /// The URL of `chain` on its server (`<owner>/db/<chain>`), or `None` for an empty ring.
    pub fn url_of(&self, chain: &str) -> Option<String> {
        self.owner(chain).map(|o| format!("{o}/db/{chain}"))
    }

    /// The ring of every address one DNS name has: `host:port` is looked up, and each address
    /// it resolves to is a server, `<scheme>://<address>` (the way one name can front a
    /// cluster). Servers and clients resolving the same name agree on the ring.
    ///
    /// # Errors
    ///
    /// The lookup's error, or [`std::io::ErrorKind::NotFound`] when the name has no address.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only looks up.
    pub async fn resolve(host_port: &str, scheme: &str) -> std::io::Result<Ring> {
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(host_port).await?.collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host_port} has no address"),
            ));
        }
        Ok(Ring::new(
            addrs.into_iter().map(|a| format!("{scheme}://{a}")),
        ))
    }
}

/// The weight of `server` for `chain`: the first 8 bytes of SHA3-256 over both, each length
/// prefixed (so no two pairs share an input).
fn score(chain: &str, server: &str) -> (u64, [u8; 8]) {
    let mut input = Vec::with_capacity(16 + chain.len() + server.len());
    input.extend_from_slice(b"ATE/ring/v1");
    input.extend_from_slice(&(chain.len() as u32).to_le_bytes());
    input.extend_from_slice(chain.as_bytes());
    input.extend_from_slice(&(server.len() as u32).to_le_bytes());
    input.extend_from_slice(server.as_bytes());
    let h = Hash::of(&input);
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_be_bytes(first), first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring3() -> Ring {
        Ring::new(["ws://a:5000", "ws://b:5000/", "ws://c:5000", "ws://a:5000"])
    }

    #[tokio::test]
    async fn a_name_resolves_to_a_server_per_address() {
        let r = Ring::resolve("127.0.0.1:5000", "ws")
            .await
            .expect("resolves");
        assert_eq!(r.servers(), ["ws://127.0.0.1:5000"]);
        assert_eq!(
            r.url_of("bank").as_deref(),
            Some("ws://127.0.0.1:5000/db/bank")
        );
        assert!(Ring::new(Vec::<String>::new()).url_of("bank").is_none());
        assert!(
            Ring::resolve("no-such-host.invalid:5000", "ws")
                .await
                .is_err()
        );
    }

    #[test]
    fn every_list_order_agrees_and_chains_spread() {
        let r = ring3();
        assert_eq!(r.servers().len(), 3);
        let other = Ring::new(["ws://c:5000", "ws://a:5000", "ws://b:5000"]);
        let mut counts = std::collections::HashMap::new();
        for i in 0..3000 {
            let chain = format!("chain-{i}");
            assert_eq!(r.owner(&chain), other.owner(&chain));
            *counts.entry(r.owner(&chain).expect("owner")).or_insert(0) += 1;
        }
        for (_, n) in counts {
            assert!((800..1200).contains(&n), "{n} of 3000 on one server");
        }
        assert_eq!(Ring::new(Vec::<String>::new()).owner("x"), None);
    }

    #[test]
    fn removing_a_server_moves_only_its_chains() {
        let r = ring3();
        let two = Ring::new(["ws://a:5000", "ws://c:5000"]);
        for i in 0..1000 {
            let chain = format!("c{i}");
            let before = r.owner(&chain).expect("owner");
            if before != "ws://b:5000" {
                assert_eq!(two.owner(&chain), Some(before));
            }
        }
    }
}
