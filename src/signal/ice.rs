//! The ICE servers a signaling server hands to the peers of a room, in its answer to a join
//! (`"ice_servers"`, the browser's `RTCIceServer` shape, so the page passes it to
//! `new RTCPeerConnection` unchanged), and the short-lived TURN credentials it makes for them.
//!
//! The credentials follow the scheme coturn implements as `use-auth-secret` /
//! `static-auth-secret` (the "TURN REST API", draft-uberti-behave-turn-rest): the user name is
//! `EXPIRY:ID` (unix seconds, then a tag), the password base64(HMAC-SHA1(secret, user name)).
//! The TURN server, which knows the secret, checks the password and refuses a user name whose
//! time has passed. Stateless: any instance of the signaling server (one process, or many
//! sharing a Redis store) makes credentials that every TURN server with the secret accepts.
//! The secret never leaves the server: only user names and HMACs go out.
//!
//! Pure: the caller gives the time, the tag and the host the client reached the server by.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

/// One entry of `"ice_servers"`: the WebRTC `RTCIceServer` dictionary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs that share the credentials below.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The shared secret of a TURN server. Its `Debug` does not show it.
#[derive(Clone)]
pub struct TurnSecret(Vec<u8>);

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(..)")
    }
}

/// A secret file that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// Nothing but white space in the file.
    #[error("the file is empty; put the TURN server's static-auth-secret in it")]
    Empty,
}

