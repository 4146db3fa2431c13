//! The batch journal: what a batch did, written down before and after each paid step, so a
//! crashed or interrupted run can be resumed without paying twice.
//!
//! An append-only file of JSON lines, each written whole and synced to disk (`fsync`) before
//! the step it records goes on:
//!
//! - `{"event":"intent","item":K}` before a create is sent;
//! - `{"event":"created","item":K,"task":ID}` as soon as the id is known;
//! - `{"event":"not_created","item":K,"reason":...}` when the service certainly made no task
//!   (a 4xx answer, a refused connection);
//! - `{"event":"failed","item":K,"task":ID,"retry_may_help":B}` when the task failed;
//! - `{"event":"saved","item":K,"task":ID,"file":NAME,"bytes":N}` once the video is on disk.
//!
//! `K` is the item's key: a hash of the item's own content, so a changed item is a new item.
//! An `intent` with neither `created` nor `not_created` after it is *uncertain*: the create may
//! or may not have reached the service. A kill can cut only the last line short; such a line is
//! dropped when the journal is opened again.
//!
//! One run at a time: the file is locked with the operating system's advisory lock for as long
//! as the [`Journal`] lives, and a killed process's lock goes with it.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{Read, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Entry {
    Intent { item: String },
    Created { item: String, task: String },
    NotCreated { item: String, reason: String },
    Failed { item: String, task: String, retry_may_help: bool },
    Saved { item: String, task: String, file: String, bytes: u64 },
}

/// What the journal knows about one item.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ItemRecord {
    /// Tasks created for it, oldest first.
    pub tasks: Vec<String>,
    /// An intent not yet followed by `created` or `not_created`.
    pub uncertain: bool,
    /// Tasks that failed, with whether a retry may help.
    pub failed: Vec<(String, bool)>,
    /// The saved file: (task, file name, bytes).
    pub saved: Option<(String, String, u64)>,
}

impl ItemRecord {
    fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::Intent { .. } => self.uncertain = true,
            Entry::Created { task, .. } => {
                self.uncertain = false;
                self.tasks.push(task.clone());
            }
            Entry::NotCreated { .. } => self.uncertain = false,
            Entry::Failed { task, retry_may_help, .. } => self.failed.push((task.clone(), *retry_may_help)),
            Entry::Saved { task, file, bytes, .. } => self.saved = Some((task.clone(), file.clone(), *bytes)),
        }
    }

    /// The newest task that has neither failed nor been saved: the one to wait on.
    pub fn open_task(&self) -> Option<&str> {
        let last = self.tasks.last()?;
        let failed = self.failed.iter().any(|(t, _)| t == last);
        (!failed).then_some(last.as_str())
    }
}

/// An open, locked journal.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    items: HashMap<String, ItemRecord>,
}

impl Journal {
    /// Opens (creating if needed) and locks the journal at `path`, and reads what it holds.
    pub fn open(path: &Path) -> Result<Journal, Error> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::invalid(
                    "journal",
                    path.display(),
                    "is in use by another run (it is locked); wait for that run to end",
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io)?;
        if text.is_empty() {
            // A new journal: make its name durable too, not only its lines (best effort: not
            // every platform can open a directory).
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        let items = parse(&text, path)?;
        if !text.is_empty() && !text.ends_with('\n') {
            // A line cut short by a kill: drop it, so the next entry starts a line of its own.
            let whole = text.rfind('\n').map_or(0, |i| i + 1);
            file.set_len(whole as u64).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(Journal { file, path: path.to_path_buf(), items })
    }

    /// What the journal knows about `item`.
    pub fn item(&self, item: &str) -> Option<&ItemRecord> {
        self.items.get(item)
    }

    /// Appends `entry` and syncs it to disk before returning.
    pub fn record(&mut self, entry: Entry) -> Result<(), Error> {
        let mut line = serde_json::to_vec(&entry).expect("a journal entry serialises");
        line.push(b'\n');
        let io = |source| Error::Io { path: self.path.clone(), source };
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.items.entry(key_of(&entry).to_string()).or_default().apply(&entry);
        Ok(())
    }
}

fn key_of(entry: &Entry) -> &str {
    match entry {
        Entry::Intent { item }
        | Entry::Created { item, .. }
        | Entry::NotCreated { item, .. }
        | Entry::Failed { item, .. }
        | Entry::Saved { item, .. } => item,
    }
}

/// Reads every whole line; a last line without its newline (a write cut short) is ignored, any
/// other unreadable line is an error: the journal is not ours, or was edited.
fn parse(text: &str, path: &Path) -> Result<HashMap<String, ItemRecord>, Error> {
    let mut items: HashMap<String, ItemRecord> = HashMap::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len().saturating_sub(1);
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(entry) => items.entry(key_of(&entry).to_string()).or_default().apply(&entry),
            Err(_) if n == last && !complete => {}
            Err(e) => {
                return Err(Error::invalid(
                    "journal",
                    format!("{} line {}", path.display(), n + 1),
                    format!("is not a batch journal entry ({e})"),
                ))
            }
        }
    }
    Ok(items)
}

/// A stable 64-bit FNV-1a hash, as 16 hex digits: the same item gives the same key on every
/// platform and release (std's hashers promise neither).
pub(crate) fn stable_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> Vec<Entry> {
        std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn an_intent_without_an_id_is_uncertain_until_the_id_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.record(Entry::Intent { item: "a".into() }).unwrap();
        assert!(j.item("a").unwrap().uncertain);
        j.record(Entry::Created { item: "a".into(), task: "t1".into() }).unwrap();
        assert!(!j.item("a").unwrap().uncertain);
        assert_eq!(j.item("a").unwrap().open_task(), Some("t1"));
        drop(j);
        assert_eq!(entries(&path).len(), 2);
        let again = Journal::open(&path).unwrap();
        assert_eq!(again.item("a").unwrap().tasks, vec!["t1".to_string()]);
    }

    #[test]
    fn a_second_run_on_one_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let _first = Journal::open(&path).unwrap();
        let err = Journal::open(&path).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn a_last_line_cut_short_is_ignored_and_the_next_entry_starts_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"event\":\"intent\",\"item\":\"a\"}\n{\"event\":\"created\",\"item\":\"a\",\"ta")
            .unwrap();
        let mut j = Journal::open(&path).unwrap();
        assert!(j.item("a").unwrap().uncertain);
        j.record(Entry::NotCreated { item: "a".into(), reason: "400".into() }).unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert!(!j.item("a").unwrap().uncertain);
    }

    #[test]
    fn a_damaged_line_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "not json\n{\"event\":\"intent\",\"item\":\"a\"}\n").unwrap();
        assert!(matches!(Journal::open(&path).unwrap_err(), Error::InvalidInput { field: "journal", .. }));
    }

    #[test]
    fn the_item_hash_is_stable() {
        assert_eq!(stable_hash(b""), "cbf29ce484222325");
        assert_eq!(stable_hash(b"a"), "af63dc4c8601ec8c");
    }
}
