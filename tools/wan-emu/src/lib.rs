//! A WAN path for dcsend's tests and benchmarks, made in user space because this kernel has
//! no netem.
//!
//! Two endpoint network namespaces talk through a third, the router, whose forwarding path
//! sends every packet to an NFQUEUE (`iptables -t mangle -A FORWARD -i DEV -j NFQUEUE`),
//! one queue per direction. `wan-delay` holds each packet's verdict for a fixed one-way delay
//! and drops a seeded random fraction of them:
//!
//! ```text
//! kernel queue --(packet id, length)--> nfqueue::NfQueue::recv
//!   -> delay_line::DelayLine::admit (due time, drop decision from rng::SplitMix64)
//!   -> DelayLine::release at the due time -> runs of verdicts -> NfQueue::verdict
//! ```
//!
//! A delay line, not a timer per packet: packets leave in the order they came, and a run of
//! accepted packets leaves with one batch verdict. Only the id and the length of a packet
//! cross into user space (copy mode "meta"), so the memory held is a few bytes per packet in
//! flight, whatever the bandwidth-delay product.
//!
//! `tcp-bulk` is the baseline: a file over one TCP connection with the congestion control set
//! on the socket (`TCP_CONGESTION`), since a network namespace inherits the host's default.

pub mod delay_line;
pub mod nfqueue;
pub mod rng;
