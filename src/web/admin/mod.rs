//! `/admin`: the operator's pages (askama, server-rendered, no scripts), behind sign-in: a
//! browser signs in on `/admin/sign-in` and holds a session cookie; a script sends HTTP basic auth
//! (user `admin`). Either way with the password in force: `server.admin_password`, else the one
//! set through the setup link; while there is none, `/admin` says how to finish setup.
//! `/setup/{token}` sets it.
//!
//! This file is the door (session or basic auth, login throttling, the same-origin check for
//! forms), the one
//! route table, and the helpers every page uses; each page lives in its own file. To add a page:
//! write `admin/<page>.rs` with a `#[derive(Deserialize)]` query or form struct and an
//! `async fn(AppState, Query) -> Result<Response, ApiError>`, then add one line to [`routes`].

mod attention;
mod chart;
mod checklist;
mod email_editor;
mod emails;
mod history;
mod orders;
mod overview;
mod problems;
mod schedule;
pub(super) mod setup;
mod sign_in;
mod suppressions;
mod timing;

use std::future::Future;

use askama::Template;
use base64::Engine as _;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use warp::filters::BoxedFilter;
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::credentials::AdminCredentials;
use super::session;
use super::state::{AppState, with_state};
use super::throttle;
use super::{AdminRefused, ApiError};

pub use sign_in::off_page;

fn authorized(credentials: &AdminCredentials, header: Option<&str>) -> bool {
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded
        .strip_prefix(b"admin:")
        .is_some_and(|password| credentials.verify(password))
}

/// The request headers the guard looks at.
struct Door {
    method: warp::http::Method,
    peer: Option<std::net::SocketAddr>,
    forwarded_for: Option<String>,
    authorization: Option<String>,
    host: Option<String>,
    origin: Option<String>,
    fetch_site: Option<String>,
    /// `Sec-Fetch-Mode`: `navigate` when a browser opens a page.
    fetch_mode: Option<String>,
    accept: Option<String>,
    /// The session cookie's token.
    session: Option<String>,
    /// The path and query asked for (where to return after signing in).
    asked: String,
}

impl Door {
    /// Whether a browser is opening a page (rather than a script asking, or a page's own script).
    fn navigating(&self) -> bool {
        match &self.fetch_mode {
            Some(mode) => mode.eq_ignore_ascii_case("navigate"),
            // Browsers without Fetch Metadata still ask for HTML first.
            None => self
                .accept
                .as_deref()
                .is_some_and(|a| a.contains("text/html")),
        }
    }
}

/// The `host[:port]` of an origin or URL (`https://x.co.za:8443/path` -> `x.co.za:8443`).
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    rest.split(['/', '?', '#']).next().filter(|a| !a.is_empty())
}

/// Whether a POST comes from our own pages. The browser sends basic credentials along with a form
/// posted from any site, so the request must say where it comes from: `Sec-Fetch-Site:
/// same-origin`, or an `Origin` naming this host or `server.public_url`. A request that says
/// neither is refused (old browsers send `Origin` on every POST too).
fn same_origin(door: &Door, public_url: &str) -> bool {
    if let Some(site) = &door.fetch_site
        && !site.eq_ignore_ascii_case("same-origin")
    {
        return false;
    }
    // Under `Referrer-Policy: no-referrer` a browser's form POST says `Origin: null`; then only
    // its `Sec-Fetch-Site: same-origin` (checked above) can vouch for it.
    match door
        .origin
        .as_deref()
        .filter(|o| !o.eq_ignore_ascii_case("null"))
    {
        Some(origin) => authority(origin).is_some_and(|theirs| {
            door.host
                .as_deref()
                .is_some_and(|host| theirs.eq_ignore_ascii_case(host))
                || authority(public_url).is_some_and(|ours| theirs.eq_ignore_ascii_case(ours))
        }),
        None => door.fetch_site.is_some(),
    }
}

