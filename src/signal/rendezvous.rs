//! The authenticated exchange of session descriptions through a signaling mailbox.
//!
//! ```text
//!   A (joined first)                         B (joined second)
//!   pake ------------------------------------> (either may send first; the server queues)
//!        <------------------------------------ pake
//!   sealed hello ----------------------------> check: wrong secret / tampering stops here
//!        <------------------------------------ sealed hello
//!   sealed offer ---------------------------->
//!        <------------------------------------ sealed answer
//! ```
//!
//! When the other side leaves before the descriptions are swapped, the server frees its seat and
//! tells us ([`SignalError::PeerLeft`]); the caller starts over with whoever joins next: a new
//! [`authenticate`], a new PAKE. One exception keeps the PAKE's promise of one online guess per
//! session: a peer that left after sending its PAKE message and before confirming the key may
//! have taken our key confirmation along to test a guess of the secret offline, so that ends
//! the session as a failed authentication ([`SignalError::Unconfirmed`]).
//!
//! Generic over [`Mailbox`], so the whole exchange is tested in memory, tampering included,
//! without a server. `signal::client` is the HTTP mailbox.

use std::time::Duration;

use tokio::time::Instant;

use crate::signal::codec::{SdpKind, SessionDesc};
use crate::signal::seal::{Envelope, Handshake, Inner, Sealer, Side};

/// Why signaling failed. Every variant is a connection failure (exit code 3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    #[error("cannot reach the signaling server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the signaling server refused: {0}")]
    Refused(String),
    #[error("{url} does not answer like a dcsend signaling server ({what})")]
    NotSignaling { url: String, what: String },
    #[error("{}", nobody_came(room, *.waited, *.intruders))]
    NobodyCame {
        room: String,
        waited: Duration,
        /// Clients the server removed from the other seat for sending no PAKE message.
        intruders: usize,
    },
    #[error("the peer stopped answering during signaling (waited {})", humantime::format_duration(*.0))]
    Silent(Duration),
    #[error(
        "could not authenticate the peer: the secret differs, or the signaling server tampered \
         with the exchange; nothing was sent"
    )]
    Unauthentic,
    #[error("the peer gave up during signaling: {0}")]
    PeerAborted(String),
    /// The server says the other side left (its notice, for a person); start over.
    #[error("{0}")]
    PeerLeft(String),
    #[error(
        "could not authenticate the peer: it left after its PAKE message without confirming the \
         secret (a wrong secret, or a peer stopped at that moment); a session allows one guess \
         of the secret, so it ends here and nothing was sent: start again with a new room"
    )]
    Unconfirmed,
    #[error("the peer sent a message out of order ({0})")]
    OutOfOrder(&'static str),
    /// Copy-paste: the peer's token never came (`--sdp-in` never written, nothing pasted).
    #[error("{0}")]
    NoToken(String),
}

fn nobody_came(room: &str, waited: Duration, intruders: usize) -> String {
    let waited = humantime::format_duration(waited);
    match intruders {
        0 => format!("nobody joined room {room} within {waited}"),
        n => format!(
            "no peer with the secret joined room {room} within {waited}; the server removed {n} \
             client(s) that took the other seat without sending a PAKE message"
        ),
    }
}

/// One peer's end of a signaling room: messages in order, to and from the other peer.
#[allow(async_fn_in_trait)] // used generically inside dcsend only; no Send bound is needed
pub trait Mailbox {
    /// Queues `msg` for the other peer.
    async fn send(&self, msg: &Envelope) -> Result<(), SignalError>;
    /// The next message from the other peer; `Ok(None)` when `deadline` passed first.
    async fn recv(&self, deadline: Instant) -> Result<Option<Envelope>, SignalError>;
    /// How many clients the server has removed from the other seat so far for staying silent
    /// (they took it without the PAKE message a dcsend peer sends at once).
    fn intruders(&self) -> usize {
        0
    }
}

/// Runs the PAKE and the key confirmation. The first wait (for the peer to join) is bounded by
/// `join_deadline`, every later one by `step`.
///
/// Returns the sealer and the instant the peer's PAKE message arrived ("both present").
pub async fn authenticate<M: Mailbox>(
    mailbox: &M,
    secret: &str,
    room: &str,
    side: Side,
    join_deadline: Instant,
    join_timeout: Duration,
    step: Duration,
) -> Result<(Sealer, Instant), SignalError> {
    let (handshake, pake) = Handshake::start(secret, room, side);
    mailbox.send(&pake).await?;
    let peer_pake = match mailbox.recv(join_deadline).await? {
        None => {
            let intruders = mailbox.intruders();
            return Err(SignalError::NobodyCame {
                room: room.into(),
                waited: join_timeout,
                intruders,
            });
        }
        Some(Envelope::Pake { msg }) => msg,
        Some(other) => return Err(unexpected(other, "a pake message")),
    };
    let both_present = Instant::now();
    let mut sealer = match handshake.finish(&peer_pake) {
        Ok(sealer) => sealer,
        Err(_) => return Err(refuse(mailbox).await),
    };
    mailbox.send(&sealer.hello()).await?;
    let hello = match expect_sealed(mailbox, step).await {
        Err(SignalError::PeerLeft(_)) => return Err(SignalError::Unconfirmed),
        other => other?,
    };
    if sealer.check_hello(&hello).is_err() {
        return Err(refuse(mailbox).await);
    }
    Ok((sealer, both_present))
}

