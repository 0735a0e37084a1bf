//! `[templates]`: where the email templates come from.

use super::*;

/// `[templates]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    /// Directory holding one sub-directory per email template; unset: [`DEFAULT_TEMPLATES_DIR`]
    /// when it exists, else the templates built into the binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// The templates directory read when `templates.dir` is unset and it exists (relative to the
/// working directory; `init` writes it).
pub const DEFAULT_TEMPLATES_DIR: &str = "templates/emails";

/// Where the email templates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// The shipped templates, built into the binary.
    BuiltIn,
    /// A directory of the organiser's files.
    Dir(PathBuf),
}

impl std::fmt::Display for TemplateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateSource::BuiltIn => f.write_str("built-in"),
            TemplateSource::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

impl TemplatesConfig {
    /// `dir` when set (an error naming it when it is not a directory), else
    /// [`DEFAULT_TEMPLATES_DIR`] when it exists, else the built-in templates.
    pub fn source(&self) -> Result<TemplateSource, ConfigError> {
        match &self.dir {
            Some(dir) if dir.is_dir() => Ok(TemplateSource::Dir(dir.clone())),
            Some(dir) => Err(invalid(
                "templates.dir",
                format!(
                    "{} is not a directory; create it (quicket-followup init writes the shipped templates), or leave templates.dir unset to use the built-in templates",
                    dir.display()
                ),
            )),
            None if Path::new(DEFAULT_TEMPLATES_DIR).is_dir() => {
                Ok(TemplateSource::Dir(PathBuf::from(DEFAULT_TEMPLATES_DIR)))
            }
            None => Ok(TemplateSource::BuiltIn),
        }
    }
}
