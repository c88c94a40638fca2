//! The transfer: the threshold-based sender (`queue` and `autotune` pure, `pump` async), the wire
//! protocol (`wire`, spec in docs/protocol.md), the two sides (`send`, `recv`) and what they share (`session`), their
//! blocking I/O (`source`, `sink`, sharing `prefix` for resume), remote-name checks (`names`) and
//! the compression extension's framing (`codec`).
//!
//! Must not import: webrtc (only `peer` does), indicatif, `cli`.

pub mod autotune;
pub mod codec;
pub mod names;
pub mod prefix;
pub mod pump;
pub mod queue;
pub mod recv;
pub mod send;
pub mod session;
pub mod sink;
pub mod source;
pub mod wire;
