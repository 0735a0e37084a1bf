//! `/setup/{token}`: the first-run link. While no admin password is in force, `serve` prints a
//! one-time link, valid for a day; its page asks for a password (12 characters or more), which is
//! kept only as an Argon2id hash, and the link then stops working. Posting it follows the rules of
//! the `/admin` door: the same login throttle per client and the same same-origin check.

use askama::Template;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::{Door, client, door, same_origin};
use crate::email::organiser_name;
use crate::store::Store;
use crate::web::state::{AppState, with_state};
use crate::web::{AdminRefused, ApiError, MIN_PASSWORD_CHARS, hash_password, html, read_limited};

/// How long a setup link works.
const VALID_FOR: TimeDelta = TimeDelta::hours(24);

/// Largest form accepted (a password and its confirmation).
const MAX_FORM: usize = 4096;

/// Longest password accepted, in bytes (Argon2 takes any length; a limit keeps the work bounded).
const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Template)]
#[template(path = "pages/setup.html")]
struct SetupPage<'a> {
    organiser: &'a str,
    error: &'a str,
    min: usize,
}

#[derive(Template)]
#[template(path = "pages/setup_done.html")]
struct DonePage<'a> {
    organiser: &'a str,
}

#[derive(Template)]
#[template(path = "pages/setup_gone.html")]
struct GonePage<'a> {
    organiser: &'a str,
    /// The password is set in the configuration file, so setup cannot change it.
    configured: bool,
}

/// The setup form.
#[derive(Deserialize)]
struct SetupForm {
    password: String,
    /// The password typed again; checked when the page sends it.
    #[serde(default)]
    confirm: Option<String>,
}

/// A fresh setup link, `{public_url}/setup/{token}`, valid for a day; any earlier one stops working.
/// Only the token's hash is kept.
pub async fn new_link(
    store: &Store,
    public_url: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let token = crate::links::random_token();
    store
        .issue_setup_link(token_hash(&token), now + VALID_FOR)
        .await?;
    Ok(format!(
        "{}/setup/{token}",
        public_url.trim_end_matches('/')
    ))
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `GET /setup/{token}` and `POST /setup/{token}`.
pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + use<> {
    let show = warp::path!("setup" / String)
        .and(warp::get())
        .and(door())
        .and(with_state(state))
        .and_then(|token: String, door: Door, state: AppState| async move {
            answer(show(&state, &token, &door).await)
        });
    let set = warp::path!("setup" / String)
        .and(warp::post())
        .and(door())
        .and(warp::body::stream())
        .and(with_state(state))
        .and_then(
            |token: String, door: Door, body, state: AppState| async move {
                let body = match read_limited(body, MAX_FORM).await {
                    Ok(body) => body,
                    Err(e) => return Ok(e.into_response()),
                };
                answer(set(&state, &token, &door, &body).await)
            },
        );
    show.or(set).unify()
}

/// Why a setup request was not answered with a page.
enum Refused {
    /// As the `/admin` door refuses (throttled, posted from another site): the shared answer.
    Door(AdminRefused),
    /// Answered with this error.
    Api(ApiError),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Api(e)
    }
}

fn answer(result: Result<Response, Refused>) -> Result<Response, Rejection> {
    match result {
        Ok(response) => Ok(response),
        Err(Refused::Api(e)) => Ok(e.into_response()),
        Err(Refused::Door(why)) => Err(warp::reject::custom(why)),
    }
}

/// The page for a used, expired or made-up link (or when the password is in the config file).
fn gone(state: &AppState) -> Result<Response, Refused> {
    let organiser = organiser_name(&state.engine.settings().config.email.from);
    Ok(html(
        &GonePage {
            organiser: &organiser,
            configured: state.admin.configured(),
        },
        StatusCode::NOT_FOUND,
    )?)
}

/// Refuses a throttled client; otherwise the client's address.
fn admit(state: &AppState, door: &Door) -> Result<std::net::IpAddr, Refused> {
    let config = state.engine.settings().config.clone();
    let client = client(&config, door);
    if let Some(wait) = state.throttle.blocked(client, std::time::Instant::now()) {
        return Err(Refused::Door(AdminRefused::Throttled(wait.as_secs() + 1)));
    }
    Ok(client)
}

/// Counts a made-up or spent link as a failed login of `client`.
fn failed(state: &AppState, client: std::net::IpAddr) {
    state.throttle.failed(client, std::time::Instant::now());
    tracing::warn!(%client, "a setup link that does not work was used");
}

async fn usable(state: &AppState, token: &str) -> Result<bool, ApiError> {
    Ok(!state.admin.configured()
        && state
            .store
            .setup_link_valid(token_hash(token), Utc::now())
            .await?)
}

fn form(state: &AppState, error: &str, status: StatusCode) -> Result<Response, Refused> {
    let organiser = organiser_name(&state.engine.settings().config.email.from);
    Ok(html(
        &SetupPage {
            organiser: &organiser,
            error,
            min: MIN_PASSWORD_CHARS,
        },
        status,
    )?)
}

async fn show(state: &AppState, token: &str, door: &Door) -> Result<Response, Refused> {
    let client = admit(state, door)?;
    if !usable(state, token).await? {
        failed(state, client);
        return gone(state);
    }
    form(state, "", StatusCode::OK)
}

async fn set(state: &AppState, token: &str, door: &Door, body: &[u8]) -> Result<Response, Refused> {
    let client = admit(state, door)?;
    let public_url = state.engine.settings().config.public_url();
    if !same_origin(door, &public_url) {
        tracing::warn!(%client, "a setup form posted from another site was refused");
        return Err(Refused::Door(AdminRefused::CrossSite));
    }
    if !usable(state, token).await? {
        failed(state, client);
        return gone(state);
    }
    let form_data: SetupForm = serde_urlencoded::from_bytes(body).map_err(|_| {
        ApiError::BadRequest("the form must carry a field named password".to_string())
    })?;
    let password = form_data.password;
    let refuse = |why: String| form(state, &why, StatusCode::UNPROCESSABLE_ENTITY);
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return refuse(format!(
            "The password is too short: use {MIN_PASSWORD_CHARS} characters or more (a few words \
             make a long password that is easy to remember)."
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return refuse(format!(
            "The password is too long: use at most {MAX_PASSWORD_BYTES} characters."
        ));
    }
    if form_data.confirm.is_some_and(|c| c != password) {
        return refuse("The two passwords are not the same: type them again.".to_string());
    }
    // Argon2 is slow on purpose: off the async runtime.
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing the password stopped: {e}")))?
        .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    if !state
        .store
        .finish_setup(token_hash(token), hash.clone(), Utc::now())
        .await
        .map_err(ApiError::from)?
    {
        // Another request used the link first.
        return gone(state);
    }
    state.admin.set_hash(hash);
    tracing::info!("setup finished: the admin password is set, and the setup link is spent");
    let organiser = organiser_name(&state.engine.settings().config.email.from);
    Ok(html(
        &DonePage {
            organiser: &organiser,
        },
        StatusCode::OK,
    )?)
}
