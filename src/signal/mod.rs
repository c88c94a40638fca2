//! Signaling: how the two peers exchange their session descriptions.
//!
//! - Copy-paste: `codec` is the pure token format (Pion's base64 JSON); `paste` moves tokens
//!   through the terminal or files.
//! - A signaling server (`--peer URL`): `url` parses the URL, `seal` is the pure PAKE and
//!   sealing, `rendezvous` the authenticated exchange over any [`rendezvous::Mailbox`],
//!   `client` the HTTP mailbox, `rooms` the server's pure room table and `server` the axum app
//!   around it (`dcsend signal`). The protocol is in `docs/signaling.md`.
//! - `stun`: the server's STUN Binding responder (`dcsend signal --stun ADDR`).

pub mod client;
pub mod codec;
pub mod page;
pub mod paste;
pub mod rendezvous;
pub mod rooms;
pub mod seal;
pub mod server;
pub mod stun;
pub mod url;
