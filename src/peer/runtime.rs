//! A webrtc `Runtime` that is tokio in every respect but one: each UDP socket the crate
//! creates gets large kernel send and receive buffers before it is wrapped.
//!
//! Why: webrtc 0.21 batches datagrams (GSO/GRO through quinn-udp). With the kernel's default
//! ~208 KiB buffers a burst from the sender overflows the receiver's socket buffer on
//! loopback (`RcvbufErrors` in `/proc/net/snmp` climbs), SCTP retransmits, and throughput
//! drops by about 10x (measured on 2-core machines: 2-35 MB/s with default buffers, 300-440 MB/s
//! with 4 MiB). Unprivileged processes are capped by `net.core.rmem_max`/`wmem_max`; we ask
//! for the size, then read back what the kernel granted and log it when it is less.
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

fn grow_buffers(socket: &std::net::UdpSocket, want: usize) {
    if want == 0 {
        return;
    }
    let sock = socket2::SockRef::from(socket);
    // Failing to grow a buffer is not fatal: the transfer still works, only slower.
    if let Err(e) = sock.set_recv_buffer_size(want) {
        tracing::warn!("could not set the UDP receive buffer to {want} bytes: {e}");
    }
    if let Err(e) = sock.set_send_buffer_size(want) {
        tracing::warn!("could not set the UDP send buffer to {want} bytes: {e}");
    }
    // Linux reports twice the requested size (it counts bookkeeping overhead).
    let got_rcv = sock.recv_buffer_size().unwrap_or(0);
    let got_snd = sock.send_buffer_size().unwrap_or(0);
    if got_rcv < want || got_snd < want {
        tracing::info!(
            "UDP buffers are rcv={got_rcv} snd={got_snd} bytes, less than the {want} asked for; \
             raise net.core.rmem_max/wmem_max for full speed"
        );
    } else {
        tracing::debug!("UDP buffers rcv={got_rcv} snd={got_snd} bytes");
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
        grow_buffers(&sock, 1024 * 1024);
        let after = socket2::SockRef::from(&sock).recv_buffer_size().unwrap();
        // Capped by net.core.rmem_max, but never smaller than before.
        assert!(after >= before, "buffer shrank: {before} -> {after}");
    }
}
