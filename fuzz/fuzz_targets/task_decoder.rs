//! The poll-answer decoder (both shapes) on arbitrary bytes: it may refuse, never panic, and a
//! task it accepts is well formed.
#![no_main]

use cometapi_runway::{Task, TaskStatus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(task) = Task::from_json(data) {
        if let Some(p) = task.progress {
            assert!((0.0..=1.0).contains(&p), "progress {p} out of range");
        }
        if task.status == TaskStatus::Succeeded {
            assert_eq!(task.progress, Some(1.0));
        }
        assert!(task.output.iter().all(|u| !u.is_empty()));
        let _ = task.status.to_string();
    }
});