/// A session or basic auth, with login throttling per client, and for POSTs a same-origin check.
async fn check_door(state: &AppState, door: &Door) -> Result<(), AdminRefused> {
    if !state.admin.in_force() {
        return Err(AdminRefused::Off);
    }
    let config = state.engine.settings().config.clone();
    let client = client(&config, door);
    let now = std::time::Instant::now();
    if let Some(wait) = state.throttle.blocked(client, now) {
        // Rounded up, so a client that waits as told is let in.
        return Err(AdminRefused::Throttled(wait.as_secs() + 1));
    }
    let signed_in = match &door.session {
        Some(token) => session::live(&state.store, token, chrono::Utc::now())
            .await
            .unwrap_or_else(|e| {
                tracing::error!("a session could not be looked up: {e}");
                false
            }),
        None => false,
    };
    if !signed_in && !authorized(&state.admin, door.authorization.as_deref()) {
        // A browser's first request carries no credentials; only a wrong password is a failure.
        if door.authorization.is_some() {
            note_failure(state, client);
            return Err(AdminRefused::Unauthorized);
        }
        if door.fetch_mode.is_some() || door.navigating() {
            return Err(
                if door.navigating() && door.method == warp::http::Method::GET {
                    AdminRefused::SignIn(door.asked.clone())
                } else {
                    AdminRefused::SignedOut
                },
            );
        }
        return Err(AdminRefused::Unauthorized);
    }
    if door.method == warp::http::Method::POST && !same_origin(door, &config.public_url()) {
        tracing::warn!(%client, "an /admin form posted from another site was refused");
        return Err(AdminRefused::CrossSite);
    }
    Ok(())
}

/// Counts a wrong password from `client` (basic auth or the sign-in form) toward its throttle.
fn note_failure(state: &AppState, client: std::net::IpAddr) {
    let refused = state.throttle.failed(client, std::time::Instant::now());
    tracing::warn!(%client, "a failed /admin login");
    if refused {
        tracing::warn!(
            %client,
            "{} failed /admin logins within {} minutes: this client is refused for a while",
            throttle::MAX_FAILURES,
            throttle::WINDOW.as_secs() / 60
        );
    }
}

/// The client a request comes from: the connecting address, or the last address of
/// `X-Forwarded-For` when the connection comes from a trusted proxy.
fn client(config: &crate::config::Config, door: &Door) -> std::net::IpAddr {
    crate::proxies::client_ip(
        door.peer.map(|p| p.ip()),
        door.forwarded_for.as_deref(),
        &config.server.trusted_proxies,
    )
}

/// The request headers the door looks at.
fn door() -> impl Filter<Extract = (Door,), Error = Rejection> + Clone {
    warp::method()
        // The connection layer's address (warp's own addr::remote() is set only by warp::serve).
        .and(crate::connections::remote())
        .and(crate::web::forwarded_for())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("host"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("sec-fetch-site"))
        .and(warp::header::optional::<String>("sec-fetch-mode"))
        .and(warp::header::optional::<String>("accept"))
        .and(warp::cookie::optional::<String>(session::COOKIE))
        .and(asked())
        .map(
            |method,
             peer,
             forwarded_for,
             authorization,
             host,
             origin,
             fetch_site,
             fetch_mode,
             accept,
             session,
             asked| Door {
                method,
                peer,
                forwarded_for,
                authorization,
                host,
                origin,
                fetch_site,
                fetch_mode,
                accept,
                session,
                asked,
            },
        )
}

/// The path and query of the request.
fn asked() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::path::full()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(|path: warp::path::FullPath, query: String| {
            if query.is_empty() {
                path.as_str().to_string()
            } else {
                format!("{}?{query}", path.as_str())
            }
        })
}

/// The guard in front of every `/admin` route; runs once per request.
fn guard(state: &AppState) -> BoxedFilter<(AppState,)> {
    warp::path("admin")
        .and(door())
        .and(with_state(state))
        .and_then(|door: Door, state: AppState| async move {
            check_door(&state, &door)
                .await
                .map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(state)
        })
        .boxed()
}

fn page(page: &impl Template) -> Result<Response, ApiError> {
    let body = page
        .render()
        .map_err(|e| ApiError::Internal(format!("page could not be rendered: {e}")))?;
    Ok(
        warp::reply::with_header(warp::reply::html(body), header::CACHE_CONTROL, "no-store")
            .into_response(),
    )
}

