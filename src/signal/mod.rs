//! Signaling: how the two peers exchange their session descriptions.
//!
//! - Copy-paste: `codec` is the pure token format (Pion's base64 JSON); `paste` moves tokens
//!   through the terminal or files.
//! - A signaling server (`--peer URL`): `url` parses the URL, `seal` is the pure PAKE and
//!   sealing, `rendezvous` the authenticated exchange over any [`rendezvous::Mailbox`],
//!   `client` the HTTP mailbox, `rooms` the server's pure room table, `store` where the server
//!   keeps it (in memory, or in Redis shared by several instances) and `server` the axum app
//!   around it (`dcsend signal`). The protocol is in `docs/signaling.md`.

pub mod client;
pub mod codec;
pub mod page;
pub mod paste;
pub mod rendezvous;
pub mod rooms;
pub mod seal;
pub mod server;
pub mod store;
pub mod url;
