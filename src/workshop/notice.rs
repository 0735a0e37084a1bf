//! Noticing files changed by hand: at start and on every reload, the editable files on disk are
//! compared with the content last recorded, and what differs is recorded as "changed on disk".

use std::path::Path;

use super::{FileId, Paths, SCHEDULE_LABEL, TEMPLATES_PREFIX, files};
use crate::config::Config;
use crate::store::Store;

/// Records the editable files that changed on disk since their content was last recorded (one
/// history entry for all of them); a file seen for the first time is only remembered. Answers the
/// entry, if one was recorded.
pub async fn notice_hand_edits(
    store: &Store,
    config: &Config,
    config_file: Option<&Path>,
) -> anyhow::Result<Option<i64>> {
    let paths = Paths::of(config, config_file);
    let scan = {
        let paths = paths.clone();
        tokio::task::spawn_blocking(move || scan(&paths))
            .await
            .map_err(|e| anyhow::anyhow!("scanning the editable files failed: {e}"))??
    };
    let (observed, roots) = scan;
    let recorded = store
        .notice_files(
            chrono::Utc::now(),
            observed,
            roots,
            "changed on disk".into(),
        )
        .await?;
    if let Some(id) = recorded
        && let Some(change) = store.history_change(id).await?
    {
        let names: Vec<&str> = change.files.iter().map(|f| f.file.as_str()).collect();
        tracing::info!(files = %names.join(", "), "files changed by hand were recorded in the history");
    }
    Ok(recorded)
}

/// The editable files on disk with their contents, and the history names they cover (a known
/// file under one of them that is missing now was deleted).
type Scan = (Vec<(String, Option<String>)>, Vec<String>);

fn scan(paths: &Paths) -> anyhow::Result<Scan> {
    let mut observed = Vec::new();
    let mut roots = Vec::new();
    if !paths.built_in && paths.templates.is_dir() {
        roots.push(TEMPLATES_PREFIX.to_string());
        let mut dirs: Vec<_> = std::fs::read_dir(&paths.templates)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let Some(dir_name) = dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let mut entries: Vec<_> = std::fs::read_dir(&dir)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            for path in entries {
                let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Some(id) = FileId::template(dir_name, file_name) else {
                    continue;
                };
                // A file that is not text is not an editable file: left out, never an error.
                if let Ok(content) = files::read(&path) {
                    observed.push((id.label(), content));
                }
            }
        }
    }
    if let Some(schedule) = &paths.schedule {
        roots.push(SCHEDULE_LABEL.to_string());
        if let Ok(content) = files::read(schedule)
            && content.is_some()
        {
            observed.push((SCHEDULE_LABEL.to_string(), content));
        }
    }
    Ok((observed, roots))
}
