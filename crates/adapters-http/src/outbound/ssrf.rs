//! The SSRF guard. Webhook URLs are chosen by customers, so the sender must
//! not reach the service's own network: [`is_forbidden`] says which addresses
//! are not globally routable, and [`DestinationGuard`] applies that rule, with
//! the configured allow-list, to the addresses the client connects to.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use ipnet::IpNet;
use thiserror::Error;
use tower_service::Service;

/// A destination the SSRF guard refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("blocked: {ip} is {reason}; add it to delivery.allow_networks to allow it")]
pub struct Blocked {
    /// The address refused.
    pub ip: IpAddr,
    /// What [`is_forbidden`] said, e.g. "a loopback address".
    pub reason: &'static str,
}

/// Why [`DestinationGuard::lookup`] found nothing to connect to.
#[derive(Debug, Error)]
pub enum ResolveError {
    /// Every address of the name is forbidden; the first one is named.
    #[error(transparent)]
    Blocked(#[from] Blocked),
    /// The system resolver failed.
    #[error("DNS lookup of {host} failed: {source}")]
    Lookup {
        /// The name looked up.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The name resolved to no address at all.
    #[error("DNS lookup of {host} found no address")]
    NoAddress {
        /// The name looked up.
        host: String,
    },
}

/// The SSRF guard: [`is_forbidden`] plus the allow-list. It is also the HTTP
/// client's resolver (a `tower` service of names), so the check runs on the
/// addresses the client will connect to, whatever name the URL holds.
///
/// Cheap to clone: clones share the allow-list.
#[derive(Debug, Clone, Default)]
pub struct DestinationGuard {
    allow_networks: Arc<[IpNet]>,
}

impl DestinationGuard {
    /// A guard that lets through, besides global addresses, those in
    /// `allow_networks` (`delivery.allow_networks`).
    ///
    /// ```
    /// use webhooks_adapters_http::DestinationGuard;
    /// let guard = DestinationGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
    /// assert!(guard.check("127.0.0.1".parse().unwrap()).is_ok());
    /// assert!(guard.check("10.0.0.1".parse().unwrap()).is_err());
    /// ```
    pub fn new(allow_networks: Vec<IpNet>) -> Self {
        Self {
            allow_networks: allow_networks.into(),
        }
    }

    /// Whether the sender may connect to `ip`. An IPv4-mapped IPv6 address
    /// counts as its IPv4 address for the allow-list too.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let Some(reason) = is_forbidden(ip) else {
            return Ok(());
        };
        let canonical = ip.to_canonical();
        let allowed = self
            .allow_networks
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical));
        if allowed {
            Ok(())
        } else {
            Err(Blocked { ip, reason })
        }
    }

    /// Resolves `host` with the system resolver and keeps the addresses
    /// [`check`](Self::check) lets through, in the resolver's order. A name
    /// with a public and a private address connects to the public one only.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let found =
            tokio::net::lookup_host((host, 0))
                .await
                .map_err(|source| ResolveError::Lookup {
                    host: host.to_owned(),
                    source,
                })?;
        let mut allowed = Vec::new();
        let mut first_blocked = None;
        for ip in found.map(|addr| addr.ip()) {
            match self.check(ip) {
                Ok(()) if !allowed.contains(&ip) => allowed.push(ip),
                Ok(()) => {}
                Err(blocked) => {
                    first_blocked.get_or_insert(blocked);
                }
            }
        }
        match (allowed.is_empty(), first_blocked) {
            (false, _) => Ok(allowed),
            (true, Some(blocked)) => Err(ResolveError::Blocked(blocked)),
            (true, None) => Err(ResolveError::NoAddress {
                host: host.to_owned(),
            }),
        }
    }
}

/// The client's resolver: the addresses of a name that the guard lets
/// through, in the resolver's order.
impl Service<Name> for DestinationGuard {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ResolveError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ResolveError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.clone();
        Box::pin(async move {
            let ips = guard.lookup(name.as_str()).await?;
            // Port 0: the connector puts in the URL's port.
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(addrs.into_iter())
        })
    }
}

const UNSPECIFIED: &str = "an unspecified address";
const LOOPBACK: &str = "a loopback address";
const PRIVATE: &str = "a private address";
const LINK_LOCAL: &str = "a link-local address";
const SHARED: &str = "a shared (CGNAT) address";
const MULTICAST: &str = "a multicast address";
const BROADCAST: &str = "a broadcast address";
const DOCUMENTATION: &str = "a documentation address";
const BENCHMARKING: &str = "a benchmarking address";
const RESERVED: &str = "a reserved address";