/// Sends our offer or answer, sealed.
pub async fn send_description<M: Mailbox>(
    mailbox: &M,
    sealer: &mut Sealer,
    desc: &SessionDesc,
) -> Result<(), SignalError> {
    mailbox.send(&sealer.seal(&Inner::Description { desc: desc.clone() })).await
}

/// Receives the peer's offer or answer (`kind`), sealed.
pub async fn recv_description<M: Mailbox>(
    mailbox: &M,
    sealer: &mut Sealer,
    kind: SdpKind,
    step: Duration,
) -> Result<SessionDesc, SignalError> {
    let sealed = expect_sealed(mailbox, step).await?;
    match sealer.open(&sealed) {
        Ok(Inner::Description { desc }) if desc.kind == kind => Ok(desc),
        Ok(_) => Err(SignalError::OutOfOrder("expected a session description")),
        Err(_) => Err(refuse(mailbox).await),
    }
}

async fn expect_sealed<M: Mailbox>(mailbox: &M, step: Duration) -> Result<String, SignalError> {
    match mailbox.recv(Instant::now() + step).await? {
        None => Err(SignalError::Silent(step)),
        Some(Envelope::Sealed { sealed }) => Ok(sealed),
        Some(other) => Err(unexpected(other, "a sealed message")),
    }
}

fn unexpected(got: Envelope, wanted: &'static str) -> SignalError {
    match got {
        Envelope::Abort { reason } => SignalError::PeerAborted(reason),
        // A sealed message where a pake was due (or the reverse) is either a broken peer or a
        // server replaying messages; neither may go on.
        _ => SignalError::OutOfOrder(wanted),
    }
}

