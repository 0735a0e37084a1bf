//! The headers every answer carries: no MIME sniffing, no referrer (a page's URL may be a link
//! token), and on HTML pages a Content-Security-Policy that allows nothing from elsewhere, no
//! framing and forms only to us, and `Cache-Control: no-store` (every page here is personal: an
//! unsubscribe page shows the address, /admin shows buyers). A route that sets its own keeps it.

use warp::http::header::{self, HeaderValue};
use warp::reply::Response;

/// The policy of our own pages: only our origin; inline styles (the pages carry their CSS), no
/// scripts at all; never framed; forms post only to us.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The policy of the email preview (`/admin/emails/render`): the organiser's HTML with its inline
/// styles and https images, sandboxed (no scripts, no forms, no same-origin), framed only by us.
pub const PREVIEW_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; \
     img-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/// Adds the security headers a response does not set itself.
pub fn security_headers(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    if html {
        set(header::CONTENT_SECURITY_POLICY, PAGE_CSP);
        set(header::X_FRAME_OPTIONS, "DENY");
        set(header::CACHE_CONTROL, "no-store");
    }
    response
}

/// Every `X-Forwarded-For` line of a request, joined in order with commas (as HTTP says several
/// lines of one header mean), so that the last hop is the one the proxy appended even when the
/// client sent a line of its own; `None` without one.
pub fn forwarded_for()
-> impl warp::Filter<Extract = (Option<String>,), Error = warp::Rejection> + Clone {
    use warp::Filter;
    warp::header::headers_cloned().and_then(|headers: warp::http::HeaderMap| async move {
        let lines: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok::<_, warp::Rejection>((!lines.is_empty()).then(|| lines.join(",")))
    })
}
