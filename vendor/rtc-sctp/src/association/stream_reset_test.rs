//! Stream resets (RFC 6525) behind queued data (dcsend's patches, see PATCHES.md): two
//! associations wired back to back in memory, every packet marshalled and parsed as on the
//! wire, where one end still holds DATA for a stream it resets, not yet given a TSN because
//! its congestion window is full.

use super::*;

const PPI: PayloadProtocolIdentifier = PayloadProtocolIdentifier::Binary;
/// One DATA chunk per packet: two of these do not fit in one MTU.
const MESSAGE: usize = 1000;

/// Two associations with stream 1 open on both, each knowing where the other's TSNs start.
fn pair() -> Result<(Association, Association)> {
    let mut a = timed_test_association();
    let mut b = timed_test_association();
    a.peer_last_tsn = b.my_next_tsn.wrapping_sub(1);
    b.peer_last_tsn = a.my_next_tsn.wrapping_sub(1);
    a.open_stream(1, PPI)?;
    b.open_stream(1, PPI)?;
    Ok((a, b))
}

fn write(a: &mut Association, messages: usize, now: Instant) -> Result<()> {
    for _ in 0..messages {
        a.stream(1)?
            .write_sctp(now, &Bytes::from(vec![7; MESSAGE]), PPI)?;
    }
    Ok(())
}

fn transmit(a: &mut Association, now: Instant) -> Vec<Packet> {
    let mut packets = vec![];
    while let Some(t) = a.poll_transmit(now) {
        let Payload::RawEncode(raw) = t.message else {
            unreachable!("an association only encodes")
        };
        packets.extend(raw.iter().map(|r| Packet::unmarshal(r).unwrap()));
    }
    packets
}

/// What one end put on stream 1 and said in its reset requests.
#[derive(Default)]
struct Seen {
    /// TSNs of the DATA chunks on stream 1.
    data: Vec<u32>,
    /// "Sender's Last Assigned TSN" of each outgoing reset request naming stream 1.
    resets: Vec<u32>,
}

impl Seen {
    fn record(&mut self, packets: &[Packet]) {
        for c in packets.iter().flat_map(|p| &p.chunks) {
            if let Some(d) = c.as_any().downcast_ref::<ChunkPayloadData>() {
                if d.stream_identifier == 1 && !self.data.contains(&d.tsn) {
                    self.data.push(d.tsn);
                }
            } else if let Some(r) = c.as_any().downcast_ref::<ChunkReconfig>() {
                for p in [&r.param_a, &r.param_b].into_iter().flatten() {
                    if let Some(req) = p.as_any().downcast_ref::<ParamOutgoingResetRequest>() {
                        if req.stream_identifiers.contains(&1) {
                            self.resets.push(req.sender_last_tsn);
                        }
                    }
                }
            }
        }
    }
}

/// Runs the two ends until neither has anything left to send or to time (bounded), each
/// packet delivered, `b`'s messages on stream 1 read by `a`'s application as they come.
/// Returns how many `a` read, and what `b` sent.
fn settle(a: &mut Association, b: &mut Association, mut now: Instant) -> Result<(usize, Seen)> {
    let mut read = 0;
    let mut seen = Seen::default();
    for _ in 0..200 {
        let from_a = transmit(a, now);
        let from_b = transmit(b, now);
        seen.record(&from_b);
        if from_a.is_empty() && from_b.is_empty() {
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            now = next;
            a.handle_timeout(now);
            b.handle_timeout(now);
            continue;
        }
        for p in from_a {
            b.handle_inbound(p, now)?;
        }
        for p in from_b {
            a.handle_inbound(p, now)?;
        }
        while let Ok(mut s) = a.stream(1) {
            match s.read_sctp() {
                Ok(Some(_)) => read += 1,
                _ => break,
            }
        }
    }
    Ok((read, seen))
}

/// Our own reset, asked for with DATA still queued on the stream: the request goes out once
/// that DATA has its TSNs, and its last assigned TSN covers them.
#[test]
fn a_reset_asked_behind_queued_data_covers_it() -> Result<()> {
    let (mut a, mut b) = pair()?;
    b.cwnd = 2 * b.mtu;
    let t0 = Instant::now();
    write(&mut b, 6, t0)?;
    b.stream(1)?.stop(t0)?;
    let (read, seen) = settle(&mut a, &mut b, t0)?;
    assert_eq!(6, seen.data.len(), "{:?}", seen.data);
    let last = *seen.data.iter().max().unwrap();
    assert!(!seen.resets.is_empty());
    assert!(
        seen.resets.iter().all(|&tsn| sna32gte(tsn, last)),
        "reset requests {:?} exclude DATA {:?}",
        seen.resets,
        seen.data
    );
    assert_eq!(6, read, "every message before the reset is delivered");
    Ok(())
}

/// The peer resets the stream while we still hold DATA for it: the reset we answer with
/// (RFC 8831 §6.7: the peer's reset of its outgoing stream makes us reset ours) must not leave
/// that DATA behind it. Upstream built the answer at once, with the TSN last assigned then, and
/// the DATA given TSNs after it reached a stream the peer had already reset.
#[test]
fn a_reset_answered_behind_queued_data_covers_it() -> Result<()> {
    let (mut a, mut b) = pair()?;
    b.cwnd = 2 * b.mtu;
    let t0 = Instant::now();
    write(&mut b, 6, t0)?;
    // Two of b's six messages leave; the other four wait for the window.
    let first = transmit(&mut b, t0);
    let mut seen = Seen::default();
    seen.record(&first);
    assert_eq!(2, seen.data.len());
    // a resets its outgoing stream (its side of the channel closes; `Stream::stop` would also
    // stop this test reading): the request reaches b before b's first packets reach a.
    a.send_reset_request(t0, 1)?;
    for p in transmit(&mut a, t0) {
        b.handle_inbound(p, t0)?;
    }
    for p in first {
        a.handle_inbound(p, t0)?;
    }
    let mut read = 0;
    while let Ok(Some(_)) = a.stream(1).and_then(|mut s| s.read_sctp()) {
        read += 1;
    }
    let (more, rest) = settle(&mut a, &mut b, t0)?;
    seen.data.extend(rest.data);
    seen.resets.extend(rest.resets);
    assert_eq!(6, seen.data.len(), "{:?}", seen.data);
    let last = *seen.data.iter().max().unwrap();
    assert!(!seen.resets.is_empty(), "b answers with a reset of its own");
    assert!(
        seen.resets.iter().all(|&tsn| sna32gte(tsn, last)),
        "reset requests {:?} exclude DATA {:?}",
        seen.resets,
        seen.data
    );
    assert_eq!(
        6,
        read + more,
        "every message before the reset is delivered"
    );
    Ok(())
}
