//! Every rules version a venue names (`[compliance] rules`, one file or a
//! list), and which one is in force on a day: the one with the latest
//! `effective_from` on or before it. One undated file is in force always;
//! in a list every file must be dated, no two on the same day.

use std::path::PathBuf;

use super::{Date, Rules};
use crate::values::LoadError;

/// The versions, oldest first.
#[derive(Clone, Debug)]
pub struct RuleVersions {
    versions: Vec<Rules>,
    /// The files, in the same order (for errors).
    files: Vec<PathBuf>,
}

impl RuleVersions {
    /// Reads every file; what is wrong names the file.
    pub fn load(files: &[PathBuf]) -> Result<RuleVersions, LoadError> {
        let mut loaded: Vec<(Rules, PathBuf)> = Vec::with_capacity(files.len());
        for file in files {
            let rules = Rules::load(file)?;
            if files.len() > 1 && rules.effective_from.is_none() {
                return Err(LoadError {
                    file: file.clone(),
                    location: "effective_from".into(),
                    message: "missing: every file of a list of rules versions must say from which day it is in force".into(),
                });
            }
            if let Some((_, other)) = loaded
                .iter()
                .find(|(r, _)| r.effective_from == rules.effective_from)
            {
                return Err(LoadError {
                    file: file.clone(),
                    location: "effective_from".into(),
                    message: format!("{} takes effect on the same day", other.display()),
                });
            }
            loaded.push((rules, file.clone()));
        }
        loaded.sort_by_key(|(r, _)| r.effective_from);
        let (versions, files) = loaded.into_iter().unzip();
        Ok(RuleVersions { versions, files })
    }

    /// The version in force on `date`, if any.
    #[must_use]
    pub fn in_force(&self, date: Date) -> Option<&Rules> {
        self.versions
            .iter()
            .rev()
            .find(|r| r.effective_from.is_none_or(|from| from <= date))
    }

    /// [`RuleVersions::in_force`], or an error naming the earliest version.
    pub fn in_force_or_error(&self, date: Date) -> Result<&Rules, LoadError> {
        self.in_force(date).ok_or_else(|| LoadError {
            file: self.files.first().cloned().unwrap_or_default(),
            location: "effective_from".into(),
            message: format!(
                "no rules version is in force on {date} (the earliest takes effect on {})",
                self.versions
                    .first()
                    .and_then(|r| r.effective_from)
                    .map_or_else(|| "no day".to_string(), |d| d.to_string())
            ),
        })
    }

    /// Every version, oldest first.
    #[must_use]
    pub fn all(&self) -> &[Rules] {
        &self.versions
    }
}
