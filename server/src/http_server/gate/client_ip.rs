//! The client's address for rate limiting: the TCP peer, or — only when the peer
//! is a trusted proxy (`HTTP_TRUSTED_PROXIES`) — the nearest untrusted address in
//! `X-Forwarded-For`. Believing that header from anyone would let a client pick
//! its own rate-limit bucket.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The caller's address, put into the request's extensions for the layers after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The rate-limit bucket of an unauthenticated caller: `ip:<IPv4>`, or `ip:<prefix>/64` for
    /// IPv6, where one subscriber usually holds a whole /64 and could otherwise take a fresh
    /// bucket per address (`ip:unknown` if [`resolve`] did not run).
    pub fn bucket(extensions: &Extensions) -> String {
        Self::bucket_of(extensions.get::<ClientIp>().copied())
    }

    /// [`ClientIp::bucket`] of an address taken out of the extensions.
    pub fn bucket_of(ip: Option<ClientIp>) -> String {
        match ip {
            None => "ip:unknown".to_string(),
            Some(ClientIp(IpAddr::V4(ip))) => format!("ip:{ip}"),
            Some(ClientIp(IpAddr::V6(ip))) => {
                let prefix = u128::from(ip) & (u128::MAX << 64);
                format!("ip:{}/64", std::net::Ipv6Addr::from(prefix))
            }
        }
    }
}

/// `HTTP_TRUSTED_PROXIES`: the proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

/// The layer: resolves [`ClientIp`] once for every layer after it.
pub async fn resolve(
    State(trusted): State<Arc<TrustedProxies>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = client_ip(peer, request.headers(), &trusted.0);
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(&peer_ip) {
        return peer_ip;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .flat_map(|v| v.split(','))
        .collect();
    // Walk from the proxy nearest to us outward; the first hop we do not trust is the client as
    // far as we can tell. An entry we cannot read ends the walk: what lies beyond it was not
    // written by a proxy we trust, so the address we know (the peer) is used.
    for entry in forwarded.iter().rev() {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip.to_canonical()) => continue,
            Ok(ip) => return ip.to_canonical(),
            Err(_) => return peer_ip,
        }
    }
    peer_ip
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn untrusted_peers_cannot_choose_their_address() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(peer, &h("1.2.3.4"), &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(peer, &h("6.6.6.6, 198.51.100.7, 10.1.1.1"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, &HeaderMap::new(), &trusted),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, &h("garbage"), &trusted),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn an_unreadable_entry_ends_the_walk() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // Skipping the garbage would let the client choose 6.6.6.6 as its bucket.
        assert_eq!(
            client_ip(peer, &h("6.6.6.6, garbage, 10.1.1.1"), &trusted),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_clients_share_their_64_bucket() {
        let bucket = |ip: &str| {
            let mut e = Extensions::new();
            e.insert(ClientIp(ip.parse().unwrap()));
            ClientIp::bucket(&e)
        };
        assert_eq!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:2:ffff::9"));
        assert_eq!(bucket("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_ne!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:3::1"));
        assert_eq!(bucket("192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(ClientIp::bucket(&Extensions::new()), "ip:unknown");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_header(xff in "\\PC*") {
            let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
            let trusted: Vec<IpNet> = vec!["0.0.0.0/0".parse().unwrap()];
            if let Ok(v) = xff.parse() {
                let mut headers = HeaderMap::new();
                headers.insert("x-forwarded-for", v);
                let _ = client_ip(peer, &headers, &trusted);
            }
        }
    }
}
