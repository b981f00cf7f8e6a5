//! A test's scratch folder, removed when the test ends (passed or not).
//!
//! One file for every test crate that makes scratch folders (the venue's
//! and settlement's integration tests), included with
//! `#[path = "../../../testkit/scratch.rs"] mod scratch_dir;` from the
//! test's `main.rs`: the workspace has no test-support crate.

use std::path::{Path, PathBuf};

/// A folder removed when dropped; it reads as the `PathBuf` it is.
pub struct Scratch(PathBuf);

impl Scratch {
    /// `dir`, removed if an earlier run left it, and created empty.
    pub fn fresh(dir: PathBuf) -> Scratch {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