fn see_other(location: &str) -> Response {
    warp::reply::with_header(StatusCode::SEE_OTHER, header::LOCATION, location).into_response()
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// What a matched route does with the state, once the guard let the request in.
type Handler = Box<dyn FnOnce(AppState) -> BoxFuture<'static, Result<Response, ApiError>> + Send>;

/// A route: whatever `filter` extracts is handed, with the state, to `handler`.
fn route<T, F, Fut>(
    filter: impl Filter<Extract = (T,), Error = Rejection> + Clone + Send + Sync + 'static,
    handler: F,
) -> BoxedFilter<(Handler,)>
where
    T: Send + 'static,
    F: Fn(AppState, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    filter
        .map(move |input: T| {
            let handler = handler.clone();
            Box::new(move |state: AppState| {
                Box::pin(handler(state, input)) as BoxFuture<'static, _>
            }) as Handler
        })
        .boxed()
}

/// A page: `GET path`, its query string read into `Q`.
fn get<Q, F, Fut>(
    path: impl Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static,
    handler: F,
) -> BoxedFilter<(Handler,)>
where
    Q: DeserializeOwned + Send + 'static,
    F: Fn(AppState, Q) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    route(path.and(warp::get()).and(warp::query::<Q>()), handler)
}

/// Largest form body accepted on an `/admin` POST.
const MAX_FORM: u64 = 16 * 1024;

/// A form: `POST path`, its body (at most [`MAX_FORM`]) read into `F`.
fn post<Q, F, Fut>(
    path: impl Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static,
    handler: F,
) -> BoxedFilter<(Handler,)>
where
    Q: DeserializeOwned + Send + 'static,
    F: Fn(AppState, Q) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let form = warp::body::content_length_limit(MAX_FORM).and(warp::body::form::<Q>());
    route(path.and(warp::post()).and(form), handler)
}

/// A button: `POST path` whose body is not read.
/// A form POST whose handler also gets who sent it (for the history).
fn post_saying_who<Q, F, Fut>(
    path: impl Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static,
    handler: F,
) -> BoxedFilter<(Handler,)>
where
    Q: DeserializeOwned + Send + 'static,
    F: Fn(AppState, (email_editor::Peer, Q)) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let form = warp::body::content_length_limit(MAX_FORM).and(warp::body::form::<Q>());
    route(
        path.and(warp::post())
            .and(email_editor::peer())
            .and(form)
            .map(|peer, form| (peer, form)),
        handler,
    )
}

fn action<F, Fut>(
    path: impl Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static,
    handler: F,
) -> BoxedFilter<(Handler,)>
where
    F: Fn(AppState) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    route(path.and(warp::post()).map(|| ()), move |state, ()| {
        handler(state)
    })
}

