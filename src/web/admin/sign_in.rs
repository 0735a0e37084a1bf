//! `/admin/sign-in` and `/admin/sign-out`: how a browser passes the door. Signing in with the
//! password in force begins a session (a cookie holding a random token, see
//! [`crate::web::session`]); a wrong password counts toward the same throttle as basic auth, and
//! the form follows the same same-origin rule as every `/admin` form. Signing out ends the
//! session. While no password is in force, these pages say how to finish setup.

use askama::Template;
use chrono::Utc;
use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::{Door, client, door, note_failure, same_origin};
use crate::email::organiser_name;
use crate::web::error::refused;
use crate::web::session;
use crate::web::state::{AppState, with_state};
use crate::web::{AdminRefused, ApiError, html, read_limited};

/// Largest form accepted (a password and where to go next).
const MAX_FORM: usize = 4096;

/// Longest password tried, in bytes (as setup accepts).
const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Template)]
#[template(path = "pages/sign_in.html")]
struct SignInPage<'a> {
    organiser: &'a str,
    next: &'a str,
    error: &'a str,
    signed_out: bool,
    idle_hours: i64,
}

#[derive(Template)]
#[template(path = "pages/admin_off.html")]
struct OffPage<'a> {
    organiser: &'a str,
}

/// The sign-in page's query.
#[derive(Deserialize, Default)]
struct SignInQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
}

/// The sign-in form.
#[derive(Deserialize)]
struct SignInForm {
    password: String,
    #[serde(default)]
    next: String,
}

/// `/admin` while no password is in force: how to finish setup, in words (404: there is nothing
/// to sign in to yet).
pub fn off_page() -> Response {
    html(&OffPage { organiser: "" }, StatusCode::NOT_FOUND).unwrap_or_else(Reply::into_response)
}

/// Where to go after signing in: `next` when it is one of our pages, else the overview (never
/// another site, nor back to signing in).
fn destination(next: &str) -> &str {
    let ours = next
        .strip_prefix("/admin")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
    let safe = !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && !next.starts_with("/admin/sign-");
    if ours && safe { next } else { "/admin" }
}

/// `GET` and `POST /admin/sign-in`, `POST /admin/sign-out`.
pub(super) fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    let show = warp::path!("admin" / "sign-in")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(door())
        .and(with_state(state))
        .and_then(|query: String, door: Door, state: AppState| async move {
            let query: SignInQuery = serde_urlencoded::from_str(&query).unwrap_or_default();
            show(&state, &door, &query).await
        });
    let submit = warp::path!("admin" / "sign-in")
        .and(warp::post())
        .and(door())
        .and(warp::body::stream())
        .and(with_state(state))
        .and_then(|door: Door, body, state: AppState| async move {
            let body = match read_limited(body, MAX_FORM).await {
                Ok(body) => body,
                Err(e) => return Ok(e.into_response()),
            };
            submit(&state, &door, &body).await
        });
    let out = warp::path!("admin" / "sign-out")
        .and(warp::post())
        .and(door())
        .and(with_state(state))
        .and_then(|door: Door, state: AppState| async move { sign_out(&state, &door).await });
    show.or(submit).unify().or(out).unify().boxed()
}

fn organiser(state: &AppState) -> String {
    organiser_name(&state.engine.settings().config.email.from)
}

fn form(
    state: &AppState,
    next: &str,
    error: &str,
    signed_out: bool,
    status: StatusCode,
) -> Result<Response, ApiError> {
    html(
        &SignInPage {
            organiser: &organiser(state),
            next: destination(next),
            error,
            signed_out,
            idle_hours: session::IDLE.num_hours(),
        },
        status,
    )
}

fn see_other(location: &str) -> warp::reply::WithHeader<StatusCode> {
    warp::reply::with_header(StatusCode::SEE_OTHER, header::LOCATION, location)
}

