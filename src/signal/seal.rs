//! End-to-end authentication of the signaling exchange: SPAKE2 on the shared secret, then
//! ChaCha20-Poly1305 on every message that matters.
//!
//! The signaling server relays opaque messages between two peers. It must not learn the secret,
//! read the session descriptions, or swap a DTLS fingerprint for its own. So:
//!
//! 1. Each peer sends a SPAKE2 message (symmetric mode, Ed25519 group; the identity binds the
//!    protocol version and the room). A peer that does not know the secret derives a different
//!    key; SPAKE2 gives it one guess per session and nothing to test guesses against offline.
//! 2. HKDF-SHA256 turns the SPAKE2 key into one key per direction (`a->b`, `b->a`), so a message
//!    reflected back at its sender does not open.
//! 3. Every later message is sealed with ChaCha20-Poly1305 under its direction's key, a nonce
//!    that counts messages (a dropped, replayed or reordered message does not open), and the
//!    room as associated data.
//!
//! Both peers send a sealed `hello` as soon as they have the key, so a wrong secret or a
//! tampering server is found by both sides after one round trip, before any offer is acted on.
//!
//! Pure: no I/O. [`Envelope`] is what travels through the server, as one JSON object per message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use spake2::{Ed25519Group, Identity, Password, Spake2};

use crate::signal::codec::SessionDesc;

/// Protocol label mixed into the PAKE identity, the key derivation and the associated data.
const PROTOCOL: &str = "dcsend/1";

/// Which peer of a room: `A` joined first and makes the offer, `B` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
}

impl Side {
    /// The peer on the other end of the room.
    pub fn other(self) -> Self {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn direction(self) -> &'static [u8] {
        match self {
            Side::A => b"a->b",
            Side::B => b"b->a",
        }
    }
}

/// One message relayed through the signaling server, as JSON:
/// `{"type":"pake","msg":B64}`, `{"type":"sealed","box":B64}` or `{"type":"abort","reason":S}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Envelope {
    /// The SPAKE2 message (33 bytes), in the clear: it reveals nothing about the secret.
    Pake { msg: String },
    /// A sealed [`Inner`] message.
    Sealed {
        #[serde(rename = "box")]
        sealed: String,
    },
    /// A peer giving up, in the clear (advisory: it can be forged, so it only ever ends a
    /// session, never advances one).
    Abort { reason: String },
}

impl Envelope {
    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        // Cannot fail: plain strings with derived Serialize.
        serde_json::to_vec(self).expect("Envelope always serializes")
    }

    /// Parses a body; `None` when it is not an envelope.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

/// What travels inside a sealed envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Inner {
    /// Key confirmation, sent by both peers first.
    Hello { side: Side },
    /// The offer (from A) or the answer (from B).
    Description { desc: SessionDesc },
}

/// Authentication failed: the key did not open a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the message does not open with our key")]
pub struct Unauthentic;

/// A PAKE in progress.
pub struct Handshake {
    state: Spake2<Ed25519Group>,
    side: Side,
    room: String,
}

impl Handshake {
    /// Starts the PAKE for `side` in `room`; returns the envelope to send.
    pub fn start(secret: &str, room: &str, side: Side) -> (Self, Envelope) {
        let identity = Identity::new(format!("{PROTOCOL} room={room}").as_bytes());
        let (state, msg) = Spake2::<Ed25519Group>::start_symmetric(
            &Password::new(secret.trim().as_bytes()),
            &identity,
        );
        let envelope = Envelope::Pake { msg: STANDARD.encode(msg) };
        (Self { state, side, room: room.to_owned() }, envelope)
    }

    /// Finishes with the peer's PAKE message. A malformed message is [`Unauthentic`]; a wrong
    /// secret is only found when the first sealed message fails to open.
    pub fn finish(self, peer_msg: &str) -> Result<Sealer, Unauthentic> {
        let msg = STANDARD.decode(peer_msg.trim()).map_err(|_| Unauthentic)?;
        let key = self.state.finish(&msg).map_err(|_| Unauthentic)?;
        Ok(Sealer::new(&key, self.side, &self.room))
    }
}

/// Seals our messages and opens the peer's, in order.
pub struct Sealer {
    send: ChaCha20Poly1305,
    open: ChaCha20Poly1305,
    send_seq: u64,
    open_seq: u64,
    side: Side,
    aad: Vec<u8>,
}

