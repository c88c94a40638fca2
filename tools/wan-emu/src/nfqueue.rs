//! A minimal nfnetlink_queue client: bind queues in copy mode "meta", receive packet ids and
//! lengths, send verdicts (single or batch). Written on `libc` because a delay line needs
//! only the id of each packet: the `nfq` crate keeps every packet's receive buffer alive until
//! its verdict (memory growing with the packets in flight) and has no batch verdict (one
//! system call per packet).
//!
//! Message layout: `include/uapi/linux/netfilter/nfnetlink_queue.h` and `netlink.h`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::delay_line::Verdict;

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CAP_LEN: u16 = 13;

const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;

const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
/// Attribute type bits that are flags, not the type (NLA_F_NESTED, NLA_F_NET_BYTEORDER).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// One queued packet: which queue, its id, its length on the wire (IP header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub queue: u16,
    pub id: u32,
    pub len: u32,
}

/// What one netlink message from the kernel was.
enum Incoming {
    Packet(Packet),
    /// An acknowledgement: 0, or the errno of a refused request.
    Ack(i32),
    Other,
}

/// A netlink socket bound to one or more NFQUEUE queues.
pub struct NfQueue {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// Packets that arrived while a configuration request waited for its ack.
    early: Vec<Packet>,
}

impl NfQueue {
    /// Opens the socket, with a receive buffer of `rcvbuf` bytes (forced past
    /// `net.core.rmem_max` when we may), so a burst does not overflow it: a packet the
    /// kernel cannot hand over is dropped (`user_dropped` in
    /// `/proc/net/netfilter/nfnetlink_queue`).
    pub fn open(rcvbuf: usize) -> io::Result<NfQueue> {
        // SAFETY: plain system calls; the fd is owned from here on.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let len = std::mem::size_of_val(&addr) as libc::socklen_t;
        if unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let size = libc::c_int::try_from(rcvbuf).unwrap_or(libc::c_int::MAX);
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, size)?;
        }
        // Overflow shows in the kernel's counters; an ENOBUFS error would only stop us.
        setsockopt(&fd, libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, 1)?;
        Ok(NfQueue { fd, seq: 0, buf: vec![0; 1 << 16], early: Vec::new() })
    }

    /// Binds queue `queue`: packets sent to it come to this socket, metadata only, and the
    /// kernel holds up to `max_len` of them waiting for a verdict (beyond that it drops).
    pub fn bind(&mut self, queue: u16) -> io::Result<()> {
        self.request(queue, |m| m.attr(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0]))?;
        // struct nfqnl_msg_config_params is packed: __be32 copy_range, __u8 copy_mode.
        self.request(queue, |m| m.attr(NFQA_CFG_PARAMS, &[0, 0, 0, 0, NFQNL_COPY_META]))
    }

    /// Sets how many packets the kernel holds for `queue` before it drops (default 1024).
    pub fn set_max_len(&mut self, queue: u16, max_len: u32) -> io::Result<()> {
        self.request(queue, |m| m.attr(NFQA_CFG_QUEUE_MAXLEN, &max_len.to_be_bytes()))
    }

    /// Sends a configuration request and waits for its ack.
    fn request(&mut self, queue: u16, body: impl FnOnce(&mut MsgBuilder)) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut m = MsgBuilder::new(NFQNL_MSG_CONFIG, libc::NLM_F_ACK as u16, self.seq, queue);
        body(&mut m);
        self.send(m.finish())?;
        loop {
            let n = self.recv_raw(0)?;
            let mut ack = None;
            let mut early = Vec::new();
            for msg in parse(&self.buf[..n]) {
                match msg {
                    Incoming::Ack(errno) => ack = Some(errno),
                    Incoming::Packet(p) => early.push(p),
                    Incoming::Other => {}
                }
            }
            self.early.append(&mut early);
            match ack {
                Some(0) => return Ok(()),
                Some(errno) => return Err(io::Error::from_raw_os_error(errno)),
                None => {}
            }
        }
    }

    /// Receives what is waiting, without blocking, at most `max` packets; calls `each` for
    /// every packet. Returns how many there were (0: nothing waiting).
    pub fn recv(&mut self, max: usize, mut each: impl FnMut(Packet)) -> io::Result<usize> {
        let mut count = 0;
        for p in self.early.drain(..) {
            each(p);
            count += 1;
        }
        while count < max {
            let n = match self.recv_raw(libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                Err(e) => return Err(e),
            };
            for msg in parse(&self.buf[..n]) {
                if let Incoming::Packet(p) = msg {
                    each(p);
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Tells the kernel what to do with queued packets of `queue`.
    pub fn verdict(&mut self, queue: u16, verdict: Verdict) -> io::Result<()> {
        let (kind, verdict, id) = match verdict {
            Verdict::AcceptThrough(id) => (NFQNL_MSG_VERDICT_BATCH, NF_ACCEPT, id),
            Verdict::Drop(id) => (NFQNL_MSG_VERDICT, NF_DROP, id),
        };
        let mut m = MsgBuilder::new(kind, 0, 0, queue);
        // struct nfqnl_msg_verdict_hdr: __be32 verdict, __be32 id.
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&verdict.to_be_bytes());
        hdr[4..].copy_from_slice(&id.to_be_bytes());
        m.attr(NFQA_VERDICT_HDR, &hdr);
        self.send(m.finish())
    }

    /// Waits until a packet may be waiting or `timeout` passed (`None`: no limit), with the
    /// signal mask `sigmask` in force while waiting (`ppoll`), so a signal blocked otherwise
    /// and pending already ends the wait at once. Returns early, without error, on a signal.
    pub fn wait(&self, timeout: Option<Duration>, sigmask: &libc::sigset_t) -> io::Result<()> {
        if !self.early.is_empty() {
            return Ok(());
        }
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: one valid pollfd, a timespec and a sigset that outlive the call.
        if unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, sigmask) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let len = std::mem::size_of_val(&addr) as libc::socklen_t;
        // SAFETY: `msg` and `addr` are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const addr).cast(),
                len,
            )
        };
        if sent < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    fn recv_raw(&mut self, flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe {
            libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len(), flags)
        };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }
}

