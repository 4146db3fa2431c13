//! What the CLI learned about task timings, kept across runs in the user's cache folder
//! (`$XDG_CACHE_HOME/cometapi-runway/learned.json`, else the platform's cache folder), one
//! entry per base URL so a simulator never teaches the real service's timings. A missing or
//! corrupt file starts fresh; a file that cannot be written is skipped: never an error.
//! `--no-learn` or `COMETAPI_RUNWAY_NO_LEARN=1` turns it off, and `--mock` never uses it.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use cometapi_runway::Learned;
use serde::{Deserialize, Serialize};

/// Base URLs remembered; past that, the file starts over with the current one.
const MAX_BASE_URLS: usize = 8;

/// The file's layout.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct File {
    by_base_url: BTreeMap<String, Learned>,
}

/// Where this run's learning is kept, and for which base URL.
pub struct Store {
    path: PathBuf,
    base_url: String,
}

impl Store {
    /// The store for `base_url`, unless learning is off or there is no cache folder.
    pub fn open(base_url: &str, off: bool) -> Option<Store> {
        if off {
            return None;
        }
        Some(Store { path: cache_dir()?.join("cometapi-runway").join("learned.json"), base_url: base_url.to_string() })
    }

    /// What earlier runs learned against this base URL; empty if none, or if the file is
    /// missing or unreadable.
    pub fn load(&self) -> Learned {
        read(&self.path).by_base_url.remove(&self.base_url).unwrap_or_default()
    }

    /// Keeps `learned` for this base URL (other base URLs' entries as they are now in the file),
    /// replacing the file atomically. Failures are ignored: learning is an optimisation.
    pub fn save(&self, learned: Learned) {
        let mut file = read(&self.path);
        if file.by_base_url.len() >= MAX_BASE_URLS && !file.by_base_url.contains_key(&self.base_url) {
            file.by_base_url.clear();
        }
        file.by_base_url.insert(self.base_url.clone(), learned);
        if let Err(e) = write(&self.path, &file) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not keep what was learned");
        }
    }
}

fn read(path: &Path) -> File {
    std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
}

/// Written to a temporary file beside it, then renamed over it: a reader never sees half a file.
fn write(path: &Path, file: &File) -> std::io::Result<()> {
    let dir = path.parent().expect("the path has a folder");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&serde_json::to_vec(file).map_err(std::io::Error::other)?)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The user's cache folder: `XDG_CACHE_HOME`, else the platform's usual place under the home
/// folder (`LOCALAPPDATA` on Windows).
fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Some(dir);
    }
    if cfg!(windows) {
        return var("LOCALAPPDATA");
    }
    let home = var("HOME")?;
    Some(if cfg!(target_os = "macos") { home.join("Library").join("Caches") } else { home.join(".cache") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, base_url: &str) -> Store {
        Store { path: dir.join("cometapi-runway").join("learned.json"), base_url: base_url.to_string() }
    }

    fn some_learning() -> Learned {
        let mut learned = Learned::default();
        for finished in [30.0, 40.0, 50.0] {
            learned.record(Some("gen4_turbo/5"), Some(5.0), finished);
        }
        learned
    }

    #[test]
    fn what_is_saved_is_loaded_for_the_same_base_url_only() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), "https://api.cometapi.com").save(some_learning());
        assert_eq!(store(dir.path(), "https://api.cometapi.com").load(), some_learning());
        assert_eq!(store(dir.path(), "http://127.0.0.1:8080").load(), Learned::default());
    }

    #[test]
    fn a_missing_or_corrupt_file_starts_fresh_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "https://api.cometapi.com");
        assert_eq!(s.load(), Learned::default(), "missing");
        std::fs::create_dir_all(s.path.parent().unwrap()).unwrap();
        std::fs::write(&s.path, b"{\"by_base_url\": {\"https://api.cometapi.com\": [1, 2").unwrap();
        assert_eq!(s.load(), Learned::default(), "corrupt");
        s.save(some_learning());
        assert_eq!(s.load(), some_learning());
        let leftovers = std::fs::read_dir(s.path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left beside it");
    }

    #[test]
    fn an_unwritable_folder_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("cometapi-runway");
        std::fs::write(&blocker, b"a file where the folder should be").unwrap();
        store(dir.path(), "https://api.cometapi.com").save(some_learning());
        assert_eq!(store(dir.path(), "https://api.cometapi.com").load(), Learned::default());
    }

    #[test]
    fn learning_can_be_turned_off() {
        assert!(Store::open("https://api.cometapi.com", true).is_none());
    }
}
