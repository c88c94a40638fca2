//! The `--peer` URL: `http(s)://HOST[:PORT][/PREFIX]/[ROOM][#SECRET]`.
//!
//! - The part before the last `/` is the signaling server (a reverse proxy may mount it under a
//!   prefix).
//! - `ROOM` is the last path segment. Empty (the URL ends in `/`) means "make a room".
//! - `SECRET`, after `#`, is the code both peers run the PAKE on. Browsers and HTTP clients never
//!   send the fragment, and dcsend strips it before any request, so the server never sees it.
//!
//! Pure: parsing, validation and formatting only (no I/O). Errors are one line for a person.

use std::fmt;

use rand::RngExt as _;
use url::Url;

/// Longest room id the server accepts, and the characters it may use.
pub const MAX_ROOM_CHARS: usize = 64;

/// Length of a generated room id: 10 characters of 32 = 50 random bits.
const ROOM_ID_CHARS: usize = 10;

/// Room ids use Crockford-style lower-case base32 without easily confused letters.
const ROOM_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A parsed `--peer` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUrl {
    /// The server's base URL, always ending in `/`, without fragment, query or room.
    base: Url,
    /// The room, when the URL names one.
    pub room: Option<String>,
    /// The shared secret, when the URL carries one.
    pub secret: Option<String>,
}

/// Why a `--peer` URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a URL ({1}); expected e.g. http://host:8080/")]
    Syntax(String, String),
    #[error("{0:?}: the scheme must be http or https")]
    Scheme(String),
    #[error("{0:?}: a signaling URL has no query string")]
    Query(String),
    #[error(
        "room {0:?} is not a valid room id (1-{MAX_ROOM_CHARS} characters of a-z, A-Z, 0-9, - and _)"
    )]
    Room(String),
    #[error(
        "{0:?} names a room but has no secret after '#'; use the whole URL the other side printed"
    )]
    NoSecret(String),
}

/// True for a room id the server accepts.
pub fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= MAX_ROOM_CHARS
        && room.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PeerUrl {
    /// Parses and checks a `--peer` value. A URL that names a room must carry its secret: the
    /// joining side cannot make one up.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let text = input.trim();
        let url = Url::parse(text).map_err(|e| UrlError::Syntax(text.into(), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::Scheme(text.into()));
        }
        if url.query().is_some() {
            return Err(UrlError::Query(text.into()));
        }
        let secret = url.fragment().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let path = url.path();
        let (prefix, last) = path.rsplit_once('/').unwrap_or(("", path));
        let room = if last.is_empty() {
            None
        } else if valid_room(last) {
            Some(last.to_owned())
        } else {
            return Err(UrlError::Room(last.into()));
        };
        if room.is_some() && secret.is_none() {
            return Err(UrlError::NoSecret(text.into()));
        }
        let mut base = url.clone();
        base.set_fragment(None);
        base.set_path(&format!("{prefix}/"));
        Ok(Self { base, room, secret })
    }

    /// The URL with `room` and `secret` filled in, generating whichever is missing.
    pub fn completed(&self) -> Self {
        Self {
            base: self.base.clone(),
            room: Some(self.room.clone().unwrap_or_else(new_room_id)),
            secret: Some(self.secret.clone().unwrap_or_else(new_secret)),
        }
    }

    /// The server's base URL (ends in `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `BASE/ROOM[/rest]`: the request URL for the room, never with the secret.
    pub fn endpoint(&self, rest: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            // A base URL from `parse` is never cannot-be-a-base (it is http or https).
            let mut segments = url.path_segments_mut().expect("http URLs have a path");
            segments.pop_if_empty();
            if let Some(room) = &self.room {
                segments.push(room);
            }
            segments.extend(rest);
        }
        url
    }
}

/// The full URL, secret included: what one side prints for the other.
impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.endpoint(&[]))?;
        if let Some(secret) = &self.secret {
            write!(f, "#{secret}")?;
        }
        Ok(())
    }
}

/// A fresh random room id (50 bits): unguessable enough that a stranger does not walk into
/// the room, while the secret is what keeps the session safe.
pub fn new_room_id() -> String {
    let mut rng = rand::rng();
    (0..ROOM_ID_CHARS)
        .map(|_| ROOM_ALPHABET[rng.random_range(0..ROOM_ALPHABET.len())] as char)
        .collect()
}

/// Numbers that end a generated secret: 10..=99.
const SECRET_NUMBERS: std::ops::Range<u32> = 10..100;

