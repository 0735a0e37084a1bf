//! `POST /webhooks/quicket/{token}`: receives one Quicket hook, keeps it, and answers only once
//! it is durably stored.

use bytes::Buf;
use chrono::Utc;
use futures_util::Stream;
use serde_json::json;
use subtle::ConstantTimeEq;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::quicket::{self, HookAction};
use crate::store::HookOutcome;
use crate::web::{ApiError, AppState, json_status, read_limited, with_state};

fn count(action: &'static str, outcome: &'static str) {
    metrics::counter!(crate::metrics::HOOKS, "action" => action, "outcome" => outcome).increment(1);
}

/// Largest body accepted (1 MiB); Quicket's hooks are a few hundred bytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// The webhook route.
pub fn route(
    state: &AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + use<> {
    warp::path!("webhooks" / "quicket" / String)
        .and(warp::post())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and(with_state(state))
        .then(
            |token: String, length: Option<u64>, body, state: AppState| async move {
                receive(&state, &token, length, body)
                    .await
                    .unwrap_or_else(Reply::into_response)
            },
        )
}

async fn receive<S, B>(
    state: &AppState,
    token: &str,
    length: Option<u64>,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    // Constant time, so the token cannot be guessed byte by byte from response times.
    if !bool::from(token.as_bytes().ct_eq(state.webhook_token.as_bytes())) {
        tracing::warn!("webhook called with a wrong token");
        count("none", "unauthorized");
        return Err(ApiError::Unauthorized);
    }
    let too_large = || {
        count("none", "too_large");
        ApiError::PayloadTooLarge(MAX_BODY)
    };
    if length.is_some_and(|l| l > MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = match read_limited(body, MAX_BODY).await {
        Err(ApiError::PayloadTooLarge(_)) => return Err(too_large()),
        other => other?,
    };
    let parsed = quicket::parse_hook_in(&body, state.hook_timezone);
    let action = match &parsed {
        Ok(hook) => match &hook.action {
            HookAction::Known(state) => state.as_str(),
            HookAction::Unknown(_) => "other",
        },
        Err(_) => "none",
    };
    let event_id = parsed.as_ref().ok().and_then(|h| h.event_id.clone());
    let result = match state.store.ingest(body, parsed, Utc::now()).await {
        Ok(result) => result,
        Err(e) => {
            count(action, "unavailable");
            return Err(e.into());
        }
    };
    count(action, result.outcome.label());
    answer(
        state,
        result.delivery_id,
        result.outcome,
        event_id.as_deref(),
    )
}

/// A 200 with a JSON body known in advance (the bytes `serde_json` would write for it).
fn fixed_json(body: &'static str) -> Response {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer for a stored hook; a recorded one's event is looked up in Quicket's API (in the
/// background).
fn answer(
    state: &AppState,
    id: i64,
    outcome: HookOutcome,
    event_id: Option<&str>,
) -> Result<Response, ApiError> {
    let answer = match outcome {
        // One line per hook is for debugging (RUST_LOG=debug): at INFO, thousands a second
        // would bury what an operator needs to see, and cost more than storing them.
        HookOutcome::Recorded => {
            tracing::debug!(delivery = id, "hook recorded");
            if let Some(event_id) = event_id {
                state.engine.events().notice(event_id);
            }
            fixed_json(r#"{"status":"recorded"}"#)
        }
        HookOutcome::Duplicate => {
            tracing::debug!(delivery = id, "hook repeated; nothing changed");
            fixed_json(r#"{"status":"duplicate"}"#)
        }
        HookOutcome::Ignored(reason) => {
            tracing::warn!(delivery = id, "hook kept but ignored: {reason}");
            json_status(
                &json!({"status": "ignored", "reason": reason}),
                StatusCode::OK,
            )
        }
        HookOutcome::Rejected(reason) => {
            tracing::warn!(delivery = id, "body kept but refused: {reason}");
            return Err(ApiError::BadRequest(reason));
        }
        HookOutcome::Failed(reason) => {
            return Err(ApiError::Internal(format!(
                "the body was kept as delivery {id} but could not be applied: {reason}"
            )));
        }
    };
    Ok(answer)
}
