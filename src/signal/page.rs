//! The browser page `dcsend signal` serves: `GET /` and `GET /ROOM` answer with one static HTML
//! file, which loads a stylesheet and one JavaScript bundle. All three are embedded in the binary
//! at compile time (`web/static/`, and `web/dist/`, which `npm run build` makes from `web/src/`
//! and which is committed, so building dcsend never needs node; `tests/web_bundle.rs` checks the
//! committed bundle is fresh). Nothing is loaded from anywhere else: the page works on a LAN
//! with no internet, and its Content-Security-Policy says so.
//!
//! The page speaks the same signaling (the secret after `#` stays in the browser) and the same
//! wire protocol as dcsend; see `web/README.md`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::signal::url::valid_room;

/// Path of the page's script: a single segment with a dot, which no room id can be.
pub const SCRIPT_PATH: &str = "/dcsend-page.js";
/// Path of the page's stylesheet.
pub const STYLE_PATH: &str = "/dcsend.css";

const HTML: &[u8] = include_bytes!("../../web/static/index.html");
const CSS: &[u8] = include_bytes!("../../web/static/dcsend.css");
const SCRIPT: &[u8] = include_bytes!("../../web/dist/dcsend-page.js");

/// Same origin only: no CDN, no inline script, no framing. `connect-src 'self'` covers the
/// signaling requests; WebRTC itself is not governed by CSP. `blob:` is for the downloads.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The binary's version is the version of the page: revalidating costs one small request.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    // The secret is in the fragment, which browsers never send; the room id is in the path,
    // which they would: keep it from leaking to any link the page might ever hold.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// `GET /`: the page, with no room yet (it can open one).
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", HTML)
}

/// `GET /ROOM`: the page, which joins ROOM with the secret after `#`.
pub async fn room(axum::extract::Path(room): axum::extract::Path<String>) -> Response {
    if !valid_room(&room) {
        return super::server::not_found().await;
    }
    asset("text/html; charset=utf-8", HTML)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", CSS)
}