/// Tells the peer (best effort: the server may drop it) and returns [`SignalError::Unauthentic`].
async fn refuse<M: Mailbox>(mailbox: &M) -> SignalError {
    let reason = "authentication failed (the secret differs, or the server tampered)".into();
    let _ = mailbox.send(&Envelope::Abort { reason }).await;
    SignalError::Unauthentic
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;

    use super::*;

    /// One direction of an in-memory room, with an optional tamper hook on the way.
    #[derive(Default)]
    struct Pipe {
        queue: Mutex<VecDeque<Envelope>>,
        ready: Notify,
        /// The sender left: once the queue is read, the reader is told.
        left: std::sync::atomic::AtomicBool,
    }

    type Tamper = Arc<dyn Fn(Envelope) -> Envelope + Send + Sync>;

    struct End {
        out: Arc<Pipe>,
        inn: Arc<Pipe>,
        tamper: Tamper,
    }

    impl Mailbox for End {
        async fn send(&self, msg: &Envelope) -> Result<(), SignalError> {
            self.out.queue.lock().unwrap().push_back((self.tamper)(msg.clone()));
            self.out.ready.notify_one();
            Ok(())
        }
        async fn recv(&self, deadline: Instant) -> Result<Option<Envelope>, SignalError> {
            loop {
                if let Some(m) = self.inn.queue.lock().unwrap().pop_front() {
                    return Ok(Some(m));
                }
                if self.inn.left.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(SignalError::PeerLeft("the other side left".into()));
                }
                tokio::select! {
                    () = self.inn.ready.notified() => {}
                    () = tokio::time::sleep_until(deadline) => return Ok(None),
                }
            }
        }
    }

    fn room(tamper_a_to_b: Tamper) -> (End, End) {
        let (ab, ba) = (Arc::new(Pipe::default()), Arc::new(Pipe::default()));
        let a = End { out: ab.clone(), inn: ba.clone(), tamper: tamper_a_to_b };
        let b = End { out: ba, inn: ab, tamper: Arc::new(|e| e) };
        (a, b)
    }

    const STEP: Duration = Duration::from_secs(2);

    fn desc(kind: SdpKind, fingerprint: &str) -> SessionDesc {
        SessionDesc { kind, sdp: format!("v=0\r\na=fingerprint:sha-256 {fingerprint}\r\n") }
    }

    /// Runs both sides; returns (what B got as the offer, what A got as the answer).
    async fn exchange(
        a: End,
        b: End,
        secret_a: &str,
        secret_b: &str,
    ) -> (Result<SessionDesc, SignalError>, Result<SessionDesc, SignalError>) {
        let deadline = Instant::now() + STEP;
        let side_a = async {
            let (mut s, _) = authenticate(&a, secret_a, "r", Side::A, deadline, STEP, STEP).await?;
            send_description(&a, &mut s, &desc(SdpKind::Offer, "AA")).await?;
            recv_description(&a, &mut s, SdpKind::Answer, STEP).await
        };
        let side_b = async {
            let (mut s, _) = authenticate(&b, secret_b, "r", Side::B, deadline, STEP, STEP).await?;
            let offer = recv_description(&b, &mut s, SdpKind::Offer, STEP).await?;
            send_description(&b, &mut s, &desc(SdpKind::Answer, "BB")).await?;
            Ok(offer)
        };
        let (answer, offer) = tokio::join!(side_a, side_b);
        (offer, answer)
    }

    #[tokio::test]
    async fn same_secret_exchanges_the_descriptions() {
        let (a, b) = room(Arc::new(|e| e));
        let (offer, answer) = exchange(a, b, "tidy-otter-42", "tidy-otter-42").await;
        assert_eq!(offer.unwrap(), desc(SdpKind::Offer, "AA"));
        assert_eq!(answer.unwrap(), desc(SdpKind::Answer, "BB"));
    }

    #[tokio::test]
    async fn wrong_secret_fails_on_both_sides_before_any_description() {
        let (a, b) = room(Arc::new(|e| e));
        let started = Instant::now();
        let (offer, answer) = exchange(a, b, "tidy-otter-42", "tidy-otter-43").await;
        assert!(matches!(offer, Err(SignalError::Unauthentic)), "{offer:?}");
        assert!(matches!(answer, Err(SignalError::Unauthentic)), "{answer:?}");
        assert!(started.elapsed() < STEP, "both sides fail at once, without waiting");
    }

    /// A server that swaps the fingerprint in whatever it relays: it can only flip ciphertext.
    #[tokio::test]
    async fn a_server_swapping_bytes_of_the_offer_is_caught() {
        let seen = Arc::new(Mutex::new(0));
        let count = seen.clone();
        let tamper: Tamper = Arc::new(move |e| match e {
            Envelope::Sealed { sealed } => {
                let mut n = count.lock().unwrap();
                *n += 1;
                if *n == 2 {
                    // The offer: flip one character of its box.
                    let mut chars: Vec<char> = sealed.chars().collect();
                    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
                    Envelope::Sealed { sealed: chars.into_iter().collect() }
                } else {
                    Envelope::Sealed { sealed }
                }
            }
            other => other,
        });
        let (a, b) = room(tamper);
        let (offer, answer) = exchange(a, b, "s", "s").await;
        assert!(matches!(offer, Err(SignalError::Unauthentic)), "{offer:?}");
        // A is told (the abort) rather than left waiting.
        assert!(matches!(answer, Err(SignalError::PeerAborted(_))), "{answer:?}");
        assert_eq!(*seen.lock().unwrap(), 2);
    }

    /// A server that runs its own PAKE with B, guessing the secret, is a wrong secret to B.
    #[tokio::test]
    async fn a_server_replacing_the_pake_is_caught() {
        let tamper: Tamper = Arc::new(|e| match e {
            Envelope::Pake { .. } => Handshake::start("guess", "r", Side::A).1,
            other => other,
        });
        let (a, b) = room(tamper);
        let (offer, answer) = exchange(a, b, "s", "s").await;
        assert!(matches!(offer, Err(SignalError::Unauthentic)), "{offer:?}");
        assert!(answer.is_err());
    }

    /// B leaves after `sent` of its messages (its PAKE message, then its key confirmation).
    async fn a_after_b_left(sent: usize) -> SignalError {
        let (a, b) = room(Arc::new(|e| e));
        let (_, b_pake) = Handshake::start("s", "r", Side::B);
        if sent >= 1 {
            b.send(&b_pake).await.unwrap();
        }
        b.out.left.store(true, std::sync::atomic::Ordering::Relaxed);
        let deadline = Instant::now() + STEP;
        authenticate(&a, "s", "r", Side::A, deadline, STEP, STEP).await.err().unwrap()
    }

    /// Before its PAKE message a peer that left learnt nothing: start over with the next one.
    #[tokio::test]
    async fn a_peer_that_left_before_its_pake_message_lets_the_session_start_over() {
        let err = a_after_b_left(0).await;
        assert!(matches!(err, SignalError::PeerLeft(_)), "{err:?}");
    }

    /// After its PAKE message and our key confirmation, a peer that left may test a guess of
    /// the secret offline: that was the session's one guess.
    #[tokio::test]
    async fn a_peer_that_left_between_its_pake_message_and_the_confirmation_ends_the_session() {
        let err = a_after_b_left(1).await;
        assert!(matches!(err, SignalError::Unconfirmed), "{err:?}");
        assert!(err.to_string().starts_with("could not authenticate the peer: it left"), "{err}");
    }

    #[tokio::test]
    async fn nobody_joining_is_a_timeout_naming_the_room() {
        let (a, _b) = room(Arc::new(|e| e));
        let wait = Duration::from_millis(50);
        let err = authenticate(&a, "s", "r", Side::A, Instant::now() + wait, wait, STEP)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, SignalError::NobodyCame { .. }), "{err:?}");
        assert_eq!(err.to_string(), "nobody joined room r within 50ms");
    }
}