fn setsockopt(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = std::mem::size_of_val(&value) as libc::socklen_t;
    // SAFETY: `value` is a c_int valid for `len` bytes.
    if unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (&raw const value).cast(), len) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Builds one nfnetlink message: nlmsghdr, nfgenmsg, then attributes.
struct MsgBuilder(Vec<u8>);

impl MsgBuilder {
    fn new(kind: u16, flags: u16, seq: u32, queue: u16) -> Self {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by finish
        b.extend_from_slice(&(NFNL_SUBSYS_QUEUE << 8 | kind).to_ne_bytes());
        b.extend_from_slice(&(libc::NLM_F_REQUEST as u16 | flags).to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel
        // nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, res_id = the queue (big-endian).
        b.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
        b.extend_from_slice(&queue.to_be_bytes());
        MsgBuilder(b)
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }

    fn finish(&mut self) -> &[u8] {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        &self.0
    }
}

/// The netlink messages in one datagram. Malformed input ends the walk (the kernel does not
/// send any; a test feeds some).
fn parse(mut buf: &[u8]) -> impl Iterator<Item = Incoming> + '_ {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(buf[..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        let msg = &buf[..len];
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
        Some(match kind {
            k if k == libc::NLMSG_ERROR as u16 && msg.len() >= NLMSG_HDRLEN + 4 => {
                let err = i32::from_ne_bytes(msg[16..20].try_into().unwrap());
                Incoming::Ack(-err)
            }
            k if k == NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET => {
                parse_packet(msg).map_or(Incoming::Other, Incoming::Packet)
            }
            _ => Incoming::Other,
        })
    })
}