/// IPv4 ranges that are not globally routable, first match wins
/// (IANA special-purpose registry).
const FORBIDDEN_V4: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 32, UNSPECIFIED),
    ([255, 255, 255, 255], 32, BROADCAST),
    ([0, 0, 0, 0], 8, RESERVED), // "this network"
    ([10, 0, 0, 0], 8, PRIVATE),
    ([100, 64, 0, 0], 10, SHARED),
    ([127, 0, 0, 0], 8, LOOPBACK),
    ([169, 254, 0, 0], 16, LINK_LOCAL), // includes the cloud metadata 169.254.169.254
    ([172, 16, 0, 0], 12, PRIVATE),
    ([192, 0, 0, 0], 24, RESERVED), // IETF protocol assignments
    ([192, 0, 2, 0], 24, DOCUMENTATION),
    ([192, 168, 0, 0], 16, PRIVATE),
    ([198, 18, 0, 0], 15, BENCHMARKING),
    ([198, 51, 100, 0], 24, DOCUMENTATION),
    ([203, 0, 113, 0], 24, DOCUMENTATION),
    ([224, 0, 0, 0], 4, MULTICAST),
    ([240, 0, 0, 0], 4, RESERVED),
];

/// IPv6 ranges that are not globally routable, first match wins. Ranges that
/// embed an IPv4 address are handled before this table.
const FORBIDDEN_V6: &[(u128, u8, &str)] = &[
    (0, 128, UNSPECIFIED),
    (1, 128, LOOPBACK),
    (0x0064_ff9b_0001 << 80, 48, RESERVED), // local-use NAT64
    (0x0100 << 112, 64, RESERVED),          // discard-only
    (0x2001_0db8 << 96, 32, DOCUMENTATION),
    (0x2001_0002 << 96, 48, BENCHMARKING),
    (0x2001 << 112, 23, RESERVED), // IETF protocol assignments, Teredo
    (0x3fff << 112, 20, DOCUMENTATION),
    (0xfc00 << 112, 7, PRIVATE), // unique local
    (0xfe80 << 112, 10, LINK_LOCAL),
    (0xfec0 << 112, 10, PRIVATE), // site-local, deprecated
    (0xff00 << 112, 8, MULTICAST),
];

