//! A webrtc `Runtime` that is tokio in every respect but one: each UDP socket the crate
//! creates gets large kernel send and receive buffers before it is wrapped.
//!
//! Why: webrtc 0.21 batches datagrams (GSO/GRO through quinn-udp). With the kernel's default
//! ~208 KiB buffers a burst from the sender overflows the receiver's socket buffer on
//! loopback (`RcvbufErrors` in `/proc/net/snmp` climbs), SCTP retransmits, and throughput
//! drops by about 10x (measured on 2-core machines: 2-35 MB/s with default buffers, 300-440 MB/s
//! with 4 MiB). The receive buffer must also hold what the SCTP receive window lets the peer
//! send in one burst: a 16 MiB window over a 4 MiB buffer overflowed at 60 ms RTT (896
//! `RcvbufErrors`, each drop a 1 s retransmission timeout), so `peer` sizes the window from
//! what the kernel grants here. Unprivileged processes are capped by
//! `net.core.rmem_max`/`wmem_max`; root is not (`SO_RCVBUFFORCE`).
//!
//! Part of `peer`, the only module that imports `webrtc`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// Tokio, plus `SO_SNDBUF`/`SO_RCVBUF` of `socket_buffer_bytes` on every UDP socket.
#[derive(Debug)]
pub struct BufferedRuntime {
    inner: TokioRuntime,
    socket_buffer_bytes: usize,
}

impl BufferedRuntime {
    /// A runtime that asks for `socket_buffer_bytes` of kernel buffer on each UDP socket;
    /// `0` keeps the kernel default.
    pub fn new(socket_buffer_bytes: usize) -> Self {
        Self { inner: TokioRuntime, socket_buffer_bytes }
    }
}

/// Asks the kernel for `want` bytes of receive and send buffer on `socket` and returns the
/// receive buffer it granted, in the same units as `want` (0 when `want` is 0: the kernel
/// default is kept and not measured).
///
/// `SO_RCVBUFFORCE` first: it succeeds for a process with `CAP_NET_ADMIN` (root) and is not
/// capped by `net.core.rmem_max`; anyone else gets `EPERM` and falls back to `SO_RCVBUF`,
/// which the kernel silently caps. Either way the size is read back, so the SCTP receive
/// window can follow what was really granted (see `peer::receive_window_for`).
fn grow_buffers(socket: &std::net::UdpSocket, want: usize) -> usize {
    if want == 0 {
        return 0;
    }
    let sock = socket2::SockRef::from(socket);
    // Failing to grow a buffer is not fatal: the transfer still works, only slower.
    if !force_buffers(socket, want) {
        if let Err(e) = sock.set_recv_buffer_size(want) {
            tracing::warn!("could not set the UDP receive buffer to {want} bytes: {e}");
        }
        if let Err(e) = sock.set_send_buffer_size(want) {
            tracing::warn!("could not set the UDP send buffer to {want} bytes: {e}");
        }
    }
    let got_rcv = as_asked(sock.recv_buffer_size().unwrap_or(0));
    let got_snd = as_asked(sock.send_buffer_size().unwrap_or(0));
    if got_rcv < want || got_snd < want {
        tracing::debug!(
            "UDP buffers are rcv={got_rcv} snd={got_snd} bytes of the {want} asked for"
        );
    } else {
        tracing::debug!("UDP buffers rcv={got_rcv} snd={got_snd} bytes");
    }
    got_rcv
}

/// Linux reports twice the size asked for (it counts its bookkeeping overhead too).
fn as_asked(reported: usize) -> usize {
    if cfg!(any(target_os = "linux", target_os = "android")) { reported / 2 } else { reported }
}

/// Sets both buffers past the sysctl caps; false when not permitted (no `CAP_NET_ADMIN`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn force_buffers(socket: &std::net::UdpSocket, want: usize) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(socket, sockopt::RcvBufForce, &want).is_ok()
        && setsockopt(socket, sockopt::SndBufForce, &want).is_ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn force_buffers(_: &std::net::UdpSocket, _: usize) -> bool {
    false
}

/// The receive buffer the kernel grants a UDP socket that asks for `want` bytes, measured on
/// a throwaway socket (same process, same limits as the sockets webrtc will open); 0 when
/// `want` is 0 or no socket can be opened.
pub fn granted_receive_buffer(want: usize) -> usize {
    match std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)) {
        Ok(probe) => grow_buffers(&probe, want),
        Err(e) => {
            tracing::debug!("cannot open a UDP socket to measure buffer limits: {e}");
            0
        }
    }
}

impl Runtime for BufferedRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        grow_buffers(&socket, self.socket_buffer_bytes);
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio+bufs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_buffers_of_a_loopback_socket() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = socket2::SockRef::from(&sock).recv_buffer_size().unwrap();
        let granted = grow_buffers(&sock, 1024 * 1024);
        let after = socket2::SockRef::from(&sock).recv_buffer_size().unwrap();
        // Capped by net.core.rmem_max, but never smaller than before.
        assert!(after >= before, "buffer shrank: {before} -> {after}");
        assert_eq!(granted, as_asked(after), "the grant is what the kernel reports");
        assert_eq!(grow_buffers(&sock, 0), 0, "0 keeps the kernel default, unmeasured");
    }
}
