//! Loss recovery on a short path (dcsend's patches, see PATCHES.md): a sender and a receiver
//! association wired back to back in memory, every packet marshalled and parsed as on the
//! wire, with chosen packets dropped.

use super::*;

const PPI: PayloadProtocolIdentifier = PayloadProtocolIdentifier::Binary;
/// One DATA chunk per packet: two of these do not fit in one MTU.
const MESSAGE: usize = 1000;

/// A sender and a receiver on one reliable stream, with the sender's RTO left to its RTT
/// measurements (the shared test association pins it) and room for `window` packets in flight.
fn link(window: u32) -> Result<(Association, Association)> {
    let mut sender = timed_test_association();
    let mut receiver = timed_test_association();
    sender.rto_mgr = RtoManager::new();
    sender.cwnd = window * sender.mtu;
    sender.rwnd = window * sender.mtu;
    receiver.peer_last_tsn = sender.my_next_tsn.wrapping_sub(1);
    sender.open_stream(1, PPI)?;
    receiver.open_stream(1, PPI)?;
    Ok((sender, receiver))
}

fn write(sender: &mut Association, messages: usize, now: Instant) -> Result<()> {
    for _ in 0..messages {
        sender
            .stream(1)?
            .write_sctp(now, &Bytes::from(vec![7; MESSAGE]), PPI)?;
    }
    Ok(())
}

/// Everything `a` would put on the wire at `now`, parsed.
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

fn receive(a: &mut Association, packets: Vec<Packet>, now: Instant) -> Result<()> {
    for p in packets {
        a.handle_inbound(p, now)?;
    }
    Ok(())
}

fn data_tsns(packets: &[Packet]) -> Vec<u32> {
    packets
        .iter()
        .flat_map(|p| &p.chunks)
        .filter_map(|c| c.as_any().downcast_ref::<ChunkPayloadData>())
        .map(|c| c.tsn)
        .collect()
}

#[test]
fn a_lost_packet_on_a_short_path_is_retransmitted_after_200ms() -> Result<()> {
    let (mut sender, mut receiver) = link(16)?;
    let t0 = Instant::now();
    let ms = Duration::from_millis;

    // One packet crosses a 1 ms path; the receiver holds its SACK for the delayed-ACK
    // interval, which must be short next to the RTO floor.
    write(&mut sender, 1, t0)?;
    let first = transmit(&mut sender, t0);
    receive(&mut receiver, first, t0 + ms(1))?;
    assert!(transmit(&mut receiver, t0 + ms(1)).is_empty());
    let held = receiver.poll_timeout().unwrap();
    assert_eq!(t0 + ms(21), held, "the SACK is held 20 ms");
    receiver.handle_timeout(held);
    let sack = transmit(&mut receiver, held);
    receive(&mut sender, sack, held + ms(1))?;

    // The next packet is lost: the sender's T3-rtx timer fires 200 ms after it left (a
    // tail-loss probe goes out before, see `a_lost_tail_is_probed_long_before_the_rto`).
    let t1 = t0 + ms(30);
    write(&mut sender, 1, t1)?;
    let lost = data_tsns(&transmit(&mut sender, t1));
    assert_eq!(1, lost.len());
    let deadline = sender.timers.get(Timer::T3RTX).unwrap();
    assert_eq!(t1 + ms(200), deadline);
    sender.handle_timeout(deadline);
    assert_eq!(lost, data_tsns(&transmit(&mut sender, deadline)));
    Ok(())
}

/// Sends `count` packets and delivers them to the receiver in order except those at the
/// `lost` indexes, each packet SACKed on its own and each SACK processed by the sender at once
/// (a short path). Returns the TSNs sent, and the packets the sender retransmitted on those
/// SACKs (no timer has fired).
fn window_with_losses(
    sender: &mut Association,
    receiver: &mut Association,
    count: usize,
    lost: &[usize],
    now: Instant,
) -> Result<(Vec<u32>, Vec<Packet>)> {
    write(sender, count, now)?;
    let packets = transmit(sender, now);
    let sent = data_tsns(&packets);
    assert_eq!(count, sent.len());
    assert_eq!(count, packets.len(), "one DATA chunk per packet");
    let mut retransmitted = vec![];
    for (i, p) in packets.into_iter().enumerate() {
        if lost.contains(&i) {
            continue;
        }
        receive(receiver, vec![p], now)?;
        let sacks = transmit(receiver, now);
        receive(sender, sacks, now)?;
        retransmitted.extend(transmit(sender, now));
    }
    Ok((sent, retransmitted))
}