/// Why the sender must not connect to `ip` unless the allow-list covers it,
/// or `None` for a globally routable address.
///
/// Refused: loopback, private (RFC 1918, IPv6 unique local), link-local
/// (with 169.254.169.254), CGNAT, multicast, unspecified, broadcast,
/// documentation, benchmarking and reserved ranges, and every IPv6 address
/// outside global unicast `2000::/3`. An IPv6 address that embeds an IPv4
/// one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
/// `64:ff9b::/96`, 6to4 `2002::/16`) is judged by that IPv4 address, since
/// that is where the packets end up.
///
/// ```
/// use webhooks_adapters_http::is_forbidden;
/// assert_eq!(is_forbidden("127.0.0.1".parse().unwrap()), Some("a loopback address"));
/// assert_eq!(is_forbidden("::ffff:10.0.0.1".parse().unwrap()), Some("a private address"));
/// assert_eq!(is_forbidden("93.184.215.14".parse().unwrap()), None);
/// ```
pub fn is_forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    FORBIDDEN_V4
        .iter()
        .find(|(network, len, _)| same_prefix_v4(bits, u32::from_be_bytes(*network), *len))
        .map(|(_, _, reason)| *reason)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    if let Some(embedded) = embedded_v4(bits) {
        return forbidden_v4(embedded);
    }
    let listed = FORBIDDEN_V6
        .iter()
        .find(|(network, len, _)| same_prefix_v6(bits, *network, *len))
        .map(|(_, _, reason)| *reason);
    match listed {
        Some(reason) => Some(reason),
        None if same_prefix_v6(bits, 0x2000 << 112, 3) => None,
        None => Some(RESERVED),
    }
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it.
fn embedded_v4(bits: u128) -> Option<Ipv4Addr> {
    // Truncating casts pick the embedded 32 bits on purpose.
    let low = Ipv4Addr::from(bits as u32);
    if same_prefix_v6(bits, 0xffff << 32, 96) || same_prefix_v6(bits, 0x0064_ff9b << 96, 96) {
        return Some(low);
    }
    // IPv4-compatible, except :: and ::1, which are themselves.
    if same_prefix_v6(bits, 0, 96) && bits > 1 {
        return Some(low);
    }
    if same_prefix_v6(bits, 0x2002 << 112, 16) {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

fn same_prefix_v4(a: u32, b: u32, len: u8) -> bool {
    let shift = 32 - u32::from(len.min(32));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

fn same_prefix_v6(a: u128, b: u128, len: u8) -> bool {
    let shift = 128 - u32::from(len.min(128));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(ip: &str) -> Option<&'static str> {
        is_forbidden(ip.parse().unwrap())
    }

    #[test]
    fn loopback_is_forbidden() {
        for ip in ["127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(reason(ip), Some(LOOPBACK), "{ip}");
        }
    }

    #[test]
    fn private_ranges_are_forbidden() {
        for ip in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
            "fc00::1",
            "fd12:3456:789a::1",
            "fec0::1",
        ] {
            assert_eq!(reason(ip), Some(PRIVATE), "{ip}");
        }
    }

    #[test]
    fn neighbours_of_private_ranges_are_allowed() {
        for ip in [
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn link_local_and_the_metadata_endpoint_are_forbidden() {
        for ip in ["169.254.0.1", "169.254.169.254", "fe80::1", "febf::1"] {
            assert_eq!(reason(ip), Some(LINK_LOCAL), "{ip}");
        }
    }

    #[test]
    fn cgnat_is_forbidden() {
        assert_eq!(reason("100.64.0.1"), Some(SHARED));
        assert_eq!(reason("100.127.255.255"), Some(SHARED));
        assert_eq!(reason("100.63.255.255"), None);
        assert_eq!(reason("100.128.0.0"), None);
    }

    #[test]
    fn multicast_unspecified_and_broadcast_are_forbidden() {
        assert_eq!(reason("224.0.0.1"), Some(MULTICAST));
        assert_eq!(reason("239.255.255.255"), Some(MULTICAST));
        assert_eq!(reason("ff02::1"), Some(MULTICAST));
        assert_eq!(reason("0.0.0.0"), Some(UNSPECIFIED));
        assert_eq!(reason("::"), Some(UNSPECIFIED));
        assert_eq!(reason("255.255.255.255"), Some(BROADCAST));
    }

    #[test]
    fn documentation_benchmarking_and_reserved_ranges_are_forbidden() {
        for ip in [
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "2001:db8::1",
            "3fff::1",
        ] {
            assert_eq!(reason(ip), Some(DOCUMENTATION), "{ip}");
        }
        for ip in ["198.18.0.1", "198.19.255.255", "2001:2::1"] {
            assert_eq!(reason(ip), Some(BENCHMARKING), "{ip}");
        }
        for ip in [
            "0.1.2.3",
            "192.0.0.8",
            "240.0.0.1",
            "255.255.255.254",
            "100::1",
            "2001::1",
            "64:ff9b:1::1",
            "4000::1",
        ] {
            assert_eq!(reason(ip), Some(RESERVED), "{ip}");
        }
        assert_eq!(reason("198.17.255.255"), None);
        assert_eq!(reason("198.20.0.0"), None);
    }

    #[test]
    fn ipv6_forms_that_embed_ipv4_are_judged_by_the_ipv4_address() {
        assert_eq!(reason("::ffff:169.254.169.254"), Some(LINK_LOCAL));
        assert_eq!(reason("::ffff:192.168.1.1"), Some(PRIVATE));
        assert_eq!(reason("::127.0.0.1"), Some(LOOPBACK));
        assert_eq!(reason("64:ff9b::7f00:1"), Some(LOOPBACK));
        assert_eq!(reason("64:ff9b::a00:1"), Some(PRIVATE));
        assert_eq!(reason("2002:7f00:1::1"), Some(LOOPBACK));
        assert_eq!(reason("::ffff:8.8.8.8"), None);
        assert_eq!(reason("64:ff9b::808:808"), None);
        assert_eq!(reason("2002:808:808::1"), None);
    }

    #[test]
    fn global_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn the_allow_list_lets_covered_addresses_through() {
        let guard = DestinationGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(guard.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(guard.check("::ffff:127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(guard.check("8.8.8.8".parse().unwrap()), Ok(()));
        let blocked = guard.check("10.1.2.3".parse().unwrap()).unwrap_err();
        assert_eq!(
            blocked.to_string(),
            "blocked: 10.1.2.3 is a private address; add it to delivery.allow_networks to allow it"
        );
        assert!(guard.check("::1".parse().unwrap()).is_err());
    }

    #[test]
    fn an_empty_allow_list_blocks_every_forbidden_address() {
        let guard = DestinationGuard::default();
        assert_eq!(
            guard.check("127.0.0.1".parse().unwrap()).unwrap_err().to_string(),
            "blocked: 127.0.0.1 is a loopback address; add it to delivery.allow_networks to allow it"
        );
    }

    #[tokio::test]
    async fn lookup_of_localhost_is_blocked_without_an_allow_list() {
        let err = DestinationGuard::default()
            .lookup("localhost")
            .await
            .unwrap_err();
        assert!(
            matches!(err, ResolveError::Blocked(b) if b.reason == LOOPBACK),
            "{err}"
        );
    }

    #[tokio::test]
    async fn lookup_keeps_only_allowed_addresses() {
        let guard = DestinationGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let ips = guard.lookup("localhost").await.unwrap();
        assert!(!ips.is_empty());
        assert!(
            ips.iter().all(|ip| *ip == IpAddr::from([127, 0, 0, 1])),
            "{ips:?}"
        );
    }
}