/// Every `/admin` route: one line each, tried in order, under `/admin`.
pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    use warp::path;
    let table = vec![
        get(path::end(), overview::page),
        get(path!("setup"), checklist::page_handler),
        get(path!("orders"), orders::list),
        get(path!("buyer"), orders::buyer),
        get(path!("emails"), emails::page),
        get(path!("emails" / "render"), emails::render),
        post(path!("emails" / "test"), emails::send_test),
        route(
            path!("emails" / String)
                .and(warp::get())
                .and(warp::query::<email_editor::EditorQuery>())
                .map(|name, q| (name, q)),
            email_editor::page,
        ),
        route(
            path!("emails" / String / "preview")
                .and(warp::post())
                .and(warp::header::optional::<String>("accept"))
                .and(email_editor::body())
                .map(|name, accept, body| (name, accept, body)),
            email_editor::preview,
        ),
        route(
            path!("emails" / String)
                .and(warp::post())
                .and(email_editor::peer())
                .and(email_editor::body())
                .map(|name, peer, body| (name, peer, body)),
            email_editor::save,
        ),
        route(
            path!("emails" / String / "test")
                .and(warp::post())
                .and(email_editor::body())
                .map(|name, body| (name, body)),
            email_editor::send_test,
        ),
        route(
            path!("emails" / String / "copy")
                .and(warp::post())
                .and(email_editor::peer())
                .and(email_editor::body())
                .map(|name, peer, body| (name, peer, body)),
            email_editor::copy,
        ),
        route(
            path!("emails" / String / "delete")
                .and(warp::post())
                .and(email_editor::peer())
                .and(email_editor::body())
                .map(|name, peer, body| (name, peer, body)),
            email_editor::delete,
        ),
        // Before the editor's assets: that route answers 404 for any other file.
        get(path!("static" / "schedule.js"), schedule::script),
        route(
            path!("static" / String).and(warp::get()),
            email_editor::asset,
        ),
        get(path!("history"), history::page),
        route(
            path!("history" / i64 / "restore")
                .and(warp::post())
                .and(email_editor::peer())
                .and(email_editor::body())
                .map(|name, peer, body| (name, peer, body)),
            history::restore,
        ),
        get(path!("schedule"), schedule::page),
        route(
            path!("schedule")
                .and(warp::post())
                .and(body())
                .and(email_editor::peer())
                .map(|body, peer| (body, peer)),
            schedule::post,
        ),
        route(
            path!("schedule" / "preview").and(warp::post()).and(body()),
            schedule::preview,
        ),
        get(path!("suppressions"), suppressions::page),
        post(path!("suppressions"), suppressions::add),
        post_saying_who(path!("suppressions" / "remove"), suppressions::remove),
        get(path!("timing"), timing::page),
        post_saying_who(path!("timing" / "keep"), timing::keep),
        get(path!("problems"), problems::page),
        route(
            path!("problems" / i64 / "body").and(warp::get()),
            problems::body,
        ),
        action(path!("replay"), problems::replay),
        action(path!("sending" / "resume"), overview::resume_sending),
    ];
    let pages = table
        .into_iter()
        .reduce(|routes, next| routes.or(next).unify().boxed())
        .unwrap_or_else(|| {
            warp::any()
                .and_then(|| async { Err(warp::reject::not_found()) })
                .boxed()
        });
    let guarded = guard(state)
        .and(pages)
        .then(|state: AppState, handler: Handler| async move { respond(handler(state).await) });
    // Signing in and out come before the guard: they are how a browser passes it.
    sign_in::routes(state).or(guarded).unify().boxed()
}

/// The query of a page that shows only a notice (the outcome of the form posted before).
#[derive(Debug, Default, Deserialize)]
struct Notice {
    #[serde(default)]
    notice: String,
}

/// The query of a page that reads none.
#[derive(Debug, Default, Deserialize)]
struct NoQuery {}

/// A time for people, in the configured zone.
fn local(state: &AppState, at: &str) -> String {
    let tz = state.engine.settings().config.schedule.timezone;
    crate::store::parse_timestamp(at)
        .map(|t| {
            t.with_timezone(&tz)
                .format("%a %-d %b %Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}

/// The buyer page of one buyer and event.
fn buyer_link(email_key: &str, event_id: &str) -> String {
    let query = serde_urlencoded::to_string([("email", email_key), ("event", event_id)])
        .unwrap_or_default();
    format!("/admin/buyer?{query}")
}

/// A 303 to `path` with the query `pairs` (a notice for the page to show, and what it needs).
fn with_notice(path: &str, pairs: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    see_other(&format!("{path}?{query}"))
}

/// A request body, read by the handler with a limit ([`crate::web::read_limited`]: 413 past it,
/// with or without a Content-Length).
type Body = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, warp::Error>> + Send + 'static>,
>;

/// The [`Body`] of a request.
fn body() -> impl Filter<Extract = (Body,), Error = Rejection> + Clone {
    warp::body::stream().map(boxed_body)
}

fn boxed_body<S, B>(stream: S) -> Body
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: bytes::Buf,
{
    use futures_util::TryStreamExt;
    Box::pin(stream.map_ok(|mut chunk| chunk.copy_to_bytes(chunk.remaining())))
}
