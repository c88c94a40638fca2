//! A STUN Binding responder for `dcsend signal --stun ADDR` (RFC 8489 §6.3): it tells each
//! client the address and port its packets came from (XOR-MAPPED-ADDRESS), which is how a
//! peer behind a NAT learns its public mapping (a server-reflexive candidate). Nothing else:
//! no authentication, no TURN, no state beyond the rate limit.
//!
//! The message is `peer::stun::answer` (pure, built with `rtc-stun`, which only `peer`
//! imports); [`RateLimit`] is a pure token bucket per source IP; [`serve`] is the loop around
//! UDP sockets.
//!
//! A response is barely larger than its request (32 + 8 bytes of FINGERPRINT against at
//! least 20), and each source IP gets at most [`RateLimit::per_second`] answers a second, so
//! a spoofed source cannot turn the responder into much of an amplifier.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::peer::stun::answer;

/// The largest datagram read; a Binding request is 20 bytes plus a few attributes.
const MAX_DATAGRAM: usize = 1500;

/// At most `per_second` answers a second to each source IP, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained answers per second per source IP.
    pub per_second: f64,
    /// Answers a source may get at once after being quiet.
    pub burst: f64,
}

impl Default for RateLimitConfig {
    /// ICE gathering sends a handful of Binding requests per server (a few retransmissions),
    /// `dcsend doctor` a few more: 20 a second with bursts of 40 is far above both.
    fn default() -> Self {
        Self { per_second: 20.0, burst: 40.0 }
    }
}

/// A token bucket per source IP; [`RateLimit::allow`] takes the time so tests set it.
#[derive(Debug)]
pub struct RateLimit {
    config: RateLimitConfig,
    /// Tokens left and when they were counted.
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

/// Sources tracked at once; past this, buckets that have refilled (their sources quiet for
/// a full burst) are forgotten, which changes nothing they would be allowed.
const MAX_TRACKED: usize = 65_536;

impl RateLimit {
    /// An empty table.
    pub fn new(config: RateLimitConfig) -> Self {
        Self { config, buckets: HashMap::new() }
    }

    /// Whether a request from `ip` at `now` gets an answer (and counts it).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let RateLimitConfig { per_second, burst } = self.config;
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&ip) {
            let full = Duration::from_secs_f64(burst / per_second);
            self.buckets.retain(|_, (_, at)| now.saturating_duration_since(*at) < full);
            if self.buckets.len() >= MAX_TRACKED {
                return false; // a flood from more sources than the table holds
            }
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((burst, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * per_second;
        *tokens = (*tokens + refill).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Answers Binding requests on every socket in `sockets` until `cancel` fires; one rate
/// limit shared by all of them (a client probing two ports counts once per request).
pub async fn serve(
    sockets: Vec<UdpSocket>,
    limit: RateLimitConfig,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let limit = std::sync::Arc::new(std::sync::Mutex::new(RateLimit::new(limit)));
    let mut tasks = tokio::task::JoinSet::new();
    for sock in sockets {
        let (limit, cancel) = (limit.clone(), cancel.clone());
        tasks.spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                let (n, from) = tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    got = sock.recv_from(&mut buf) => match got {
                        Ok(got) => got,
                        // ICMP errors of earlier sends surface here on some systems.
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                        Err(e) => return Err(e),
                    },
                };
                let Some(resp) = answer(&buf[..n], from) else { continue };
                if !limit.lock().unwrap_or_else(|e| e.into_inner()).allow(from.ip(), Instant::now())
                {
                    tracing::debug!(%from, "STUN: rate limit, request dropped");
                    continue;
                }
                if let Err(e) = sock.send_to(&resp, from).await {
                    tracing::debug!(%from, "STUN: answering: {e}");
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            cancel.cancel();
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::stun::{binding_request, mapped_address};

    #[test]
    fn each_source_gets_its_burst_then_its_rate() {
        let config = RateLimitConfig { per_second: 10.0, burst: 5.0 };
        let mut limit = RateLimit::new(config);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        assert!((0..5).all(|_| limit.allow(a, t0)));
        assert!(!limit.allow(a, t0), "the burst is spent");
        assert!(limit.allow(b, t0), "another source has its own bucket");
        assert!(!limit.allow(a, t0 + Duration::from_millis(50)), "half a token");
        assert!(limit.allow(a, t0 + Duration::from_millis(100)), "one token per 100 ms");
        assert!(!limit.allow(a, t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(10);
        assert_eq!((0..10).filter(|_| limit.allow(a, later)).count(), 5, "refills to the burst");
    }

    const WAIT: Duration = Duration::from_millis(500);

    #[tokio::test]
    async fn a_real_udp_client_learns_its_address_and_a_flood_is_cut() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let config = RateLimitConfig { per_second: 1.0, burst: 3.0 };
        let task = tokio::spawn(serve(vec![server], config, cancel.clone()));

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let me = client.local_addr().unwrap();
        // Ten requests at once: the burst (3) is answered, the rest dropped.
        let mut ids = Vec::new();
        for _ in 0..10 {
            let (id, req) = binding_request();
            client.send_to(&req, addr).await.unwrap();
            ids.push(id);
        }
        let mut buf = [0u8; 1500];
        let mut answered = 0;
        while let Ok(Ok((n, from))) = tokio::time::timeout(WAIT, client.recv_from(&mut buf)).await {
            assert_eq!(from, addr);
            let mapped = ids.iter().find_map(|id| mapped_address(&buf[..n], *id));
            assert_eq!(mapped, Some(me), "an answer to one of our requests, with our address");
            answered += 1;
        }
        // A token more if sending the ten took a second on a loaded machine.
        assert!((3..=4).contains(&answered), "{answered} of 10 answered");
        // A second later there is a token again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (id, req) = binding_request();
        client.send_to(&req, addr).await.unwrap();
        let got = tokio::time::timeout(WAIT, client.recv_from(&mut buf)).await;
        let (n, _) = got.expect("answered after a second").unwrap();
        assert_eq!(mapped_address(&buf[..n], id), Some(me));
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
    }
}
