//! The doors a browser finds without a link from an email: `GET /` (what this is, whether it is
//! set up, where to sign in) and `GET` on the webhook address (what the address is for, and when
//! Quicket last used it). Neither shows anything private; a wrong token shows nothing at all.

use askama::Template;
use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::state::{AppState, with_state};
use super::{ApiError, html};
use crate::email::organiser_name;

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage<'a> {
    organiser: &'a str,
    set_up: bool,
}

#[derive(Template)]
#[template(path = "pages/webhook_address.html")]
struct WebhookAddressPage<'a> {
    organiser: &'a str,
    address: &'a str,
    /// When Quicket last posted here, in the organiser's words; `None`: never.
    last: Option<LastHook>,
}

/// When the latest hook arrived: the local time and how long ago.
struct LastHook {
    at: String,
    ago: String,
}

/// `GET /` and `GET /webhooks/quicket/{token}`.
pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + use<> {
    let home = warp::path::end()
        .and(warp::get())
        .and(with_state(state))
        .then(|state: AppState| async move { respond(home(&state)) });
    let address = warp::path!("webhooks" / "quicket" / String)
        .and(warp::get())
        .and(with_state(state))
        .then(|token: String, state: AppState| async move {
            respond(webhook_address(&state, &token, Utc::now()).await)
        });
    home.or(address).unify()
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

fn home(state: &AppState) -> Result<Response, ApiError> {
    let organiser = organiser_name(&state.engine.settings().config.email.from);
    html(
        &HomePage {
            organiser: &organiser,
            set_up: state.admin.in_force(),
        },
        StatusCode::OK,
    )
}

async fn webhook_address(
    state: &AppState,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    // Constant time, as the POST checks it: the page must not help anyone guess the token.
    if !bool::from(token.as_bytes().ct_eq(state.webhook_token.as_bytes())) {
        return Ok(warp::reply::with_status("Not found\n", StatusCode::NOT_FOUND).into_response());
    }
    let settings = state.engine.settings();
    let config = &settings.config;
    let organiser = organiser_name(&config.email.from);
    let address = format!(
        "{}/webhooks/quicket/{}",
        config.public_url(),
        state.webhook_token
    );
    let last = state.store.last_hook_at().await?.map(|at| LastHook {
        at: at
            .with_timezone(&config.schedule.timezone)
            .format("%A %-d %B %Y at %H:%M")
            .to_string(),
        ago: ago(now - at),
    });
    html(
        &WebhookAddressPage {
            organiser: &organiser,
            address: &address,
            last,
        },
        StatusCode::OK,
    )
}

/// A span in words, rounded down to its largest unit ("just now", "5 minutes ago", "3 days ago").
fn ago(span: chrono::TimeDelta) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match span.num_seconds() {
        s if s < 60 => "just now".to_string(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s => plural(s / 86_400, "day"),
    }
}

#[cfg(test)]
mod tests {
    use super::ago;
    use chrono::TimeDelta;

    #[test]
    fn spans_read_as_words_rounded_down() {
        assert_eq!(ago(TimeDelta::seconds(-5)), "just now");
        assert_eq!(ago(TimeDelta::seconds(59)), "just now");
        assert_eq!(ago(TimeDelta::seconds(60)), "1 minute ago");
        assert_eq!(ago(TimeDelta::minutes(59)), "59 minutes ago");
        assert_eq!(ago(TimeDelta::hours(1)), "1 hour ago");
        assert_eq!(ago(TimeDelta::hours(47)), "1 day ago");
        assert_eq!(ago(TimeDelta::days(3)), "3 days ago");
    }
}
