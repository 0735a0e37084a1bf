//! The routes behind the links in every email: the unsubscribe page (GET shows, POST acts, so a
//! mail scanner following links changes nothing) and the tracked event link.

use askama::Template;
use chrono::Utc;
use warp::Filter;
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};

use super::state::{AppState, with_state};
use super::{ApiError, html};
use crate::email::organiser_name;
use crate::links::{LinkTarget, Purpose};
use crate::scanner::{Link, Request};
use crate::store::clicks::Fetch;
use crate::store::privacy::SuppressionSource;

/// Largest form body accepted on the unsubscribe POST.
const MAX_FORM: usize = 4096;

#[derive(Template)]
#[template(path = "pages/unsubscribe.html")]
struct UnsubscribePage<'a> {
    organiser: &'a str,
    email: &'a str,
    action: &'a str,
    already: bool,
    can_undo: bool,
}

#[derive(Template)]
#[template(path = "pages/unsubscribed.html")]
struct UnsubscribedPage<'a> {
    organiser: &'a str,
    email: &'a str,
    action: &'a str,
    resubscribed: bool,
    can_undo: bool,
}

#[derive(Template)]
#[template(path = "pages/not_found.html")]
struct NotFoundPage<'a> {
    organiser: &'a str,
}

/// `GET /unsubscribe/{token}`, `POST /unsubscribe/{token}` and `GET /r/{token}`.
pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + use<> {
    let page = warp::path!("unsubscribe" / String)
        .and(warp::get())
        .and(request(false))
        .and(with_state(state))
        .then(|token: String, request, state: AppState| async move {
            respond(unsubscribe_page(&state, &token, request).await)
        });
    let act = warp::path!("unsubscribe" / String)
        .and(warp::post())
        .and(warp::body::stream())
        .and(with_state(state))
        .then(|token: String, body, state: AppState| async move {
            let body = match super::read_limited(body, MAX_FORM).await {
                Ok(body) => body,
                Err(e) => return e.into_response(),
            };
            respond(unsubscribe(&state, &token, &body).await)
        });
    // HEAD too: link checkers send it, and get the same immediate redirect (marked as a scanner).
    let click = warp::path!("r" / String)
        .and(
            warp::get()
                .and(request(false))
                .or(warp::head().and(request(true)))
                .unify(),
        )
        .and(with_state(state))
        .then(|token: String, request, state: AppState| async move {
            respond(click(&state, &token, request).await)
        });
    page.or(act).unify().or(click).unify()
}

