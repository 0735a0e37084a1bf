//! Reading an editable file with its version, and replacing it atomically: a temp file in the same
//! directory, fsync, rename, fsync of the directory, so that a crash leaves the old file or the
//! new one, never half of either.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// A file's version: a hash of its bytes, or "absent". The editor sends back the version it
/// loaded; a save is refused when the file on disk is no longer that version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

/// What [`Version`] says of a file that does not exist.
const ABSENT: &str = "absent";

impl Version {
    /// The version of these bytes (`None`: no such file).
    pub fn of(bytes: Option<&[u8]>) -> Version {
        match bytes {
            None => Version(ABSENT.into()),
            Some(bytes) => {
                let digest = Sha256::digest(bytes);
                Version(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
            }
        }
    }

    /// The version of a missing file.
    pub fn absent() -> Version {
        Version(ABSENT.into())
    }

    /// Reads a version as a form sent it back (32 hex digits, or `absent`); anything else is none.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let hex = text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
        (text == ABSENT || hex).then(|| Version(text.to_ascii_lowercase()))
    }

    /// As sent to the editor.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The content of a file (`None` when it does not exist). A file that is not UTF-8 is an error:
/// every editable file is text.
pub fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes `content` to `path` atomically, creating its directory when missing.
pub fn write_atomically(path: &Path, content: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        if let Some(parent) = dir.parent().filter(|d| !d.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no file name", path.display()))?;
    let temp = dir.join(format!(".{name}.{}.tmp", crate::links::random_token()));
    let written = (|| -> anyhow::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        file.write_all(content.as_bytes())
            .with_context(|| format!("cannot write {}", temp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot flush {}", temp.display()))?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

/// Removes `path` (nothing to do when it is already gone), durably.
pub fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush the directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_tell_contents_apart_and_parse_only_what_they_write() {
        let a = Version::of(Some(b"Hi"));
        assert_eq!(a, Version::of(Some(b"Hi")));
        assert_ne!(a, Version::of(Some(b"Hi ")));
        assert_ne!(a, Version::absent());
        assert_eq!(Version::parse(a.as_str()), Some(a.clone()));
        assert_eq!(Version::parse("absent"), Some(Version::absent()));
        for bad in ["", "../x", "zz", &"a".repeat(64)] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/sub/subject.txt");
        write_atomically(&path, "one").unwrap();
        write_atomically(&path, "two").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some("two"));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("subject.txt")]);
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert_eq!(read(&path).unwrap(), None);
    }
}
