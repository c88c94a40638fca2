//! STUN Binding messages (RFC 8489), built and parsed with `rtc-stun`, the STUN code webrtc-rs
//! itself runs: the answer of `dcsend signal --stun` ([`answer`]) and the request and
//! response of `dcsend doctor` ([`binding_request`], [`mapped_address`]). Pure functions of
//! bytes; the sockets are the callers'.

use std::net::SocketAddr;

use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Getter, Message, Setter, TransactionId};
use rtc_stun::xoraddr::XorMappedAddress;

/// A STUN transaction id.
pub type TxId = [u8; 12];

/// The response to `request` from `from`: a Binding success carrying `from` as
/// XOR-MAPPED-ADDRESS, and a FINGERPRINT. `None` when `request` is not a well-formed Binding
/// request: responses, indications, other methods (Allocate: this is not a TURN server) and
/// noise get no answer.
pub fn answer(request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let req = decode(request)?;
    if req.typ != BINDING_REQUEST {
        return None;
    }
    let mapped = XorMappedAddress { ip: from.ip(), port: from.port() };
    let setters: [Box<dyn Setter>; 4] = [
        Box::new(req.transaction_id),
        Box::new(BINDING_SUCCESS),
        Box::new(mapped),
        Box::new(FINGERPRINT),
    ];
    let mut resp = Message::new();
    resp.build(&setters).ok()?;
    Some(resp.raw)
}

/// A Binding request with a fresh transaction id: (id, bytes).
pub fn binding_request() -> (TxId, Vec<u8>) {
    let mut m = Message::new();
    let setters: [Box<dyn Setter>; 2] = [Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)];
    m.build(&setters).expect("a Binding request always builds");
    (m.transaction_id.0, m.raw)
}

/// The XOR-MAPPED-ADDRESS of `raw` when it is the Binding success response to transaction
/// `id`; `None` for anything else.
pub fn mapped_address(raw: &[u8], id: TxId) -> Option<SocketAddr> {
    let resp = decode(raw)?;
    if resp.typ != BINDING_SUCCESS || resp.transaction_id.0 != id {
        return None;
    }
    let mut mapped = XorMappedAddress::default();
    mapped.get_from(&resp).ok()?;
    Some(SocketAddr::new(mapped.ip, mapped.port))
}

fn decode(raw: &[u8]) -> Option<Message> {
    let mut m = Message::new();
    m.raw = raw.to_vec();
    m.decode().ok()?;
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::message::{CLASS_REQUEST, METHOD_ALLOCATE, MessageType};

    #[test]
    fn a_binding_request_is_answered_with_the_source_address() {
        for from in ["203.0.113.7:40000", "[2001:db8::1]:3478"] {
            let from: SocketAddr = from.parse().unwrap();
            let (id, req) = binding_request();
            assert_eq!(req.len(), 20, "a bare header");
            assert_eq!(&req[..2], &[0x00, 0x01], "Binding request");
            let resp = answer(&req, from).unwrap();
            assert_eq!(&resp[..2], &[0x01, 0x01], "Binding success");
            assert_eq!(mapped_address(&resp, id), Some(from));
            assert_eq!(mapped_address(&resp, [0; 12]), None, "another transaction");
            FINGERPRINT.check(&decode(&resp).unwrap()).unwrap();
        }
    }

    #[test]
    fn anything_else_gets_no_answer() {
        let from: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let (_, req) = binding_request();
        let resp = answer(&req, from).unwrap();
        assert_eq!(answer(&resp, from), None, "a response is not answered (no loops)");
        assert_eq!(answer(b"", from), None);
        assert_eq!(answer(&[0u8; 19], from), None);
        assert_eq!(answer(&req[..19], from), None);
        assert_eq!(answer(b"GET / HTTP/1.1\r\n\r\n", from), None);
        let mut alloc = Message::new();
        let setters: [Box<dyn Setter>; 2] = [
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        ];
        alloc.build(&setters).unwrap();
        assert_eq!(answer(&alloc.raw, from), None, "not a TURN server");
    }
}