/// What a request says about itself that tells a link scanner from a person.
fn request(head: bool) -> impl Filter<Extract = (Request,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("user-agent")
        .and(warp::header::optional::<String>("sec-purpose"))
        .and(warp::header::optional::<String>("purpose"))
        .map(
            move |user_agent, sec_purpose: Option<String>, purpose| Request {
                head,
                user_agent,
                purpose: sec_purpose.or(purpose),
            },
        )
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// The page for a forged, altered, malformed, expired or forgotten token (which changes nothing).
fn not_found(state: &AppState) -> Result<Response, ApiError> {
    let organiser = organiser_name(&state.engine.settings().config.email.from);
    html(
        &NotFoundPage {
            organiser: &organiser,
        },
        StatusCode::NOT_FOUND,
    )
}

/// What a token in a link names, when it works on this route now.
struct Resolved {
    target: LinkTarget,
    /// An old-format token (which the event link shared): it may unsubscribe, never undo one.
    legacy: bool,
}

async fn resolve(
    state: &AppState,
    token: &str,
    purpose: Purpose,
) -> Result<Option<Resolved>, ApiError> {
    let now = Utc::now();
    if crate::links::is_token(token) {
        let target = state.store.resolve_link_token(token, purpose, now).await?;
        return Ok(target.map(|target| Resolved {
            target,
            legacy: false,
        }));
    }
    let Some(target) = state.engine.links().verify_legacy(token) else {
        return Ok(None);
    };
    let works = state.store.legacy_link_works(target.clone(), now).await?;
    Ok(works.then_some(Resolved {
        target,
        legacy: true,
    }))
}

async fn unsubscribe_page(
    state: &AppState,
    token: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let Some(link) = resolve(state, token, Purpose::Unsubscribe).await? else {
        return not_found(state);
    };
    // Kept so that a scanner fetching every link of the email is recognised; changes nothing.
    record_fetch(state, &link.target, Link::Unsubscribe, request).await;
    let already = state.store.is_suppressed(&link.target.email_key).await?;
    let settings = state.engine.settings();
    let organiser = organiser_name(&settings.config.email.from);
    let action = state.engine.links().url(Purpose::Unsubscribe, token);
    html(
        &UnsubscribePage {
            organiser: &organiser,
            email: &link.target.email_key,
            action: &action,
            already,
            can_undo: !link.legacy,
        },
        StatusCode::OK,
    )
}

async fn unsubscribe(state: &AppState, token: &str, body: &[u8]) -> Result<Response, ApiError> {
    let Some(link) = resolve(state, token, Purpose::Unsubscribe).await? else {
        return not_found(state);
    };
    let target = &link.target;
    // RFC 8058 mail clients post `List-Unsubscribe=One-Click`; the page posts `action=...`. Only
    // an explicit `action=resubscribe` undoes, and only with a token made for unsubscribing (an
    // old-format token is also in the event link, which buyers forward); anything else (also an
    // empty body) unsubscribes.
    let resubscribe = !link.legacy && form_value(body, "action").as_deref() == Some("resubscribe");
    let now = Utc::now();
    if resubscribe {
        state
            .store
            .remove_suppression(
                &target.email_key,
                crate::store::privacy::Removal {
                    by: crate::store::privacy::RemovedBy::Buyer,
                    client: String::new(),
                    reason: "the buyer asked to be emailed again, through the link in an email"
                        .into(),
                },
                now,
            )
            .await?;
        tracing::info!(event = %target.event_id, step = %target.step, "a buyer subscribed again");
    } else {
        let added = state
            .store
            .add_suppression(
                &target.email_key,
                SuppressionSource::Unsubscribe,
                Some(target.event_id.clone()),
                Some(target.step.clone()),
                now,
            )
            .await?;
        if added {
            tracing::info!(event = %target.event_id, step = %target.step, "a buyer unsubscribed");
        }
    }
    let settings = state.engine.settings();
    let organiser = organiser_name(&settings.config.email.from);
    let action = state.engine.links().url(Purpose::Unsubscribe, token);
    html(
        &UnsubscribedPage {
            organiser: &organiser,
            email: &target.email_key,
            action: &action,
            resubscribed: resubscribe,
            can_undo: !link.legacy,
        },
        StatusCode::OK,
    )
}

/// Records a fetch of one of an email's links (a failure is logged: the buyer goes on anyway).
async fn record_fetch(state: &AppState, target: &LinkTarget, link: Link, request: Request) {
    let fetch = Fetch {
        email_key: target.email_key.clone(),
        event_id: target.event_id.clone(),
        step: target.step.clone(),
        link,
        request,
        at: Utc::now(),
        timing: state.engine.settings().config.experiment.scanner_timing(),
    };
    match state.store.record_fetch(fetch).await {
        Ok(outcome) => tracing::debug!(
            ?outcome,
            link = link.as_str(),
            "a link of an email was fetched"
        ),
        Err(e) => tracing::warn!("a click could not be recorded: {e}"),
    }
}

async fn click(state: &AppState, token: &str, request: Request) -> Result<Response, ApiError> {
    let Some(link) = resolve(state, token, Purpose::Event).await? else {
        return not_found(state);
    };
    let target = link.target;
    let info = state.engine.events().cached(&target.event_id).await;
    let page = state
        .engine
        .settings()
        .event_page(&target.event_id, info.as_ref());
    // The buyer goes on to the event even if the click cannot be recorded.
    record_fetch(state, &target, Link::Event, request).await;
    let reply = warp::reply::with_header(StatusCode::FOUND, header::LOCATION, page);
    Ok(warp::reply::with_header(reply, header::CACHE_CONTROL, "no-store").into_response())
}
/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}