/// Delivers `packets` to the receiver and its SACKs (delayed or not) to the sender; returns
/// what the sender sends next.
fn round_trip(
    sender: &mut Association,
    receiver: &mut Association,
    packets: Vec<Packet>,
    now: Instant,
) -> Result<Vec<Packet>> {
    receive(receiver, packets, now)?;
    let mut sacks = transmit(receiver, now);
    if sacks.is_empty() {
        let held = receiver.poll_timeout().unwrap();
        receiver.handle_timeout(held);
        sacks = transmit(receiver, held);
    }
    receive(sender, sacks, now)?;
    Ok(transmit(sender, now))
}

#[test]
fn a_second_loss_during_fast_recovery_is_fast_retransmitted() -> Result<()> {
    // Two losses in one window, far apart: the first puts the sender in Fast Recovery, and
    // the SACKs that follow must keep counting misses for the second.
    let (mut sender, mut receiver) = link(32)?;
    let now = Instant::now();
    let (sent, repairs) = window_with_losses(&mut sender, &mut receiver, 20, &[0, 9], now)?;
    assert_eq!(vec![sent[0], sent[9]], data_tsns(&repairs));

    // The repairs arrive: everything is acknowledged without a timer.
    let next = round_trip(&mut sender, &mut receiver, repairs, now)?;
    assert!(next.is_empty());
    assert!(sender.inflight_queue.is_empty());
    assert!(sender.timers.get(Timer::T3RTX).is_none());
    Ok(())
}

#[test]
fn fast_recovery_lasts_the_window_and_cuts_cwnd_once() -> Result<()> {
    // Two losses in one window, the second near its end with only two packets after it. On
    // this zero-delay link RACK (patch 6) declares each lost as soon as a packet sent after it
    // is SACKed, so both repairs go out during the window (with miss counting alone, the
    // second waited for the SACK of the first repair); either way cwnd is cut once for the
    // window, and Fast Recovery lasts until its last TSN is acknowledged.
    let (mut sender, mut receiver) = link(32)?;
    let now = Instant::now();
    let window = sender.cwnd;
    let (sent, repairs) = window_with_losses(&mut sender, &mut receiver, 20, &[0, 17], now)?;
    assert_eq!(vec![sent[0], sent[17]], data_tsns(&repairs));
    assert!(
        sender.in_fast_recovery,
        "the exit point is the last TSN of the window"
    );
    assert_eq!(
        window / 2,
        sender.ssthresh,
        "cwnd is cut once for the window"
    );

    round_trip(&mut sender, &mut receiver, repairs, now)?;
    assert!(sender.inflight_queue.is_empty());
    assert!(!sender.in_fast_recovery);
    Ok(())
}

fn sacks(packets: &[Packet]) -> Vec<&ChunkSelectiveAck> {
    packets
        .iter()
        .flat_map(|p| &p.chunks)
        .filter_map(|c| c.as_any().downcast_ref::<ChunkSelectiveAck>())
        .collect()
}

#[test]
fn the_packets_after_a_new_gap_get_their_own_sacks() -> Result<()> {
    // webrtc-rs ingests up to 64 datagrams before it polls for output. Eight packets follow
    // a lost one in the same burst: the first four get a SACK each, so the sender counts
    // three miss indications from this one burst and fast retransmits; the other four share
    // one SACK.
    let (mut sender, mut receiver) = link(32)?;
    let now = Instant::now();
    write(&mut sender, 9, now)?;
    let mut packets = transmit(&mut sender, now);
    let sent = data_tsns(&packets);
    let lost = packets.remove(0);

    receive(&mut receiver, packets, now)?;
    let burst = transmit(&mut receiver, now);
    let reported = sacks(&burst);
    assert!(
        reported
            .iter()
            .all(|s| s.cumulative_tsn_ack == sent[0].wrapping_sub(1))
    );
    assert_eq!(
        vec![2, 3, 4, 5, 9],
        reported
            .iter()
            .map(|s| s.gap_ack_blocks[0].end)
            .collect::<Vec<u16>>(),
        "one SACK for each of the four packets after the gap, one for the rest"
    );

    receive(&mut sender, burst, now)?;
    let repair = transmit(&mut sender, now);
    assert_eq!(vec![sent[0]], data_tsns(&repair));

    // The repair fills the gap: acknowledged at once, not after the delayed-SACK timer.
    assert_eq!(data_tsns(&[lost]), data_tsns(&repair));
    receive(&mut receiver, repair, now)?;
    let answer = transmit(&mut receiver, now);
    let filled = sacks(&answer);
    assert_eq!(1, filled.len());
    assert_eq!(sent[8], filled[0].cumulative_tsn_ack);
    assert!(filled[0].gap_ack_blocks.is_empty());
    Ok(())
}