impl Sealer {
    fn new(shared: &[u8], side: Side, room: &str) -> Self {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(PROTOCOL.as_bytes()), shared);
        let derive = |direction: &[u8]| {
            let mut key = Key::default();
            // Cannot fail: 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
            hkdf.expand(direction, &mut key).expect("32-byte HKDF output");
            ChaCha20Poly1305::new(&key)
        };
        Self {
            send: derive(side.direction()),
            open: derive(side.other().direction()),
            send_seq: 0,
            open_seq: 0,
            side,
            aad: format!("{PROTOCOL} room={room}").into_bytes(),
        }
    }

    fn nonce(seq: u64) -> Nonce {
        let mut nonce = Nonce::default();
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        nonce
    }

    /// Seals `inner` as the next message of our direction.
    pub fn seal(&mut self, inner: &Inner) -> Envelope {
        // Cannot fail: derived Serialize of strings and enums.
        let plain = serde_json::to_vec(inner).expect("Inner always serializes");
        let nonce = Self::nonce(self.send_seq);
        self.send_seq += 1;
        // Cannot fail: ChaCha20-Poly1305 only refuses messages over 256 GiB.
        let sealed = self
            .send
            .encrypt(&nonce, Payload { msg: &plain, aad: &self.aad })
            .expect("message under the AEAD limit");
        Envelope::Sealed { sealed: STANDARD.encode(sealed) }
    }

    /// Opens the peer's next sealed message.
    pub fn open(&mut self, sealed: &str) -> Result<Inner, Unauthentic> {
        let bytes = STANDARD.decode(sealed.trim()).map_err(|_| Unauthentic)?;
        let nonce = Self::nonce(self.open_seq);
        let plain = self
            .open
            .decrypt(&nonce, Payload { msg: &bytes, aad: &self.aad })
            .map_err(|_| Unauthentic)?;
        self.open_seq += 1;
        serde_json::from_slice(&plain).map_err(|_| Unauthentic)
    }

    /// The `hello` we send first.
    pub fn hello(&mut self) -> Envelope {
        let side = self.side;
        self.seal(&Inner::Hello { side })
    }

    /// Checks the peer's `hello`: it must open and come from the other side.
    pub fn check_hello(&mut self, sealed: &str) -> Result<(), Unauthentic> {
        match self.open(sealed)? {
            Inner::Hello { side } if side == self.side.other() => Ok(()),
            _ => Err(Unauthentic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::codec::SdpKind;

    fn pake_msg(e: &Envelope) -> &str {
        match e {
            Envelope::Pake { msg } => msg,
            other => panic!("not a pake message: {other:?}"),
        }
    }

    fn sealed(e: &Envelope) -> &str {
        match e {
            Envelope::Sealed { sealed } => sealed,
            other => panic!("not a sealed message: {other:?}"),
        }
    }

    fn pair(secret_a: &str, secret_b: &str, room_a: &str, room_b: &str) -> (Sealer, Sealer) {
        let (a, msg_a) = Handshake::start(secret_a, room_a, Side::A);
        let (b, msg_b) = Handshake::start(secret_b, room_b, Side::B);
        (a.finish(pake_msg(&msg_b)).unwrap(), b.finish(pake_msg(&msg_a)).unwrap())
    }

    fn offer() -> Inner {
        Inner::Description {
            desc: SessionDesc {
                kind: SdpKind::Offer,
                sdp: "v=0\r\na=fingerprint:sha-256 AA\r\n".into(),
            },
        }
    }

    #[test]
    fn same_secret_opens_both_ways_in_order() {
        let (mut a, mut b) = pair("tidy-otter-42", "tidy-otter-42", "r1", "r1");
        let hello_a = a.hello();
        let hello_b = b.hello();
        b.check_hello(sealed(&hello_a)).unwrap();
        a.check_hello(sealed(&hello_b)).unwrap();
        let msg = a.seal(&offer());
        assert_eq!(b.open(sealed(&msg)).unwrap(), offer());
    }

    #[test]
    fn wrong_secret_or_room_fails_on_the_first_message() {
        for (sa, sb, ra, rb) in [("code-a-1", "code-b-1", "r", "r"), ("same", "same", "r1", "r2")] {
            let (mut a, mut b) = pair(sa, sb, ra, rb);
            assert_eq!(b.check_hello(sealed(&a.hello())), Err(Unauthentic));
            assert_eq!(a.check_hello(sealed(&b.hello())), Err(Unauthentic));
        }
    }

    #[test]
    fn tampering_replay_reflection_and_reordering_fail() {
        let (mut a, mut b) = pair("s", "s", "r", "r");
        // A flipped bit anywhere in the box.
        let hello = a.hello();
        let mut bytes = STANDARD.decode(sealed(&hello)).unwrap();
        bytes[3] ^= 1;
        assert_eq!(b.check_hello(&STANDARD.encode(&bytes)), Err(Unauthentic));
        // Reflection: A's own message sent back to A.
        let (mut a, mut b) = pair("s", "s", "r", "r");
        let hello = a.hello();
        assert_eq!(a.check_hello(sealed(&hello)), Err(Unauthentic));
        // Reordering: B sees A's second message first.
        let _first = a.seal(&offer());
        let second = a.seal(&offer());
        assert_eq!(b.open(sealed(&second)), Err(Unauthentic));
        // Replay: the same message twice.
        let (mut a, mut b) = pair("s", "s", "r", "r");
        let hello = a.hello();
        b.check_hello(sealed(&hello)).unwrap();
        assert_eq!(b.open(sealed(&hello)), Err(Unauthentic));
    }

    #[test]
    fn a_server_that_tells_both_peers_they_are_a_is_caught() {
        let (a1, m1) = Handshake::start("s", "r", Side::A);
        let (a2, m2) = Handshake::start("s", "r", Side::A);
        let (mut x, mut y) = (a1.finish(pake_msg(&m2)).unwrap(), a2.finish(pake_msg(&m1)).unwrap());
        assert_eq!(y.check_hello(sealed(&x.hello())), Err(Unauthentic));
    }

    #[test]
    fn garbage_pake_messages_are_unauthentic() {
        let (a, _) = Handshake::start("s", "r", Side::A);
        assert!(a.finish("not base64!").is_err());
        let (a, _) = Handshake::start("s", "r", Side::A);
        assert!(a.finish(&STANDARD.encode([7u8; 5])).is_err());
    }

    #[test]
    fn envelopes_are_plain_json() {
        let e = Envelope::Abort { reason: "wrong secret".into() };
        assert_eq!(e.to_json(), br#"{"type":"abort","reason":"wrong secret"}"#);
        assert_eq!(Envelope::from_json(&e.to_json()), Some(e));
        assert_eq!(Envelope::from_json(b"{\"type\":\"nope\"}"), None);
        let (_, pake) = Handshake::start("s", "r", Side::B);
        let json = String::from_utf8(pake.to_json()).unwrap();
        assert!(json.starts_with(r#"{"type":"pake","msg":""#), "{json}");
    }
}

/// Known-answer vectors for the browser implementation (`web/src/signal.js`): the PAKE
/// messages, the key and the sealed messages for fixed randomness, written to
/// `web/test/vectors.json`, which `web/test/vectors.mjs` checks the JavaScript against.
/// Fails when the committed file is stale; regenerate with
/// `DCSEND_BLESS=1 cargo test --lib web_vectors`.
#[cfg(test)]
mod web_vectors {
    use std::path::Path;

    use super::*;
    use crate::signal::codec::SdpKind;

    /// "Randomness" that hands out fixed bytes (the crate's `Scalar::random` reads 64).
    struct Fixed([u8; 64]);

    impl rand_core::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            assert_eq!(dest.len(), 64, "Scalar::random reads 64 bytes");
            dest.copy_from_slice(&self.0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl rand_core::CryptoRng for Fixed {}

    fn random(seed: u8) -> [u8; 64] {
        std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
    }

    fn start(secret: &str, room: &str, side: Side, rand: [u8; 64]) -> (Handshake, Envelope) {
        let identity = Identity::new(format!("{PROTOCOL} room={room}").as_bytes());
        let (state, msg) = Spake2::<Ed25519Group>::start_symmetric_with_rng(
            &Password::new(secret.trim().as_bytes()),
            &identity,
            Fixed(rand),
        );
        let env = Envelope::Pake { msg: STANDARD.encode(msg) };
        (Handshake { state, side, room: room.to_owned() }, env)
    }

    fn text(e: &Envelope) -> String {
        match e {
            Envelope::Pake { msg } => msg.clone(),
            Envelope::Sealed { sealed } => sealed.clone(),
            Envelope::Abort { reason } => reason.clone(),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn vector(secret: &str, room: &str, seed_a: u8, seed_b: u8) -> serde_json::Value {
        let (rand_a, rand_b) = (random(seed_a), random(seed_b));
        let (a, pake_a) = start(secret, room, Side::A, rand_a);
        let (b, pake_b) = start(secret, room, Side::B, rand_b);
        let key = a.state.finish(&STANDARD.decode(text(&pake_b)).unwrap()).unwrap();
        let key_b = b.state.finish(&STANDARD.decode(text(&pake_a)).unwrap()).unwrap();
        assert_eq!(key, key_b);
        let mut sa = Sealer::new(&key, Side::A, room);
        let mut sb = Sealer::new(&key, Side::B, room);
        let sdp = |kind: SdpKind, fp: &str| SessionDesc {
            kind,
            sdp: format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=fingerprint:sha-256 {fp}\r\n"),
        };
        let offer = sdp(SdpKind::Offer, "AA:BB");
        let answer = sdp(SdpKind::Answer, "CC:DD");
        let hello_a = sa.hello();
        let hello_b = sb.hello();
        let offer_a = sa.seal(&Inner::Description { desc: offer.clone() });
        let answer_b = sb.seal(&Inner::Description { desc: answer.clone() });
        // The vectors must themselves open on the other side.
        sb.check_hello(&text(&hello_a)).unwrap();
        sa.check_hello(&text(&hello_b)).unwrap();
        assert_eq!(sb.open(&text(&offer_a)).unwrap(), Inner::Description { desc: offer.clone() });
        assert_eq!(sa.open(&text(&answer_b)).unwrap(), Inner::Description { desc: answer.clone() });
        serde_json::json!({
            "secret": secret,
            "room": room,
            "random_a": hex(&rand_a),
            "random_b": hex(&rand_b),
            "pake_a": String::from_utf8(pake_a.to_json()).unwrap(),
            "pake_b": String::from_utf8(pake_b.to_json()).unwrap(),
            "key": hex(&key),
            "hello_a": String::from_utf8(hello_a.to_json()).unwrap(),
            "hello_b": String::from_utf8(hello_b.to_json()).unwrap(),
            "offer": offer,
            "offer_a": String::from_utf8(offer_a.to_json()).unwrap(),
            "answer": answer,
            "answer_b": String::from_utf8(answer_b.to_json()).unwrap(),
        })
    }

    #[test]
    fn web_vectors_are_fresh() {
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        if !web.is_dir() {
            eprintln!("skipped: no web/ here (a packaged crate)");
            return;
        }
        let vectors = serde_json::json!({
            "about": "SPAKE2 (spake2 0.4, symmetric, Ed25519), HKDF and ChaCha20-Poly1305 as \
                      src/signal/seal.rs does them, for fixed randomness. Generated by \
                      `DCSEND_BLESS=1 cargo test --lib web_vectors`; do not edit.",
            "vectors": [
                vector("tidy-otter-42", "7mq2k9d0xa", 1, 2),
                // Trimmed, and not ASCII: the password is the trimmed secret's UTF-8.
                vector("  caf%C3%A9-\u{e9}t\u{e9}-7\u{3000}", "Room_with-ALL-64-chars-0123456789-abcdefghijklmnopqrstuvwxyz-ABC", 200, 77),
                vector("x", "r", 0, 255),
            ],
        });
        let generated = serde_json::to_string_pretty(&vectors).unwrap() + "\n";
        let path = web.join("test/vectors.json");
        if std::fs::read_to_string(&path).ok().as_deref() == Some(generated.as_str()) {
            return;
        }
        if std::env::var_os("DCSEND_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(&path, generated).unwrap();
            return;
        }
        panic!(
            "{} is stale or missing; regenerate with DCSEND_BLESS=1 cargo test --lib web_vectors",
            path.display()
        );
    }
}