/// A fresh secret a person can read aloud: an adjective, a noun and a number from petname's
/// medium English lists, e.g. `tidy-otter-42`: about 1.26 million word pairs times 90, 27 bits.
///
/// The PAKE gives an attacker one online guess per session (a wrong guess aborts the session
/// for both peers) and nothing to test guesses against offline, so a code this short is enough,
/// as with magic-wormhole's codes (16 bits of words).
pub fn new_secret() -> String {
    let mut rng = rand::rng();
    let words =
        secret_words().namer(2, "-").iter(&mut rng).next().unwrap_or_else(|| "dcsend-code".into());
    format!("{words}-{}", rng.random_range(SECRET_NUMBERS))
}

fn secret_words() -> petname::Petnames<'static> {
    petname::Petnames::medium()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_server_url_has_no_room_and_no_secret() {
        let url = PeerUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(url.room, None);
        assert_eq!(url.secret, None);
        assert_eq!(url.base().as_str(), "http://127.0.0.1:8080/");
        // Without a path at all it is the same.
        assert_eq!(PeerUrl::parse("http://127.0.0.1:8080").unwrap(), url);
    }

    #[test]
    fn room_and_secret_round_trip_through_display() {
        let text = "https://example.org/dcsend/k7f3#tulip-orbit-42";
        let url = PeerUrl::parse(text).unwrap();
        assert_eq!(url.room.as_deref(), Some("k7f3"));
        assert_eq!(url.secret.as_deref(), Some("tulip-orbit-42"));
        assert_eq!(url.base().as_str(), "https://example.org/dcsend/");
        assert_eq!(url.to_string(), text);
        assert_eq!(PeerUrl::parse(&url.to_string()).unwrap(), url);
    }

    #[test]
    fn endpoints_never_carry_the_secret() {
        let url = PeerUrl::parse("http://h:1/p/room1#secret-words-10").unwrap();
        assert_eq!(url.endpoint(&[]).as_str(), "http://h:1/p/room1");
        assert_eq!(url.endpoint(&["tok"]).as_str(), "http://h:1/p/room1/tok");
        assert!(url.endpoint(&["tok"]).fragment().is_none());
    }

    #[test]
    fn a_room_without_a_secret_is_refused() {
        assert!(matches!(PeerUrl::parse("http://h/room"), Err(UrlError::NoSecret(_))));
        assert!(matches!(PeerUrl::parse("http://h/room#  "), Err(UrlError::NoSecret(_))));
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        assert!(matches!(PeerUrl::parse("host:8080"), Err(UrlError::Scheme(_))));
        assert!(matches!(PeerUrl::parse("not a url"), Err(UrlError::Syntax(..))));
        assert!(matches!(PeerUrl::parse("ftp://h/"), Err(UrlError::Scheme(_))));
        assert!(matches!(PeerUrl::parse("http://h/?x=1"), Err(UrlError::Query(_))));
        assert!(matches!(PeerUrl::parse("http://h/a.b#s"), Err(UrlError::Room(_))));
        let long = format!("http://h/{}#s", "a".repeat(MAX_ROOM_CHARS + 1));
        assert!(matches!(PeerUrl::parse(&long), Err(UrlError::Room(_))));
    }

    #[test]
    fn completed_keeps_what_was_given_and_fills_the_rest() {
        let given = PeerUrl::parse("http://h/#my-own-code").unwrap().completed();
        assert_eq!(given.secret.as_deref(), Some("my-own-code"));
        let room = given.room.clone().unwrap();
        assert!(valid_room(&room) && room.len() == ROOM_ID_CHARS);
        let fresh = PeerUrl::parse("http://h/").unwrap().completed();
        let secret = fresh.secret.clone().unwrap();
        assert_eq!(secret.split('-').count(), 3, "{secret}");
        assert_eq!(PeerUrl::parse(&fresh.to_string()).unwrap(), fresh);
    }

    #[test]
    fn generated_secrets_have_at_least_26_bits() {
        let count = secret_words().cardinality(2) * SECRET_NUMBERS.len() as u128;
        assert!(count >= 1 << 26, "{count}");
    }

    #[test]
    fn generated_ids_and_secrets_differ() {
        assert_ne!(new_room_id(), new_room_id());
        let secrets: std::collections::HashSet<_> = (0..50).map(|_| new_secret()).collect();
        assert!(secrets.len() > 45);
    }
}