/// The page, with the reason, for a client refused for too many failures.
fn throttled(state: &AppState, next: &str, seconds: u64) -> Result<Response, Rejection> {
    let minutes = seconds.div_ceil(60);
    let why = format!(
        "Too many wrong passwords from here: try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    );
    let page = form(state, next, &why, false, StatusCode::TOO_MANY_REQUESTS)
        .unwrap_or_else(Reply::into_response);
    Ok(warp::reply::with_header(page, header::RETRY_AFTER, seconds.to_string()).into_response())
}

async fn show(state: &AppState, door: &Door, query: &SignInQuery) -> Result<Response, Rejection> {
    if !state.admin.in_force() {
        return Ok(off_page());
    }
    // Already signed in (a bookmark of this page): straight on.
    if let Some(token) = &door.session
        && session::live(&state.store, token, Utc::now())
            .await
            .unwrap_or(false)
    {
        return Ok(see_other(destination(&query.next)).into_response());
    }
    Ok(form(
        state,
        &query.next,
        "",
        query.signed_out.is_some(),
        StatusCode::OK,
    )
    .unwrap_or_else(Reply::into_response))
}

async fn submit(state: &AppState, door: &Door, body: &[u8]) -> Result<Response, Rejection> {
    if !state.admin.in_force() {
        return Ok(off_page());
    }
    let config = state.engine.settings().config.clone();
    let client = client(&config, door);
    let form_data: Option<SignInForm> = serde_urlencoded::from_bytes(body).ok();
    let next = form_data
        .as_ref()
        .map_or("", |f| f.next.as_str())
        .to_string();
    if let Some(wait) = state.throttle.blocked(client, std::time::Instant::now()) {
        return throttled(state, &next, wait.as_secs() + 1);
    }
    if !same_origin(door, &config.public_url()) {
        tracing::warn!(%client, "a sign-in form posted from another site was refused");
        return Ok(refused(&AdminRefused::CrossSite));
    }
    let Some(form_data) = form_data else {
        return Ok(
            ApiError::BadRequest("the form must carry a field named password".into())
                .into_response(),
        );
    };
    let password = form_data.password;
    let right = if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        false
    } else {
        // Argon2 is slow on purpose: off the async runtime.
        let admin = state.admin.clone();
        tokio::task::spawn_blocking(move || admin.verify(password.as_bytes()))
            .await
            .unwrap_or(false)
    };
    if !right {
        note_failure(state, client);
        if let Some(wait) = state.throttle.blocked(client, std::time::Instant::now()) {
            return throttled(state, &next, wait.as_secs() + 1);
        }
        return Ok(form(
            state,
            &next,
            "That is not the password: try again.",
            false,
            StatusCode::FORBIDDEN,
        )
        .unwrap_or_else(Reply::into_response));
    }
    let token = match session::begin(&state.store, Utc::now()).await {
        Ok(token) => token,
        Err(e) => return Ok(ApiError::from(e).into_response()),
    };
    tracing::info!(%client, "signed in to /admin");
    let secure = session::secure(&config.public_url());
    Ok(warp::reply::with_header(
        see_other(destination(&next)),
        header::SET_COOKIE,
        session::cookie(&token, secure),
    )
    .into_response())
}

async fn sign_out(state: &AppState, door: &Door) -> Result<Response, Rejection> {
    let config = state.engine.settings().config.clone();
    if !same_origin(door, &config.public_url()) {
        let client = client(&config, door);
        tracing::warn!(%client, "a sign-out posted from another site was refused");
        return Ok(refused(&AdminRefused::CrossSite));
    }
    if let Some(token) = &door.session
        && let Err(e) = session::end(&state.store, token).await
    {
        return Ok(ApiError::from(e).into_response());
    }
    let secure = session::secure(&config.public_url());
    Ok(warp::reply::with_header(
        see_other("/admin/sign-in?signed_out=1"),
        header::SET_COOKIE,
        session::cleared(secure),
    )
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::destination;

    #[test]
    fn only_our_own_pages_are_a_destination() {
        for ours in [
            "/admin",
            "/admin/orders",
            "/admin/buyer?email=a%40b&event=1",
            "/admin?x=1",
        ] {
            assert_eq!(destination(ours), ours);
        }
        for other in [
            "",
            "https://evil.example/admin",
            "//evil.example/admin",
            "/admin//evil.example",
            "/admin\\..\\x",
            "/administrator",
            "/admin/sign-in?next=/admin",
            "/admin/sign-out",
            "/admin\r\nSet-Cookie: x=1",
            "/",
        ] {
            assert_eq!(destination(other), "/admin", "{other:?}");
        }
    }
}