/// The queue, id and length of an NFQNL_MSG_PACKET.
fn parse_packet(msg: &[u8]) -> Option<Packet> {
    let body = msg.get(NLMSG_HDRLEN..)?;
    let queue = u16::from_be_bytes(body.get(2..4)?.try_into().ok()?);
    let mut attrs = body.get(NFGENMSG_LEN..)?;
    let (mut id, mut cap_len, mut payload_len) = (None, None, 0);
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes(attrs[..2].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(attrs[2..4].try_into().unwrap()) & NLA_TYPE_MASK;
        let value = attrs.get(4..len)?;
        match kind {
            NFQA_PACKET_HDR => id = Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?)),
            NFQA_CAP_LEN => cap_len = Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?)),
            NFQA_PAYLOAD => payload_len = value.len() as u32,
            _ => {}
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    // In copy mode "meta" no payload comes and NFQA_CAP_LEN carries the length.
    Some(Packet { queue, id: id?, len: cap_len.unwrap_or(payload_len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NFQNL_MSG_PACKET as the kernel sends it in copy mode "meta".
    fn packet_msg(queue: u16, id: u32, cap_len: u32) -> Vec<u8> {
        let mut m = MsgBuilder::new(NFQNL_MSG_PACKET, 0, 0, queue);
        m.0[6..8].copy_from_slice(&0u16.to_ne_bytes());
        let mut hdr = id.to_be_bytes().to_vec();
        hdr.extend_from_slice(&0x0800u16.to_be_bytes()); // hw_protocol: IPv4
        hdr.push(2); // hook: NF_INET_FORWARD
        m.attr(NFQA_PACKET_HDR, &hdr);
        m.attr(5, &7u32.to_be_bytes()); // NFQA_IFINDEX_INDEV, ignored
        m.attr(NFQA_CAP_LEN, &cap_len.to_be_bytes());
        m.finish().to_vec()
    }

    #[test]
    fn reads_queue_id_and_length_of_each_packet_in_a_datagram() {
        let mut dgram = packet_msg(1, 41, 1228);
        dgram.extend(packet_msg(2, 42, 60));
        let got: Vec<Packet> = parse(&dgram)
            .filter_map(|m| match m {
                Incoming::Packet(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(
            got,
            [Packet { queue: 1, id: 41, len: 1228 }, Packet { queue: 2, id: 42, len: 60 }]
        );
    }

    #[test]
    fn reads_an_ack_and_an_error() {
        for errno in [0, libc::EPERM] {
            let mut m = MsgBuilder(Vec::new());
            m.0.extend_from_slice(&0u32.to_ne_bytes());
            m.0.extend_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
            m.0.extend_from_slice(&[0; 10]);
            m.0.extend_from_slice(&(-errno).to_ne_bytes());
            let dgram = m.finish().to_vec();
            let acks: Vec<i32> = parse(&dgram)
                .filter_map(|m| if let Incoming::Ack(e) = m { Some(e) } else { None })
                .collect();
            assert_eq!(acks, [errno]);
        }
    }

    #[test]
    fn truncated_or_garbage_input_ends_the_walk_without_panicking() {
        let good = packet_msg(0, 1, 100);
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]).count();
        }
        let mut bad = good.clone();
        bad[20..22].copy_from_slice(&200u16.to_ne_bytes()); // attribute longer than the message
        assert!(parse(&bad).all(|m| !matches!(m, Incoming::Packet(_))));
        assert_eq!(parse(&[0xff; 64]).count(), 0);
    }

    #[test]
    fn a_verdict_is_a_batch_for_accepts_and_single_for_drops() {
        let mut m = MsgBuilder::new(NFQNL_MSG_VERDICT_BATCH, 0, 0, 3);
        m.attr(NFQA_VERDICT_HDR, &[0, 0, 0, 1, 0, 0, 0, 9]);
        let bytes = m.finish().to_vec();
        assert_eq!(bytes.len(), 16 + 4 + 4 + 8);
        assert_eq!(u32::from_ne_bytes(bytes[..4].try_into().unwrap()), 32);
        assert_eq!(u16::from_ne_bytes(bytes[4..6].try_into().unwrap()), 3 << 8 | 3);
        assert_eq!(&bytes[18..20], &3u16.to_be_bytes(), "res_id is the queue, big-endian");
    }
}
