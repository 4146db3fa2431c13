//! Progress on stderr: a bar on a terminal, plain status lines otherwise, nothing with `-q`.

use std::{
    io::IsTerminal,
    sync::{Arc, Mutex},
    time::Duration,
};

use cometapi_runway::{Task, TaskStatus};
use indicatif::{ProgressBar, ProgressStyle};

/// Reports a task's life and its download. Cheap to clone; the wait callback holds a clone.
#[derive(Clone)]
pub struct Progress(Arc<Inner>);

enum Mode {
    Off,
    /// One line per change of status or of progress by a tenth.
    Lines,
    Bar,
}

struct Inner {
    mode: Mode,
    bar: Mutex<Option<ProgressBar>>,
    last_line: Mutex<Option<(String, Option<u32>)>>,
}

impl Progress {
    /// Off with `quiet`; a bar only on a terminal and without tracing (which would tear it).
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        let mode = if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() && !verbose {
            Mode::Bar
        } else {
            Mode::Lines
        };
        Progress(Arc::new(Inner { mode, bar: Mutex::new(None), last_line: Mutex::new(None) }))
    }

    /// A message of its own line (above the bar, if one is shown).
    pub fn note(&self, text: &str) {
        match self.0.mode {
            Mode::Off => {}
            Mode::Lines => eprintln!("{text}"),
            Mode::Bar => match &*self.0.bar.lock().expect("progress lock") {
                Some(bar) => bar.println(text),
                None => eprintln!("{text}"),
            },
        }
    }

    /// Waiting for task `id` begins.
    pub fn waiting(&self, id: &str) {
        match self.0.mode {
            Mode::Off => {}
            Mode::Lines => eprintln!("task {id}: waiting"),
            Mode::Bar => {
                let bar = ProgressBar::new(100).with_style(task_style()).with_message("SUBMITTED");
                bar.enable_steady_tick(Duration::from_millis(100));
                self.replace_bar(Some(bar));
            }
        }
    }

    /// A poll answered.
    pub fn update(&self, task: &Task) {
        let percent = task.progress.map(|p| (p * 100.0).round() as u32);
        match self.0.mode {
            Mode::Off => {}
            Mode::Lines => {
                let decile = percent.map(|p| p / 10);
                let key = (task.status.to_string(), decile);
                let mut last = self.0.last_line.lock().expect("progress lock");
                if last.as_ref() != Some(&key) {
                    match percent.filter(|_| task.status == TaskStatus::Running) {
                        Some(p) => eprintln!("task {}: {} {p}%", task.id, task.status),
                        None => eprintln!("task {}: {}", task.id, task.status),
                    }
                    *last = Some(key);
                }
            }
            Mode::Bar => {
                if let Some(bar) = &*self.0.bar.lock().expect("progress lock") {
                    bar.set_message(task.status.to_string());
                    if let Some(p) = percent {
                        bar.set_position(u64::from(p.min(100)));
                    }
                }
            }
        }
    }

    /// A download begins; the task bar gives way to a byte counter.
    pub fn downloading(&self) {
        if let Mode::Bar = self.0.mode {
            let bar = ProgressBar::no_length().with_style(download_style());
            bar.enable_steady_tick(Duration::from_millis(100));
            self.replace_bar(Some(bar));
        }
    }

    /// Bytes written so far, and the total if the server announced it.
    pub fn downloaded(&self, done: u64, total: Option<u64>) {
        if let Some(bar) = &*self.0.bar.lock().expect("progress lock") {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
    }

    /// Clears any bar and prints the closing line.
    pub fn finish(&self, text: &str) {
        self.replace_bar(None);
        if !matches!(self.0.mode, Mode::Off) {
            eprintln!("{text}");
        }
    }

    fn replace_bar(&self, bar: Option<ProgressBar>) {
        let old = std::mem::replace(&mut *self.0.bar.lock().expect("progress lock"), bar);
        if let Some(old) = old {
            old.finish_and_clear();
        }
    }
}

impl Drop for Inner {
    /// An error line must not land in the middle of a bar.
    fn drop(&mut self) {
        if let Ok(mut bar) = self.bar.lock() {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
        }
    }
}

fn task_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.green} {msg:<9} [{bar:32.cyan/blue}] {pos:>3}%  {elapsed}")
        .expect("a valid template")
        .progress_chars("=> ")
}

fn download_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.green} download  [{bar:32.cyan/blue}] {bytes}/{total_bytes}")
        .expect("a valid template")
        .progress_chars("=> ")
}
