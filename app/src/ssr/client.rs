//! Who is on the other end of a request: the client's address as the server sees it (the connection's peer,
//! or — only when that peer is a proxy the operator listed as trusted — the nearest address in
//! `X-Forwarded-For` that is not such a proxy), and the cookies the browser sent. The server's middleware
//! puts a [`ClientAddr`] in every request; sign-in throttling keys on it.

use std::net::IpAddr;

use mesh::connect::IpNet;

use super::auth::{Attempter, DEVICE_COOKIE};

/// The client's address, set on every request by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The throttling key: the address itself, IPv6 by its /64 (one host usually holds a whole /64).
    pub fn key(&self) -> String {
        match self.0 {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = a.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

/// The client of a request that came from `peer`.
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Walk from the right: each trusted proxy appended the address it saw.
    let mut client = peer;
    if let Some(list) = forwarded_for {
        for part in list.rsplit(',').take(16) {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !is_trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    client
}

/// The nonce of one response's Content-Security-Policy, set on the request by the server's guard; pages give
/// it to their inline scripts (Leptos' `use_nonce`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspNonce(pub std::sync::Arc<str>);

impl CspNonce {
    /// 128 random bits, base64url.
    pub fn new() -> CspNonce {
        use base64::Engine;
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        CspNonce(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(b)
                .into(),
        )
    }
}

impl Default for CspNonce {
    fn default() -> Self {
        CspNonce::new()
    }
}

/// A cookie's value from the request's headers.
pub fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Who is making the current server-function request (for throttling): address and device cookie.
pub fn attempter() -> Attempter {
    let parts = leptos::prelude::use_context::<http::request::Parts>();
    let source = parts
        .as_ref()
        .and_then(|p| p.extensions.get::<ClientAddr>())
        .map(ClientAddr::key)
        .unwrap_or_else(|| "unknown".into());
    let device = parts
        .as_ref()
        .and_then(|p| cookie(&p.headers, DEVICE_COOKIE));
    Attempter { source, device }
}

/// The client's address of the current server-function request, for the audit ('' when unknown).
pub fn address() -> String {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<ClientAddr>().map(|a| a.0.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: IpNet = "10.0.0.0/8".parse().expect("net");
        let peer: IpAddr = "10.1.2.3".parse().expect("ip");
        let outsider: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(
            resolve(outsider, Some("198.51.100.1"), &[proxy]),
            outsider,
            "a client cannot name its own address"
        );
        assert_eq!(
            resolve(peer, Some("198.51.100.1, 203.0.113.9"), &[proxy]),
            outsider,
            "the nearest untrusted hop"
        );
        assert_eq!(
            resolve(peer, Some("198.51.100.1, 10.9.9.9"), &[proxy]),
            "198.51.100.1".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(resolve(peer, Some("junk"), &[proxy]), peer);
        assert_eq!(resolve(peer, None, &[]), peer);
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_64() {
        let a = ClientAddr("2001:db8:1:2:3:4:5:6".parse().expect("ip"));
        let b = ClientAddr("2001:db8:1:2:ffff::1".parse().expect("ip"));
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr("::ffff:192.0.2.1".parse().expect("ip")).key(),
            "192.0.2.1"
        );
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=1; meshdeck_device=xyz; b=2".parse().expect("header"),
        );
        assert_eq!(cookie(&h, "meshdeck_device").as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