impl TurnSecret {
    /// The secret in a file's `text`: the first line, without surrounding white space
    /// (coturn's `static-auth-secret=` value, as an operator would paste it).
    pub fn from_file_text(text: &str) -> Result<Self, SecretError> {
        let secret = text.lines().next().unwrap_or("").trim();
        if secret.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// The password for `username`: base64(HMAC-SHA1(secret, username)).
    pub fn password(&self, username: &str) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.0).expect("HMAC takes a key of any size");
        mac.update(username.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}

/// A TURN user name valid until `expires` (unix time, seconds), tagged `id`: `EXPIRY:ID`.
pub fn turn_username(expires: u64, id: &str) -> String {
    format!("{expires}:{id}")
}

/// The TURN servers a signaling server hands out, and how it makes their credentials.
#[derive(Debug, Clone)]
pub struct TurnAdvert {
    /// `turn:`/`turns:` URLs of servers that share [`TurnAdvert::secret`].
    pub urls: Vec<String>,
    /// Their shared secret.
    pub secret: TurnSecret,
    /// How long a credential is valid.
    pub ttl: Duration,
}

/// What a signaling server puts in `"ice_servers"`.
#[derive(Debug, Clone, Default)]
pub struct IceAdvert {
    /// STUN URLs named by the operator (`--stun-url`), handed out as they are.
    pub stun_urls: Vec<String>,
    /// Ports on which the server itself answers STUN (`--stun ADDR`), handed out as
    /// `stun:HOST:PORT` with the host the client reached the server by, unless `stun_urls`
    /// names the servers.
    pub stun_ports: Vec<u16>,
    /// TURN servers and their secret.
    pub turn: Option<TurnAdvert>,
}

impl IceAdvert {
    /// The `"ice_servers"` for a client that reached the server as `host` (the request's
    /// `Host` header), at `now`, its TURN user name tagged `id`.
    pub fn servers(&self, host: Option<&str>, now: SystemTime, id: &str) -> Vec<IceServer> {
        let mut servers = Vec::new();
        let stun: Vec<String> = if !self.stun_urls.is_empty() {
            self.stun_urls.clone()
        } else {
            match host.and_then(host_name) {
                Some(name) => self.stun_ports.iter().map(|p| format!("stun:{name}:{p}")).collect(),
                None => Vec::new(),
            }
        };
        if !stun.is_empty() {
            servers.push(IceServer { urls: stun, username: None, credential: None });
        }
        if let Some(turn) = &self.turn {
            let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            let username = turn_username((since_epoch + turn.ttl).as_secs(), id);
            let credential = turn.secret.password(&username);
            servers.push(IceServer {
                urls: turn.urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }
}

/// The host part of a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`), if it is a
/// plain DNS name or IP address; anything else (which could only come from a confused or
/// hostile client) gives none, so it never lands in a URL handed to a browser.
pub fn host_name(header: &str) -> Option<&str> {
    let header = header.trim();
    let name = if header.starts_with('[') {
        let end = header.find(']')?;
        let (v6, rest) = header.split_at(end + 1);
        v6[1..end].parse::<std::net::Ipv6Addr>().ok()?;
        (rest.is_empty() || port(rest.strip_prefix(':')?)).then_some(v6)?
    } else {
        let (name, p) = header.split_once(':').unwrap_or((header, ""));
        if !p.is_empty() && !port(p) || header.ends_with(':') {
            return None;
        }
        name
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':');
    (!name.is_empty() && name.len() <= 253 && name.chars().all(plain)).then_some(name)
}

fn port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently of this code:
    /// `printf '%s' 1700000000:dcsend | openssl dgst -sha1 -hmac north-wind-secret -binary | base64`
    /// (and Python's `hmac.new(..., hashlib.sha1)` gives the same).
    #[test]
    fn the_password_is_coturns_hmac() {
        let secret = TurnSecret::from_file_text("north-wind-secret\n").unwrap();
        let username = turn_username(1_700_000_000, "dcsend");
        assert_eq!(username, "1700000000:dcsend");
        assert_eq!(secret.password(&username), "I11aVvEwHF7zGgDNXqk8e1jlh4E=");
    }

    #[test]
    fn a_secret_file_is_its_first_line_and_not_empty() {
        let a = TurnSecret::from_file_text("  north-wind-secret \r\nignored\n").unwrap();
        assert_eq!(
            a.password("u"),
            TurnSecret::from_file_text("north-wind-secret").unwrap().password("u")
        );
        assert_eq!(TurnSecret::from_file_text(" \n").unwrap_err(), SecretError::Empty);
        assert_eq!(TurnSecret::from_file_text("").unwrap_err(), SecretError::Empty);
        assert_eq!(format!("{a:?}"), "TurnSecret(..)");
    }

    #[test]
    fn stun_is_named_by_the_host_the_client_reached_unless_the_operator_names_it() {
        let mut advert = IceAdvert { stun_ports: vec![3478, 3479], ..Default::default() };
        let now = SystemTime::UNIX_EPOCH;
        let urls = |a: &IceAdvert, host| a.servers(host, now, "x")[0].urls.clone();
        assert_eq!(
            urls(&advert, Some("signal.example.org:8080")),
            ["stun:signal.example.org:3478", "stun:signal.example.org:3479"]
        );
        assert_eq!(
            urls(&advert, Some("[2001:db8::1]:443")),
            ["stun:[2001:db8::1]:3478", "stun:[2001:db8::1]:3479"]
        );
        assert_eq!(urls(&advert, Some("10.0.0.1")), ["stun:10.0.0.1:3478", "stun:10.0.0.1:3479"]);
        // No usable host: no STUN entry rather than a wrong one.
        assert!(advert.servers(None, now, "x").is_empty());
        assert!(advert.servers(Some("evil\"/x"), now, "x").is_empty());
        advert.stun_urls = vec!["stun:stun.example.net:3478".into()];
        assert_eq!(urls(&advert, Some("10.0.0.1")), ["stun:stun.example.net:3478"]);
        assert_eq!(urls(&advert, None), ["stun:stun.example.net:3478"]);
    }

    #[test]
    fn turn_gets_a_user_that_expires_and_its_hmac() {
        let advert = IceAdvert {
            turn: Some(TurnAdvert {
                urls: vec!["turn:relay.example.org:3478".into()],
                secret: TurnSecret::from_file_text("north-wind-secret").unwrap(),
                ttl: Duration::from_secs(3600),
            }),
            ..Default::default()
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_699_996_400);
        let servers = advert.servers(Some("ignored"), now, "dcsend");
        assert_eq!(
            servers,
            [IceServer {
                urls: vec!["turn:relay.example.org:3478".into()],
                username: Some("1700000000:dcsend".into()),
                credential: Some("I11aVvEwHF7zGgDNXqk8e1jlh4E=".into()),
            }]
        );
        // The browser's shape: a STUN entry has no credential keys at all.
        let json = serde_json::to_string(&servers[0]).unwrap();
        assert_eq!(
            json,
            r#"{"urls":["turn:relay.example.org:3478"],"username":"1700000000:dcsend","credential":"I11aVvEwHF7zGgDNXqk8e1jlh4E="}"#
        );
        let stun = IceServer { urls: vec!["stun:a:1".into()], username: None, credential: None };
        assert_eq!(serde_json::to_string(&stun).unwrap(), r#"{"urls":["stun:a:1"]}"#);
    }

    #[test]
    fn only_plain_hosts_are_taken_from_a_host_header() {
        for (header, host) in [
            ("example.org", Some("example.org")),
            ("example.org:8080", Some("example.org")),
            ("127.0.0.1:35000", Some("127.0.0.1")),
            ("[::1]:8080", Some("[::1]")),
            ("[::1]", Some("[::1]")),
            ("example.org:", None),
            ("example.org:99999", None),
            ("[nothost]:80", None),
            ("a b", None),
            ("a/b", None),
            ("user@host", None),
            ("", None),
        ] {
            assert_eq!(host_name(header), host, "{header}");
        }
    }
}
