//! The journal of a long run: every finished cell and oracle search is appended as one JSON
//! line as soon as it is done, so a run that is stopped (or outlives a working session) resumes
//! where it was: what the journal holds is not run again. The first line records the options;
//! a journal written with other options is refused rather than mixed in. A cell journalled
//! again (amended) supersedes its earlier line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::protocol::CellResult;

/// One oracle search as journalled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    /// The workflow.
    pub workflow: String,
    /// Users.
    pub users: u32,
    /// The search's cheapest QoS-meeting cost.
    pub cost: Option<f64>,
    /// Seconds it took.
    pub seconds: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line<R> {
    Options(serde_json::Value),
    Search(SearchRecord),
    /// A finished unit of work: a cell of `rq1`/`rq3`, a (method, seed) run of `rq2`.
    Cell(Box<R>),
}

/// Why a journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// It could not be read or written.
    #[error("journal {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a journal line.
    #[error("journal {path} line {line}: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// It was written by a run with other options.
    #[error(
        "journal {path} was written with other options; give another --out or remove it to start afresh"
    )]
    OtherOptions {
        /// The file.
        path: String,
    },
}

/// What a journal holds.
#[derive(Debug)]
pub struct Contents<R = CellResult> {
    /// The options of the run that wrote it (`None`: an empty journal).
    pub options: Option<serde_json::Value>,
    /// Finished oracle searches.
    pub searches: Vec<SearchRecord>,
    /// Finished cells (or runs).
    pub cells: Vec<R>,
}

impl<R> Default for Contents<R> {
    fn default() -> Self {
        Self {
            options: None,
            searches: Vec::new(),
            cells: Vec::new(),
        }
    }
}

impl<R: DeserializeOwned> Contents<R> {
    /// Reads a journal without changing it (a run may be appending to it): a last line
    /// without its newline is one being written, and is left out.
    pub fn read(path: &Path) -> Result<Self, JournalError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| JournalError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(complete_lines(&text), &shown)
    }

    fn parse(text: &str, shown: &str) -> Result<Self, JournalError> {
        let mut contents = Self::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line<R> =
                serde_json::from_str(line).map_err(|e| JournalError::Corrupt {
                    path: shown.to_owned(),
                    line: i + 1,
                    message: e.to_string(),
                })?;
            match parsed {
                Line::Options(o) => contents.options = Some(o),
                Line::Search(s) => contents.searches.push(s),
                Line::Cell(c) => contents.cells.push(*c),
            }
        }
        Ok(contents)
    }
}

/// `text` up to its last newline: a last line without one is still being written (or was cut
/// by a kill).
fn complete_lines(text: &str) -> &str {
    text.rfind('\n').map_or("", |i| &text[..=i])
}

/// An open journal of cells (or runs) of type `R`.
pub struct Journal<R = CellResult> {
    path: PathBuf,
    file: File,
    cells: Vec<R>,
    searches: Vec<SearchRecord>,
}

impl<R: Serialize + DeserializeOwned + Clone> Journal<R> {
    /// Opens (or starts) the journal at `path` for a run with `options`.
    pub fn open(path: &Path, options: &impl Serialize) -> Result<Self, JournalError> {
        let shown = path.display().to_string();
        let io = |source| JournalError::Io {
            path: shown.clone(),
            source,
        };
        let wanted = serde_json::to_value(options).map_err(|e| JournalError::Corrupt {
            path: shown.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        let mut contents = Contents::default();
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(io)?;
            // A run killed while writing leaves its last line without a newline: that line is
            // dropped (its cell runs again), everything before it is kept.
            let complete = complete_lines(&text);
            if complete.len() < text.len() {
                OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(complete.len() as u64))
                    .map_err(io)?;
            }
            contents = Contents::parse(complete, &shown)?;
            if contents.options.as_ref().is_some_and(|o| *o != wanted) {
                return Err(JournalError::OtherOptions { path: shown });
            }
        }
        let fresh = contents.options.is_none();
        let Contents {
            cells, searches, ..
        } = contents;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let mut journal = Self {
            path: path.to_owned(),
            file,
            cells,
            searches,
        };
        if fresh {
            journal.append(&Line::Options(wanted))?;
        }
        Ok(journal)
    }

    fn append(&mut self, line: &Line<R>) -> Result<(), JournalError> {
        let shown = self.path.display().to_string();
        let text = serde_json::to_string(line).map_err(|e| JournalError::Corrupt {
            path: shown.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        writeln!(self.file, "{text}")
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError::Io {
                path: shown,
                source,
            })
    }

    /// The last journalled cell that `matches`: a cell journalled again (judged later, say)
    /// supersedes its earlier line.
    pub fn find(&self, matches: impl Fn(&R) -> bool) -> Option<&R> {
        self.cells.iter().rev().find(|c| matches(c))
    }

    /// The search of (workflow, users), when journalled.
    pub fn search(&self, workflow: &str, users: u32) -> Option<&SearchRecord> {
        self.searches
            .iter()
            .find(|s| s.workflow == workflow && s.users == users)
    }

    /// Records a finished cell (or one amended: the later line wins).
    pub fn record_cell(&mut self, cell: &R) -> Result<(), JournalError> {
        self.append(&Line::Cell(Box::new(cell.clone())))?;
        self.cells.push(cell.clone());
        Ok(())
    }

    /// Records a finished search.
    pub fn record_search(&mut self, search: &SearchRecord) -> Result<(), JournalError> {
        self.append(&Line::<R>::Search(search.clone()))?;
        self.searches.push(search.clone());
        Ok(())
    }
}

impl Journal<CellResult> {
    /// The cell of (workflow, users, method, seed), when journalled.
    pub fn cell(&self, workflow: &str, users: u32, method: &str, seed: u64) -> Option<&CellResult> {
        self.find(|c| {
            c.workflow == workflow && c.users == users && c.method == method && c.seed == seed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(users: u32) -> SearchRecord {
        SearchRecord {
            workflow: "parallel".into(),
            users,
            cost: Some(1.0),
            seconds: 2.0,
        }
    }

    #[test]
    fn a_line_cut_by_a_kill_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("j.jsonl");
        let options = serde_json::json!({"grid": 1});
        {
            let mut j: Journal = Journal::open(&path, &options).expect("opens");
            j.record_search(&search(10)).expect("records");
        }
        // A kill in the middle of the next line.
        let mut f = OpenOptions::new().append(true).open(&path).expect("file");
        f.write_all(br#"{"search":{"workflow":"par"#)
            .expect("writes");
        drop(f);
        let mut j: Journal = Journal::open(&path, &options).expect("reopens");
        assert!(j.search("parallel", 10).is_some());
        j.record_search(&search(20)).expect("records");
        let j: Journal = Journal::open(&path, &options).expect("reopens");
        assert!(j.search("parallel", 10).is_some() && j.search("parallel", 20).is_some());
        // A damaged line in the middle is not silently skipped.
        let text = std::fs::read_to_string(&path).expect("reads");
        std::fs::write(&path, text.replacen("search", "sea rch", 1)).expect("writes");
        let e = Journal::<CellResult>::open(&path, &options)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
