//! `/admin/history`: every change to the editable files, newest first, each with its diff and a
//! Restore button (a restore is a save: validated again, conflict-checked, recorded); and the
//! banner the overview shows after a refused reload or a file changed by hand.

use askama::Template;
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::email_editor::{DiffLine, Peer, client, diff_lines, form, saved_notice, status_of};
use super::{AppState, page as render_page, with_notice};
use crate::store::history::Via;
use crate::web::ApiError;
use crate::workshop::Version;

/// Entries shown.
const SHOWN: usize = 100;

/// The query of the history page.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct HistoryQuery {
    notice: String,
}

/// The restore form: the versions on disk the page showed, one per file of the entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RestoreForm {
    versions: String,
    /// "yes": the confirmation's button (a restore of the schedule asks first).
    confirmed: String,
}

/// The confirmation asked before a restore that changes the schedule: what it will do.
struct RestoreConfirm {
    id: i64,
    versions: String,
    consequence: String,
    soon: Vec<super::schedule::SendRow>,
}

struct FileRow {
    name: String,
    note: &'static str,
    lines: Vec<DiffLine>,
}

struct ChangeRow {
    id: i64,
    via: &'static str,
    when: String,
    who: String,
    summary: String,
    files: Vec<FileRow>,
    versions: String,
}

#[derive(Template)]
#[template(path = "pages/admin/history.html")]
struct HistoryPage {
    active: &'static str,
    notice: String,
    confirm: Option<RestoreConfirm>,
    problem: String,
    diff: Vec<DiffLine>,
    changes: Vec<ChangeRow>,
}

async fn history_page(
    state: &AppState,
    notice: String,
    problem: String,
    diff: Vec<DiffLine>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    history_page_with(state, notice, problem, diff, status, None).await
}

async fn history_page_with(
    state: &AppState,
    notice: String,
    problem: String,
    diff: Vec<DiffLine>,
    status: StatusCode,
    confirm: Option<RestoreConfirm>,
) -> Result<Response, ApiError> {
    let mut changes = Vec::new();
    for c in state.store.history(SHOWN).await? {
        let names: Vec<String> = c.files.iter().map(|f| f.file.clone()).collect();
        let versions = state.workshop.versions_of(&names).await;
        changes.push(ChangeRow {
            id: c.id,
            via: c.via.as_str(),
            when: super::local(state, &crate::store::timestamp(c.at)),
            who: match c.via {
                Via::Browser => format!("saved in the browser at {}", c.client),
                Via::File => "changed by hand on disk".into(),
            },
            summary: c.summary,
            files: c
                .files
                .iter()
                .map(|f| FileRow {
                    name: f.file.clone(),
                    note: match (&f.previous, &f.content) {
                        (None, Some(_)) => "new",
                        (Some(_), None) => "removed",
                        _ => "",
                    },
                    lines: diff_lines(&crate::workshop::diff(
                        f.previous.as_deref().unwrap_or_default(),
                        f.content.as_deref().unwrap_or_default(),
                        &f.file,
                    ))
                    .into_iter()
                    .skip(2)
                    .collect(),
                })
                .collect(),
            versions: versions
                .iter()
                .map(Version::as_str)
                .collect::<Vec<_>>()
                .join(","),
        });
    }
    let mut reply = render_page(&HistoryPage {
        active: "history",
        notice,
        confirm,
        problem,
        diff,
        changes,
    })?;
    *reply.status_mut() = status;
    Ok(reply)
}

/// `GET /admin/history`
pub(super) async fn page(state: AppState, q: HistoryQuery) -> Result<Response, ApiError> {
    history_page(&state, q.notice, String::new(), Vec::new(), StatusCode::OK).await
}

/// `POST /admin/history/{id}/restore`
pub(super) async fn restore(
    state: AppState,
    (id, peer, body): (i64, Peer, bytes::Bytes),
) -> Result<Response, ApiError> {
    let f: RestoreForm = form(&body)?;
    let versions = f
        .versions
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| {
            Version::parse(v).ok_or_else(|| {
                ApiError::BadRequest(
                    "the form's file versions are not ones this page writes: open the history again"
                        .into(),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A restore of the schedule says first what it will do, as a save from the editor does.
    if f.confirmed != "yes"
        && let Some(config) = state
            .workshop
            .schedule_restored(id)
            .await
            .map_err(|e| ApiError::Internal(format!("{e:#}")))?
    {
        let (consequence, soon) =
            super::schedule::within_the_hour(&state, &config, "Restoring").await?;
        let confirm = RestoreConfirm {
            id,
            versions: f.versions.clone(),
            consequence,
            soon,
        };
        return history_page_with(
            &state,
            String::new(),
            String::new(),
            Vec::new(),
            StatusCode::OK,
            Some(confirm),
        )
        .await;
    }
    match state
        .workshop
        .restore(id, versions, client(&state, &peer))
        .await
    {
        Ok(saved) => Ok(with_notice(
            "/admin/history",
            &[(
                "notice",
                saved_notice(&saved, &format!("Restored what was there before #{id}")).as_str(),
            )],
        )),
        Err(e) => {
            let diff = match &e {
                crate::workshop::SaveError::Conflict { diff, .. } => diff_lines(diff),
                _ => Vec::new(),
            };
            history_page(&state, String::new(), e.to_string(), diff, status_of(&e)).await
        }
    }
}

/// What the overview's banner says: a refused reload, or files changed by hand (the newest
/// change in the history, until a save from the browser follows it).
pub(super) async fn banners(state: &AppState) -> Vec<String> {
    let mut banners = Vec::new();
    if let Some(error) = state.engine.reload_status().last_error {
        banners.push(format!(
            "The last reload was refused, so the settings from before it are still in force: {error}"
        ));
    }
    if let Ok(latest) = state.store.history(1).await
        && let Some(change) = latest.first()
        && change.via == Via::File
    {
        banners.push(format!(
            "Files were changed by hand on {} ({}): see History.",
            super::local(state, &crate::store::timestamp(change.at)),
            change.summary
        ));
    }
    banners
}
