//! A STUN Binding responder for `dcsend signal --stun ADDR` (RFC 8489 §6.3): it tells each
//! client the address and port its packets came from (XOR-MAPPED-ADDRESS), which is how a
//! peer behind a NAT learns its public mapping (a server-reflexive candidate). Nothing else:
//! no authentication, no TURN, no state beyond the rate limit.
//!
//! [`answer`] is pure (request bytes and source in, response bytes out); [`RateLimit`] is a
//! pure token bucket per source IP; [`serve`] is the loop around UDP sockets. Messages are
//! built and parsed with `rtc-stun`, the STUN code webrtc-rs itself runs.
//!
//! A response is barely larger than its request (32 + 8 bytes of FINGERPRINT against at
//! least 20), and each source IP gets at most [`RateLimit::per_second`] answers a second, so
//! a spoofed source cannot turn the responder into much of an amplifier.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc_stun::xoraddr::XorMappedAddress;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// The largest datagram read; a Binding request is 20 bytes plus a few attributes.
const MAX_DATAGRAM: usize = 1500;

/// The response to `request` from `from`, or `None` when `request` is not a well-formed
/// STUN Binding request (responses, indications, other methods and noise get no answer).
pub fn answer(request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let mut req = Message::new();
    req.raw = request.to_vec();
    req.decode().ok()?;
    if req.typ != BINDING_REQUEST {
        return None;
    }
    let mapped = XorMappedAddress { ip: from.ip(), port: from.port() };
    let setters: [Box<dyn Setter>; 4] = [
        Box::new(req.transaction_id),
        Box::new(BINDING_SUCCESS),
        Box::new(mapped),
        Box::new(FINGERPRINT),
    ];
    let mut resp = Message::new();
    resp.build(&setters).ok()?;
    Some(resp.raw)
}

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
    use rtc_stun::message::{Getter, TransactionId};

    fn binding_request() -> Message {
        let mut m = Message::new();
        let setters: [Box<dyn Setter>; 2] =
            [Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)];
        m.build(&setters).unwrap();
        m
    }

    fn decode(raw: &[u8]) -> Message {
        let mut m = Message::new();
        m.raw = raw.to_vec();
        m.decode().unwrap();
        m
    }

    #[test]
    fn a_binding_request_is_answered_with_the_source_address() {
        for from in ["203.0.113.7:40000", "[2001:db8::1]:3478"] {
            let from: SocketAddr = from.parse().unwrap();
            let req = binding_request();
            let resp = decode(&answer(&req.raw, from).unwrap());
            assert_eq!(resp.typ, BINDING_SUCCESS);
            assert_eq!(resp.transaction_id, req.transaction_id);
            let mut mapped = XorMappedAddress::default();
            mapped.get_from(&resp).unwrap();
            assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
            FINGERPRINT.check(&resp).unwrap();
        }
    }

    #[test]
    fn anything_else_gets_no_answer() {
        let from: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let req = binding_request();
        let resp = answer(&req.raw, from).unwrap();
        assert_eq!(answer(&resp, from), None, "a response is not answered (no loops)");
        assert_eq!(answer(b"", from), None);
        assert_eq!(answer(&[0u8; 19], from), None);
        assert_eq!(answer(&req.raw[..19], from), None);
        assert_eq!(answer(b"GET / HTTP/1.1\r\n\r\n", from), None);
        let mut other = Message::new();
        let alloc = rtc_stun::message::MessageType::new(
            rtc_stun::message::METHOD_ALLOCATE,
            rtc_stun::message::CLASS_REQUEST,
        );
        let setters: [Box<dyn Setter>; 2] = [Box::new(TransactionId::new()), Box::new(alloc)];
        other.build(&setters).unwrap();
        assert_eq!(answer(&other.raw, from), None, "not a TURN server");
    }

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
        // Ten requests at once: the burst (3) is answered, the rest dropped.
        let mut ids = Vec::new();
        for _ in 0..10 {
            let req = binding_request();
            client.send_to(&req.raw, addr).await.unwrap();
            ids.push(req.transaction_id);
        }
        let mut buf = [0u8; 1500];
        let mut answered = Vec::new();
        while let Ok(Ok((n, from))) = tokio::time::timeout(WAIT, client.recv_from(&mut buf)).await {
            assert_eq!(from, addr);
            let resp = decode(&buf[..n]);
            assert!(ids.contains(&resp.transaction_id), "an answer to a request we sent");
            let mut mapped = XorMappedAddress::default();
            mapped.get_from(&resp).unwrap();
            assert_eq!(SocketAddr::new(mapped.ip, mapped.port), client.local_addr().unwrap());
            answered.push(resp.transaction_id);
        }
        // A token more if sending the ten took a second on a loaded machine.
        assert!((3..=4).contains(&answered.len()), "{} of 10 answered", answered.len());
        // A second later there is a token again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let req = binding_request();
        client.send_to(&req.raw, addr).await.unwrap();
        let (n, _) = tokio::time::timeout(WAIT, client.recv_from(&mut buf))
            .await
            .expect("answered after a second")
            .unwrap();
        assert_eq!(decode(&buf[..n]).transaction_id, req.transaction_id);
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
    }
}
