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

    // The next packet is lost: the sender's timer fires 200 ms after it left.
    let t1 = t0 + ms(30);
    write(&mut sender, 1, t1)?;
    let lost = data_tsns(&transmit(&mut sender, t1));
    assert_eq!(1, lost.len());
    let deadline = sender.poll_timeout().unwrap();
    assert_eq!(t1 + ms(200), deadline);
    sender.handle_timeout(deadline);
    assert_eq!(lost, data_tsns(&transmit(&mut sender, deadline)));
    Ok(())
}
