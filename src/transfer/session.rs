//! What both sides of a transfer share: the `hello` each sends first, the check of the peer's
//! protocol version, and the `abort` that tells the peer why we stop. [`super::send`] and
//! [`super::recv`] use these; neither imports the other.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::time::Duration;

use super::wire::{Control, PROTOCOL_VERSION, Role};
use crate::peer::{ChannelPort, Outbound};

/// `dcsend/VERSION`, sent in `hello`.
pub fn app() -> String {
    format!("dcsend/{}", env!("CARGO_PKG_VERSION"))
}

/// What a `hello` says beyond who we are (see [`Control::Hello`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Says {
    /// We take part in resuming (the receiver asks for it; a dcsend sender always can).
    pub resume: bool,
    /// Tree extension. Receiver: whether its output can hold a folder. Sender: `Some(true)`
    /// when it sends one.
    pub tree: Option<bool>,
    /// Sender: the files to come.
    pub files: Option<u64>,
    /// Sender: their total size, when known.
    pub bytes: Option<u64>,
    /// Receiver: it takes compressed items.
    pub zstd: bool,
}

/// Our `hello`: the protocol version, our `role` and app, and what `says` holds.
pub fn hello(role: Role, says: Says) -> Outbound {
    let Says { resume, tree, files, bytes, zstd } = says;
    let hello = Control::Hello {
        v: PROTOCOL_VERSION,
        role,
        app: app(),
        resume,
        threshold: None,
        tree,
        files,
        bytes,
        zstd,
    };
    Outbound::Text(hello.encode())
}

/// Checks the version `v` of the peer's `hello`: we speak exactly [`PROTOCOL_VERSION`]. The
/// error is the reason to abort with, a `TransferError::Protocol`.
pub fn check_version(v: u32) -> Result<(), String> {
    if v == PROTOCOL_VERSION {
        return Ok(());
    }
    Err(format!("unsupported protocol version {v} (we speak {PROTOCOL_VERSION})"))
}

/// How long [`send_abort`] gives the message to leave.
const ABORT_GRACE: Duration = Duration::from_millis(500);

/// Tells the peer why we stop, and gives the message a moment to leave. Best effort.
pub async fn send_abort<P: ChannelPort>(port: &P, reason: &str) {
    let msg = Outbound::Text(Control::Abort { reason: reason.to_owned() }.encode());
    let deliver = async {
        port.send(msg).await?;
        // Given a moment to leave: SCTP has released every byte.
        port.drained_to(0).await
    };
    if tokio::time::timeout(ABORT_GRACE, deliver).await.is_err() {
        tracing::debug!("the abort message may not have reached the peer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_says_who_we_are() {
        let says = Says { resume: true, ..Says::default() };
        let Outbound::Text(text) = hello(Role::Recv, says) else { panic!("hello is text") };
        let want = format!(
            r#"{{"t":"hello","v":{PROTOCOL_VERSION},"role":"recv","app":"{}","resume":true}}"#,
            app()
        );
        assert_eq!(text, want);
        let says =
            Says { resume: true, tree: Some(true), files: Some(3), bytes: Some(7), zstd: false };
        let Outbound::Text(text) = hello(Role::Send, says) else { panic!("hello is text") };
        assert!(text.ends_with(r#""resume":true,"tree":true,"files":3,"bytes":7}"#), "{text}");
    }

    #[test]
    fn only_our_version_is_spoken() {
        assert!(check_version(PROTOCOL_VERSION).is_ok());
        let err = check_version(PROTOCOL_VERSION + 1).unwrap_err();
        let want = format!(
            "unsupported protocol version {} (we speak {PROTOCOL_VERSION})",
            PROTOCOL_VERSION + 1
        );
        assert_eq!(err, want);
    }
}
