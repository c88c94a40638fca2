//! Signaling: how the two peers exchange their session descriptions.
//!
//! - Copy-paste: `codec` reads and writes the token forms (Pion's base64 JSON and the others),
//!   `compact` is the compact form dcsend prints (`docs/tokens.md`), both pure; `paste` moves
//!   tokens through the terminal or files.
//! - A signaling server (`--peer URL`): `url` parses the URL, `seal` is the pure PAKE and
//!   sealing, `rendezvous` the authenticated exchange over any [`rendezvous::Mailbox`],
//!   `client` the HTTP mailbox, `qr` draws the page URL for a phone (`--qr`), `rooms` the
//!   server's pure room table, `store` where the server keeps it (in memory, or in Redis shared
//!   by several instances) and `server` the axum app around it (`dcsend signal`). The protocol
//!   is in `docs/signaling.md`.
//! - `stun`: the server's STUN Binding responder (`dcsend signal --stun ADDR`); `ice` the ICE
//!   servers (STUN, and TURN with short-lived credentials) it hands out in its join answer.

pub mod client;
pub mod codec;
pub mod compact;
pub mod ice;
pub mod page;
pub mod paste;
pub mod qr;
pub mod rendezvous;
pub mod rooms;
pub mod seal;
pub mod server;
pub mod store;
pub mod stun;
pub mod url;
