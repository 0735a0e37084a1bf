//! The shipped email templates, built into the binary: used while `templates.dir` is unset and
//! `templates/emails` does not exist (so the binary runs from any directory), and what `init`
//! writes out for an organiser to edit.

/// Every shipped file, by its path under `templates/emails/`.
pub const FILES: &[(&str, &str)] = &[
    (
        "_shared/footer.txt",
        include_str!("../templates/emails/_shared/footer.txt"),
    ),
    (
        "_shared/layout.html",
        include_str!("../templates/emails/_shared/layout.html"),
    ),
    (
        "abandoned/body.html",
        include_str!("../templates/emails/abandoned/body.html"),
    ),
    (
        "abandoned/body.txt",
        include_str!("../templates/emails/abandoned/body.txt"),
    ),
    (
        "abandoned/subject.txt",
        include_str!("../templates/emails/abandoned/subject.txt"),
    ),
    (
        "abandoned/words.toml",
        include_str!("../templates/emails/abandoned/words.toml"),
    ),
    (
        "eft_pending/body.html",
        include_str!("../templates/emails/eft_pending/body.html"),
    ),
    (
        "eft_pending/body.txt",
        include_str!("../templates/emails/eft_pending/body.txt"),
    ),
    (
        "eft_pending/subject.txt",
        include_str!("../templates/emails/eft_pending/subject.txt"),
    ),
    (
        "eft_pending/words.toml",
        include_str!("../templates/emails/eft_pending/words.toml"),
    ),
    (
        "last_chance/body.html",
        include_str!("../templates/emails/last_chance/body.html"),
    ),
    (
        "last_chance/body.txt",
        include_str!("../templates/emails/last_chance/body.txt"),
    ),
    (
        "last_chance/subject.txt",
        include_str!("../templates/emails/last_chance/subject.txt"),
    ),
    (
        "last_chance/words.toml",
        include_str!("../templates/emails/last_chance/words.toml"),
    ),
];

/// A built-in file's text, by its path under `templates/emails/` (`abandoned/subject.txt`).
pub fn get(path: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
}

/// The names of the built-in templates (`abandoned`, ...), without `_shared`.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = FILES
        .iter()
        .filter_map(|(p, _)| p.split_once('/').map(|(dir, _)| dir))
        .filter(|dir| *dir != "_shared")
        .collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_file_is_built_in() {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap();
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/emails");
        let mut shipped = Vec::new();
        walk(&root, &root, &mut shipped);
        shipped.sort();
        let built_in: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            shipped, built_in,
            "add new files under templates/emails/ to FILES"
        );
        assert_eq!(names(), ["abandoned", "eft_pending", "last_chance"]);
    }
}