#[test]
fn a_duplicate_is_sacked_at_once_and_reported() -> Result<()> {
    // The SACK for a packet was lost and the sender retransmitted it: the receiver answers
    // the duplicate at once (RFC 9260 6.2) and lists it in the SACK's duplicate TSNs.
    let (mut sender, mut receiver) = link(16)?;
    let now = Instant::now();
    write(&mut sender, 1, now)?;
    let packets = transmit(&mut sender, now);
    let tsn = data_tsns(&packets)[0];
    let copy = Packet::unmarshal(&packets[0].marshal()?)?;
    receive(&mut receiver, packets, now)?;
    let held = receiver.poll_timeout().unwrap();
    receiver.handle_timeout(held);
    assert_eq!(1, sacks(&transmit(&mut receiver, held)).len(), "then lost");

    receive(&mut receiver, vec![copy], held)?;
    let packets = transmit(&mut receiver, held);
    let answer = sacks(&packets);
    assert_eq!(1, answer.len(), "no delay for a duplicate");
    assert_eq!(tsn, answer[0].cumulative_tsn_ack);
    assert_eq!(vec![tsn], answer[0].duplicate_tsn);
    Ok(())
}

/// RACK-TLP (RFC 8985): the last two of three packets are lost, so no SACK reports them
/// missing. A tail-loss probe (the highest outstanding TSN again) goes out two round trips
/// (at least 10 ms) after the last SACK instead of waiting 200 ms for the T3-rtx timer; its
/// SACK shows the gap, and RACK declares the other lost packet lost at once: it was sent
/// before the probe, which was delivered, and a round trip has passed.
#[test]
fn a_lost_tail_is_probed_long_before_the_rto() -> Result<()> {
    let (mut sender, mut receiver) = link(16)?;
    let t0 = Instant::now();
    let ms = Duration::from_millis;

    write(&mut sender, 3, t0)?;
    let mut packets = transmit(&mut sender, t0);
    let sent = data_tsns(&packets);
    assert_eq!(3, sent.len());
    packets.truncate(1);
    let after_first = round_trip(&mut sender, &mut receiver, packets, t0 + ms(2))?;
    assert!(data_tsns(&after_first).is_empty());

    let probe_at = sender.poll_timeout().unwrap();
    assert!(
        probe_at <= t0 + ms(2) + ms(10),
        "a probe is due {:?} after the last SACK, not at the 200 ms RTO",
        probe_at - (t0 + ms(2))
    );
    sender.handle_timeout(probe_at);
    let probe = transmit(&mut sender, probe_at);
    assert_eq!(
        vec![sent[2]],
        data_tsns(&probe),
        "the probe is the highest TSN"
    );

    let repair = round_trip(&mut sender, &mut receiver, probe, probe_at + ms(2))?;
    assert_eq!(
        vec![sent[1]],
        data_tsns(&repair),
        "RACK repairs the other loss at once"
    );
    assert!(
        sender.in_fast_recovery,
        "the loss cuts cwnd once, as fast retransmit does"
    );
    Ok(())
}

