//! Who a request comes from: the connecting address, or the last `X-Forwarded-For` hop when the
//! connection comes from one of `server.trusted_proxies` (a reverse proxy on the same machine).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One entry of `server.trusted_proxies`: a CIDR block (`127.0.0.1/8`) or one address (`::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(IpNet);

impl ProxyNet {
    /// Parses `a.b.c.d/n`, `x::y/n` or a bare address (a block of one).
    pub fn parse(text: &str) -> Result<ProxyNet, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(ProxyNet(net));
        }
        text.parse::<IpAddr>()
            .map(|ip| ProxyNet(IpNet::from(ip)))
            .map_err(|_| {
                format!(
                    "{text:?} is not an address or a CIDR block (e.g. \"127.0.0.1/8\", \"::1\")"
                )
            })
    }

    /// Whether `ip` is inside this block (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

impl std::fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ProxyNet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProxyNet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ProxyNet::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The default `server.trusted_proxies`: loopback only.
pub fn loopback() -> Vec<ProxyNet> {
    ["127.0.0.1/8", "::1/128"]
        .iter()
        .filter_map(|t| ProxyNet::parse(t).ok())
        .collect()
}

/// `ip`, with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its IPv4 one.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The client of a request: `peer`, unless `peer` is a trusted proxy and `forwarded_for` (the
/// `X-Forwarded-For` header) ends with an address, which is then the client. Only the last hop is
/// believed: it is the one our own proxy appended; anything before it the client could have sent.
/// Without a peer (a server that does not say), the unspecified address stands for "unknown".
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[ProxyNet],
) -> IpAddr {
    let Some(peer) = peer.map(canonical) else {
        return IpAddr::from([0, 0, 0, 0]);
    };
    if !trusted.iter().any(|net| net.contains(peer)) {
        return peer;
    }
    forwarded_for
        .and_then(|header| header.rsplit(',').next())
        .and_then(|hop| parse_hop(hop.trim()))
        .map_or(peer, canonical)
}

/// An `X-Forwarded-For` entry: an address, possibly `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_last_hop_is_believed_only_from_a_trusted_proxy() {
        let trusted = loopback();
        let xff = Some("10.0.0.1, 203.0.113.7");
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), xff, &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(client_ip(Some(ip("::1")), xff, &trusted), ip("203.0.113.7"));
        assert_eq!(
            client_ip(Some(ip("::ffff:127.0.0.5")), xff, &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_ip(Some(ip("198.51.100.2")), xff, &trusted),
            ip("198.51.100.2")
        );
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), None, &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), Some("garbage"), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), Some("[2001:db8::1]:443"), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(client_ip(None, xff, &trusted), ip("0.0.0.0"));
    }

    #[test]
    fn blocks_and_single_addresses_parse() {
        assert!(
            ProxyNet::parse("10.0.0.0/8")
                .unwrap()
                .contains(ip("10.2.3.4"))
        );
        assert!(ProxyNet::parse("::1").unwrap().contains(ip("::1")));
        assert!(
            !ProxyNet::parse("192.168.1.1")
                .unwrap()
                .contains(ip("192.168.1.2"))
        );
        assert!(ProxyNet::parse("10.0.0.0/33").is_err());
        assert!(ProxyNet::parse("localhost").is_err());
    }
}
