//! Signaling: how the two peers exchange their session descriptions. `codec` is the pure
//! token format (Pion's base64 JSON); `paste` moves tokens through the terminal or files.

pub mod codec;
pub mod paste;