/// RACK (RFC 8985): a lost packet with a single packet behind it gets one miss indication,
/// never the three fast retransmit needs, and used to wait for the T3-rtx timer (200 ms). It
/// is declared lost once the packet sent after it is SACKed and a round trip plus the
/// reordering window has passed since it left.
#[test]
fn a_loss_with_one_packet_behind_it_is_repaired_within_a_round_trip() -> Result<()> {
    let (mut sender, mut receiver) = link(16)?;
    let t0 = Instant::now();
    let ms = Duration::from_millis;

    // A first round trip gives RACK its shortest RTT (2 ms, so a 0.5 ms reordering window).
    write(&mut sender, 1, t0)?;
    let first = transmit(&mut sender, t0);
    round_trip(&mut sender, &mut receiver, first, t0 + ms(2))?;

    let t1 = t0 + ms(30);
    write(&mut sender, 2, t1)?;
    let mut packets = transmit(&mut sender, t1);
    let sent = data_tsns(&packets);
    assert_eq!(2, sent.len());
    packets.remove(0);
    // The second packet's SACK arrives 1 ms later: the first is not yet a round trip old.
    let early = round_trip(&mut sender, &mut receiver, packets, t1 + ms(1))?;
    assert!(
        data_tsns(&early).is_empty(),
        "within the reordering allowance"
    );
    let due = sender.poll_timeout().unwrap();
    assert!(
        due <= t1 + ms(3),
        "RACK's timer is due {:?} after the send, not at the 200 ms RTO",
        due - t1
    );
    sender.handle_timeout(due);
    assert_eq!(vec![sent[0]], data_tsns(&transmit(&mut sender, due)));
    Ok(())
}

/// A burst of losses, as a full bottleneck queue drops: the first half of a window is lost
/// and the second half arrives. Every lost chunk is out of the flight once marked, so all of
/// them are sent again on the SACKs of that one window, as cwnd allows. Fast retransmission
/// used to send one packet per loss report and then one per SACK that advanced the cumulative
/// ack, so a burst of N losses took N round trips: seconds at a 20 ms RTT.
#[test]
fn a_burst_of_losses_is_repaired_within_a_round_trip() -> Result<()> {
    let (mut sender, mut receiver) = link(64)?;
    let now = Instant::now();
    let lost: Vec<usize> = (0..20).collect();
    let (sent, repairs) = window_with_losses(&mut sender, &mut receiver, 40, &lost, now)?;
    let lost_tsns: Vec<u32> = lost.iter().map(|&i| sent[i]).collect();
    assert_eq!(
        lost_tsns,
        data_tsns(&repairs),
        "every lost chunk, once, in order"
    );
    assert!(sender.in_fast_recovery);
    assert_eq!(32 * sender.mtu, sender.cwnd, "cwnd is cut once");
    assert_eq!(0, sender.inflight_queue.lost_bytes());
    assert!(
        sender.inflight_queue.flight_bytes() <= (sender.cwnd + sender.mtu) as usize,
        "the repairs stay within cwnd, but for the one packet that may ignore it"
    );

    // The repairs arrive: everything is acknowledged without a timer.
    let next = round_trip(&mut sender, &mut receiver, repairs, now)?;
    assert!(data_tsns(&next).is_empty());
    assert!(sender.inflight_queue.is_empty());
    assert!(!sender.in_fast_recovery);
    Ok(())
}

/// Chunks marked lost and not yet sent again go before new DATA, and new DATA goes out only
/// as far as the flight without them allows.
#[test]
fn repairs_go_before_new_data() -> Result<()> {
    let (mut sender, mut receiver) = link(64)?;
    let now = Instant::now();
    let lost: Vec<usize> = (0..20).collect();
    write(&mut sender, 40, now)?;
    let packets = transmit(&mut sender, now);
    let sent = data_tsns(&packets);
    // Three SACKs mark the burst lost; new DATA is waiting meanwhile.
    write(&mut sender, 40, now)?;
    let mut out = vec![];
    for p in packets.into_iter().skip(lost.len()).take(3) {
        receive(&mut receiver, vec![p], now)?;
        let sacks = transmit(&mut receiver, now);
        receive(&mut sender, sacks, now)?;
        out.extend(data_tsns(&transmit(&mut sender, now)));
    }
    let repaired: Vec<u32> = out.iter().copied().filter(|t| sent.contains(t)).collect();
    let first_new = out.iter().position(|t| !sent.contains(t));
    assert!(!repaired.is_empty());
    if let Some(first_new) = first_new {
        assert!(
            out[first_new..].iter().all(|t| !sent.contains(t)),
            "repairs go first: {out:?}"
        );
        assert_eq!(
            0,
            sender.inflight_queue.lost_bytes(),
            "new DATA went out while chunks marked lost waited: {out:?}"
        );
    }
    assert!(sender.inflight_queue.flight_bytes() <= (sender.cwnd + sender.mtu) as usize);
    Ok(())
}
