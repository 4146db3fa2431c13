//! Exit codes, and how every failure maps onto one, with a line that says what to do.

use std::process::ExitCode;

use cometapi_runway::{Error, Task};

/// Shown at the end of `--help`; the README carries the same table.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
    0  success
    2  invalid input or usage; nothing was sent
    3  API or transport error (including a failed download)
    4  the task failed or was cancelled
    5  timed out waiting for the task
    6  task not found
  130  interrupted by Ctrl-C (a task goes on; resume with `wait ID`, or rerun `batch`)

batch: 0 every item saved, 4 some item failed or is uncertain, 3 an API or transport
error stopped the run, 2 invalid input (nothing sent), 130 interrupted.

With --json, stdout carries exactly one JSON object: the result, or on failure
{\"error\": {\"kind\", \"message\", \"exit_code\", \"task_id\"?}, \"task\"?}; the error line also goes to stderr.";

/// Why the program stopped short, mapped onto an exit code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Code {
    Usage = 2,
    Api = 3,
    TaskFailed = 4,
    TimedOut = 5,
    NotFound = 6,
    /// Ctrl-C while waiting (128 + SIGINT, as shells report it).
    Interrupted = 130,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> ExitCode {
        ExitCode::from(code as u8)
    }
}

/// A failure as the user sees it: an exit code, a machine-readable kind, one line of text.
pub struct Failure {
    pub code: Code,
    pub kind: &'static str,
    pub message: String,
    /// The task concerned, once one exists: lets the user resume with `wait`.
    pub task_id: Option<String>,
    /// The task as last seen, for failures that have one.
    pub task: Option<Box<Task>>,
    /// False when the result was already printed on stdout and only the exit code tells.
    pub json_on_stdout: bool,
}

impl Failure {
    /// Bad input or usage; nothing was sent.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Code::Usage, "invalid_input", message)
    }

    /// A failure of any other plane, with its own kind.
    pub fn new(code: Code, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure { code, kind, message: message.into(), task_id: None, task: None, json_on_stdout: true }
    }

    /// The result is already on stdout: with `--json`, print no second object.
    pub fn quiet_on_stdout(mut self) -> Failure {
        self.json_on_stdout = false;
        self
    }

    /// Remembers which task this was about, and says how to resume where that helps.
    pub fn for_task(mut self, id: &str) -> Failure {
        let hint = match self.kind {
            "timed_out" => Some(format!("; keep waiting with: cometapi-runway wait {id}")),
            "download" | "io" | "transport" | "api" | "decode" => {
                Some(format!("; the task exists, fetch it later with: cometapi-runway wait {id}"))
            }
            _ => None,
        };
        if let Some(hint) = hint {
            self.message.push_str(&hint);
        }
        self.task_id = Some(id.to_string());
        self
    }

    /// The one line printed on stderr; server text in it cannot drive the terminal.
    pub fn line(&self) -> String {
        format!("error: {}", crate::output::clean(&self.message))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let task = e.task().cloned().map(Box::new);
        let (code, kind, hint) = match &e {
            Error::InvalidInput { .. } => (Code::Usage, "invalid_input", "; nothing was sent"),
            Error::Api { .. } if e.is_task_not_exist() => (Code::NotFound, "not_found", "; check the id"),
            Error::Api { .. } => (Code::Api, "api", ""),
            Error::Transport { .. } => (Code::Api, "transport", " (check --base-url and the network, then retry)"),
            Error::Decode { .. } => (Code::Api, "decode", " (is --base-url pointing at CometAPI?)"),
            Error::Download { .. } => (Code::Api, "download", ""),
            Error::Io { .. } => (Code::Api, "io", " (check the output path and free space)"),
            Error::TaskFailed { .. } => (Code::TaskFailed, "task_failed", "; change the input and generate again"),
            Error::TaskCancelled { .. } => (Code::TaskFailed, "task_cancelled", ""),
            Error::TimedOut { .. } => (Code::TimedOut, "timed_out", ""),
            Error::TaskNotFound { .. } => (Code::NotFound, "not_found", ""),
            _ => (Code::Api, "error", ""),
        };
        Failure { task, ..Failure::new(code, kind, one_line(&format!("{e}{hint}"))) }
    }
}

/// Error texts may quote a response body (an HTML page, say): keep the promise of one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fit_on_one_line() {
        let e = Error::Api {
            status: 502,
            code: None,
            message: None,
            body: "<html>\n<body>bad\r\ngateway</body>\n</html>".into(),
            retry_after: None,
        };
        let f = Failure::from(e);
        assert_eq!((f.code, f.kind), (Code::Api, "api"));
        assert!(!f.line().contains(['\n', '\r']), "{}", f.line());
    }

    #[test]
    fn task_not_exist_on_a_single_poll_means_not_found() {
        let e = Error::Api {
            status: 400,
            code: Some("task_not_exist".into()),
            message: Some("task_not_exist".into()),
            body: String::new(),
            retry_after: None,
        };
        assert_eq!(Failure::from(e).code, Code::NotFound);
    }
}
