//! `batch`'s progress on stderr: an overall bar and a bar per active task on a terminal (each
//! ending at 100 % when its video is saved), one line per change otherwise, nothing with `-q`.

use std::{
    collections::HashMap,
    io::IsTerminal,
    sync::{Arc, Mutex},
};

use cometapi_runway::{BatchOutcome, BatchResult, BatchUpdate, TaskStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::{args::Global, commands::batch::clone_error, exit::Failure, output};

/// Progress on stderr: an overall bar and a bar per active task on a terminal; otherwise one
/// line per change; nothing with `-q`.
#[derive(Clone)]
pub struct Display(Arc<DisplayInner>);

struct DisplayInner {
    mode: Mode,
    lines: Vec<usize>,
    multi: MultiProgress,
    overall: Option<ProgressBar>,
    tasks: Mutex<HashMap<usize, ProgressBar>>,
    last: Mutex<HashMap<usize, (String, Option<u32>)>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Off,
    Lines,
    Bars,
}

impl Display {
    pub fn new(global: &Global, total: usize, lines: Vec<usize>) -> Display {
        let mode = if global.quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() && global.verbose == 0 {
            Mode::Bars
        } else {
            Mode::Lines
        };
        let multi = MultiProgress::new();
        let overall = (mode == Mode::Bars).then(|| {
            let bar = multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template("batch  [{bar:32.green/blue}] {pos}/{len} done  {elapsed}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Display(Arc::new(DisplayInner {
            mode,
            lines,
            multi,
            overall,
            tasks: Mutex::new(HashMap::new()),
            last: Mutex::new(HashMap::new()),
        }))
    }

    pub fn note(&self, text: &str) {
        match self.0.mode {
            Mode::Off => {}
            Mode::Lines => eprintln!("{text}"),
            Mode::Bars => {
                let _ = self.0.multi.println(text);
            }
        }
    }

    fn task_bar(&self, index: usize) -> ProgressBar {
        let mut tasks = self.0.tasks.lock().expect("display lock");
        tasks
            .entry(index)
            .or_insert_with(|| {
                let bar = self.0.multi.add(ProgressBar::new(100));
                bar.set_style(
                    ProgressStyle::with_template("  line {prefix:>5} {msg:<10} [{bar:24.cyan/blue}] {pos:>3}%")
                        .expect("a valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(self.0.lines[index].to_string());
                bar
            })
            .clone()
    }

    pub fn update(&self, index: usize, update: &BatchUpdate) {
        let line = self.0.lines[index];
        match self.0.mode {
            Mode::Off => {}
            Mode::Bars => {
                let bar = self.task_bar(index);
                match update {
                    BatchUpdate::Creating => bar.set_message("CREATING"),
                    BatchUpdate::Created { .. } => bar.set_message("SUBMITTED"),
                    BatchUpdate::Polled(task) => {
                        bar.set_message(output::clean(&task.status.to_string()));
                        if task.status == TaskStatus::Succeeded {
                            bar.set_position(100);
                        } else if let Some(p) = task.progress {
                            bar.set_position((p * 100.0).round().clamp(0.0, 100.0) as u64);
                        }
                    }
                    BatchUpdate::Downloading { .. } => bar.set_message("SAVING"),
                    _ => {}
                }
            }
            Mode::Lines => {
                let (what, decile) = match update {
                    BatchUpdate::Creating => ("creating".to_string(), None),
                    BatchUpdate::Created { task_id } => (format!("task {}", output::clean(task_id)), None),
                    BatchUpdate::Polled(task) => {
                        let percent = task.progress.map(|p| (p * 100.0).round() as u32);
                        let decile = percent.filter(|_| task.status == TaskStatus::Running).map(|p| p / 10);
                        let text = match decile {
                            Some(_) => format!("{} {}%", task.status, percent.unwrap_or_default()),
                            None => task.status.to_string(),
                        };
                        (text, decile)
                    }
                    BatchUpdate::Downloading { .. } => ("downloading".to_string(), None),
                    _ => return,
                };
                let key_text = what.split(' ').next().unwrap_or_default().to_string();
                let mut last = self.0.last.lock().expect("display lock");
                if last.get(&index) != Some(&(key_text.clone(), decile)) {
                    eprintln!("line {line}: {}", output::clean(&what));
                    last.insert(index, (key_text, decile));
                }
            }
        }
    }

    pub fn finished(&self, result: &BatchResult, line: usize) {
        let text = match &result.outcome {
            BatchOutcome::Saved { bytes } => format!("saved {} ({bytes} bytes)", result.output.display()),
            BatchOutcome::AlreadySaved { .. } => format!("already saved: {}", result.output.display()),
            BatchOutcome::Failed(e) => format!("failed: {}", Failure::from(clone_error(e)).message),
            BatchOutcome::Uncertain { .. } => {
                "uncertain: a create was sent but never answered; not created again (--resubmit-uncertain)".into()
            }
            BatchOutcome::NotStarted { .. } => "not started".into(),
            BatchOutcome::Interrupted => match &result.task_id {
                Some(id) => format!("task {id} goes on at the service; a rerun picks it up"),
                None => "interrupted".into(),
            },
            _ => "done".into(),
        };
        if let Some(bar) = self.0.tasks.lock().expect("display lock").remove(&result.index) {
            if result.is_ok() {
                bar.set_position(100);
            }
            bar.finish_and_clear();
            self.0.multi.remove(&bar);
        }
        if let Some(overall) = &self.0.overall {
            overall.inc(1);
        }
        if !matches!(result.outcome, BatchOutcome::AlreadySaved { .. } | BatchOutcome::NotStarted { .. })
            || self.0.mode == Mode::Lines
        {
            self.note(&output::clean(&format!("line {line}: {text}")));
        }
    }

    pub fn clear(&self) {
        if let Some(overall) = &self.0.overall {
            overall.finish_and_clear();
        }
        let _ = self.0.multi.clear();
    }
}
