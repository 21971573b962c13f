//! Input logs: JSON lines, one [`Event`] a line, read one line at a time so memory is
//! proportional to the longest line.
//!
//! A line is either an event in the core's format (it has a `"writer"` key), or a Conductor task
//! result as a worker sends it to `POST /api/tasks` (it has `"taskId"` or `"referenceTaskName"`,
//! and `"status"`), which is read as a worker's report. Blank lines and lines starting with `#`
//! are skipped.

use std::io::{BufRead, Read};

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::event::{Event, ReportEvent, TaskRef};
use super::object::{Described, Object};
use crate::pure::id::{TaskId, WorkflowId};
use crate::pure::status::ReportStatus;

/// An event and the 1-based line it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// 1-based line number in the log.
    pub line: usize,
    /// What the line says.
    pub event: Event,
}

/// A log line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The bytes could not be read (an IO error, or not UTF-8).
    #[error("line {line}: cannot read: {message}")]
    Read {
        /// 1-based line number.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// The line is not an event: not JSON, not an object, or not a known input.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it (serde_json's description, with the column).
        message: String,
    },
}

impl LogError {
    /// The 1-based line the error is on.
    pub fn line(&self) -> usize {
        match self {
            LogError::Read { line, .. } | LogError::Parse { line, .. } => *line,
        }
    }
}

/// Which keys a line has: enough to tell its format without building it.
#[derive(Deserialize)]
struct Shape {
    writer: Option<IgnoredAny>,
    #[serde(rename = "taskId")]
    task_id: Option<IgnoredAny>,
    #[serde(rename = "referenceTaskName")]
    reference_task_name: Option<IgnoredAny>,
}

impl Described for Shape {
    const EXPECTING: &'static str = "an input log entry (a JSON object)";
}

/// Conductor's `TaskResult`, reduced to what a report needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskResult {
    task_id: Option<TaskId>,
    reference_task_name: Option<String>,
    status: ReportStatus,
    workflow_instance_id: Option<WorkflowId>,
}

impl TaskResult {
    fn into_event(self) -> Result<Event, String> {
        let task = match (self.task_id, self.reference_task_name) {
            (Some(id), _) => TaskRef::Id(id),
            (None, Some(reference_name)) => TaskRef::Reference { reference_name },
            (None, None) => return Err(String::from("task result has no taskId")),
        };
        Ok(Event::Report(ReportEvent {
            task,
            status: self.status,
            workflow: self.workflow_instance_id,
        }))
    }
}

/// Reads one log line: `Ok(None)` for a blank or `#` comment line. The error is a description
/// without a line number (the caller knows the line).
pub fn parse_line(text: &str) -> Result<Option<Event>, String> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let Object(shape) = serde_json::from_str::<Object<Shape>>(text).map_err(describe)?;
    if shape.writer.is_some() {
        serde_json::from_str::<Event>(text)
            .map(Some)
            .map_err(describe)
    } else if shape.task_id.is_some() || shape.reference_task_name.is_some() {
        serde_json::from_str::<TaskResult>(text)
            .map_err(describe)?
            .into_event()
            .map(Some)
    } else {
        Err(String::from(
            "neither an input ({\"writer\": ..., \"input\": ...}) nor a Conductor task result \
             ({\"taskId\": ..., \"status\": ...})",
        ))
    }
}

/// serde_json's message with the column, without its "line 1" (a log line is one JSON line).
fn describe(error: serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&position) {
        Some(message) => format!("{message} (column {})", error.column()),
        None => text,
    }
}

/// The longest log line [`read_log`] reads (64 MiB): a longer one is a [`LogError::Read`].
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Reads a log one line at a time, yielding every event with its line number and stopping after
/// the first error.
pub fn read_log<R: BufRead>(reader: R) -> LogReader<R> {
    LogReader {
        reader,
        line: 0,
        buffer: String::new(),
        failed: false,
    }
}

/// The iterator [`read_log`] returns.
#[derive(Debug)]
pub struct LogReader<R> {
    reader: R,
    line: usize,
    buffer: String,
    failed: bool,
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = Result<LogEntry, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            self.buffer.clear();
            self.line += 1;
            let line = self.line;
            // A line longer than any event is refused before it is held whole: a log that
            // never ends a line (`/dev/zero`) is an error, not unbounded memory.
            let limit = MAX_LINE_BYTES as u64 + 1;
            match (&mut self.reader).take(limit).read_line(&mut self.buffer) {
                Ok(0) => return None,
                Ok(_) if self.buffer.len() > MAX_LINE_BYTES && !self.buffer.ends_with('\n') => {
                    self.failed = true;
                    return Some(Err(LogError::Read {
                        line,
                        message: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                    }));
                }
                Ok(_) => {}
                Err(error) => {
                    self.failed = true;
                    return Some(Err(LogError::Read {
                        line,
                        message: error.to_string(),
                    }));
                }
            }
            match parse_line(&self.buffer) {
                Ok(None) => continue,
                Ok(Some(event)) => return Some(Ok(LogEntry { line, event })),
                Err(message) => {
                    self.failed = true;
                    return Some(Err(LogError::Parse { line, message }));
                }
            }
        }
        None
    }
}
