//! The step runner: each check is a [`Step`] that ends passed (with a one-line detail) or
//! failed (with a [`Failure`]: a one-line cause and a hint), carries warnings, and is timed.
//! [`Report`] prints steps as they finish (human form) or collects them for one JSON
//! document at the end (`--json`), and gives the exit status.

use std::io::Write;
use std::time::{Duration, Instant};

/// Why a step failed: what happened (one line) and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// One line saying what went wrong, e.g. `connection refused`.
    pub cause: String,
    /// One line saying what to check or do next.
    pub hint: String,
}

impl Failure {
    /// A failure with `cause` and `hint`.
    pub fn new(cause: impl Into<String>, hint: impl Into<String>) -> Failure {
        Failure {
            cause: cause.into(),
            hint: hint.into(),
        }
    }
}

/// The outcome of a finished step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The step passed; the detail says what was found (may be empty).
    Passed {
        /// One line, e.g. `127.0.0.1:1110`.
        detail: String,
    },
    /// The step failed.
    Failed(Failure),
}

/// A step under way: its name, start time and warnings. Finish it with [`Report::pass`] or
/// [`Report::fail`].
#[derive(Debug)]
#[must_use = "a step must be finished with Report::pass or Report::fail"]
pub struct Step {
    name: String,
    started: Instant,
    warnings: Vec<String>,
}

impl Step {
    /// Adds a warning (shown under the step, counted but not failing the test).
    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A finished step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    /// The step's name, e.g. `TCP connect`.
    pub name: String,
    /// How long it took.
    pub elapsed: Duration,
    /// Passed or failed.
    pub outcome: Outcome,
    /// Warnings raised during the step.
    pub warnings: Vec<String>,
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One line per step as it finishes: `✓ name (12 ms) detail`, cause/hint/warnings
    /// indented below.
    Human,
    /// One JSON document at the end.
    Json,
}

/// The steps of one connectivity test and where they are printed.
pub struct Report {
    test: String,
    target: String,
    format: Format,
    out: Box<dyn Write + Send>,
    steps: Vec<StepRecord>,
    notes: Vec<String>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("test", &self.test)
            .field("target", &self.target)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl Report {
    /// A report for `test` (e.g. `test-popconnectivity`) against `target` (e.g.
    /// `mail.example.com:995 (tls)`), written to `out`. The human form prints a header line
    /// at once.
    pub fn new(
        test: impl Into<String>,
        target: impl Into<String>,
        format: Format,
        out: Box<dyn Write + Send>,
    ) -> Report {
        let mut report = Report {
            test: test.into(),
            target: target.into(),
            format,
            out,
            steps: Vec::new(),
            notes: Vec::new(),
        };
        if format == Format::Human {
            let line = format!("{} against {}", report.test, report.target);
            report.line(&line);
        }
        report
    }

    /// A report to standard output.
    pub fn to_stdout(test: impl Into<String>, target: impl Into<String>, format: Format) -> Report {
        Report::new(test, target, format, Box::new(std::io::stdout()))
    }

    /// Starts a step named `name`.
    pub fn start(&mut self, name: impl Into<String>) -> Step {
        Step {
            name: name.into(),
            started: Instant::now(),
            warnings: Vec::new(),
        }
    }

    /// Adds a note that belongs to no step (e.g. "`--send-test-message` does not apply to
    /// POP3").
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if self.format == Format::Human {
            self.line(&format!("  note: {note}"));
        }
        self.notes.push(note);
    }

    /// Finishes `step` as passed with a one-line `detail`.
    pub fn pass(&mut self, step: Step, detail: impl Into<String>) {
        self.finish(
            step,
            Outcome::Passed {
                detail: detail.into(),
            },
        );
    }

    /// Finishes `step` as failed and hands the failure back as `Err`, so a test can end
    /// with `return Err(report.fail(step, failure))`-style code.
    pub fn fail(&mut self, step: Step, failure: Failure) -> Failed {
        self.finish(step, Outcome::Failed(failure));
        Failed
    }

    /// Finishes `step` with `result`: passed with the detail, or failed.
    pub fn finish_with(
        &mut self,
        step: Step,
        result: Result<String, Failure>,
    ) -> Result<(), Failed> {
        match result {
            Ok(detail) => {
                self.pass(step, detail);
                Ok(())
            }
            Err(f) => Err(self.fail(step, f)),
        }
    }

    fn finish(&mut self, step: Step, outcome: Outcome) {
        let record = StepRecord {
            name: step.name,
            elapsed: step.started.elapsed(),
            outcome,
            warnings: step.warnings,
        };
        if self.format == Format::Human {
            let text = human_step(&record);
            self.line(&text);
        }
        self.steps.push(record);
    }

    /// The steps finished so far.
    pub fn steps(&self) -> &[StepRecord] {
        &self.steps
    }

    /// Whether every step passed (and there was at least one).
    pub fn all_passed(&self) -> bool {
        !self.steps.is_empty()
            && self
                .steps
                .iter()
                .all(|s| matches!(s.outcome, Outcome::Passed { .. }))
    }

    /// Prints the summary (human) or the JSON document, and returns the exit status:
    /// 0 when every step passed, 1 otherwise.
    pub fn conclude(mut self) -> u8 {
        let passed = self.all_passed();
        let warnings: usize = self.steps.iter().map(|s| s.warnings.len()).sum();
        match self.format {
            Format::Human => {
                let failed = self
                    .steps
                    .iter()
                    .find(|s| matches!(s.outcome, Outcome::Failed(_)));
                let line = match failed {
                    None => format!(
                        "PASSED: {} steps, {warnings} warning{}",
                        self.steps.len(),
                        if warnings == 1 { "" } else { "s" }
                    ),
                    Some(s) => format!("FAILED at step \"{}\"", s.name),
                };
                self.line(&line);
            }
            Format::Json => {
                let doc = self.to_json();
                let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
                self.line(&text);
            }
        }
        let _ = self.out.flush();
        if passed { 0 } else { 1 }
    }

    /// The report as a JSON value: `{test, target, result, steps: [{name, status,
    /// elapsed_ms, detail | cause + hint, warnings}], notes}`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let steps: Vec<_> = self
            .steps
            .iter()
            .map(|s| {
                let mut v = json!({
                    "name": s.name,
                    "status": if matches!(s.outcome, Outcome::Passed { .. }) { "passed" } else { "failed" },
                    "elapsed_ms": u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX),
                });
                match &s.outcome {
                    Outcome::Passed { detail } => v["detail"] = json!(detail),
                    Outcome::Failed(f) => {
                        v["cause"] = json!(f.cause);
                        v["hint"] = json!(f.hint);
                    }
                }
                v["warnings"] = json!(s.warnings);
                v
            })
            .collect();
        json!({
            "test": self.test,
            "target": self.target,
            "result": if self.all_passed() { "passed" } else { "failed" },
            "steps": steps,
            "notes": self.notes,
        })
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
}

/// Returned by [`Report::fail`]: the test stops at the failed step. The failure itself is
/// in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed;

fn human_step(s: &StepRecord) -> String {
    let ms = s.elapsed.as_millis();
    let mut text = match &s.outcome {
        Outcome::Passed { detail } if detail.is_empty() => format!("✓ {} ({ms} ms)", s.name),
        Outcome::Passed { detail } => format!("✓ {} ({ms} ms): {detail}", s.name),
        Outcome::Failed(f) => format!(
            "✗ {} ({ms} ms)\n    cause: {}\n    hint:  {}",
            s.name, f.cause, f.hint
        ),
    };
    for w in &s.warnings {
        text.push_str("\n    warning: ");
        text.push_str(w);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn human_output_and_exit_status() {
        let sink = Sink::default();
        let mut r = Report::new("test-x", "host:1", Format::Human, Box::new(sink.clone()));
        let mut s = r.start("DNS");
        s.warn("only IPv4");
        r.pass(s, "127.0.0.1");
        let s = r.start("TCP connect");
        let _ = r.fail(
            s,
            Failure::new("connection refused", "is the server running?"),
        );
        assert!(!r.all_passed());
        assert_eq!(r.conclude(), 1);
        let text = sink.text();
        assert!(text.starts_with("test-x against host:1\n"), "{text}");
        assert!(text.contains("✓ DNS ("));
        assert!(text.contains("ms): 127.0.0.1\n    warning: only IPv4\n"));
        assert!(text.contains("✗ TCP connect ("));
        assert!(
            text.contains("    cause: connection refused\n    hint:  is the server running?\n")
        );
        assert!(text.ends_with("FAILED at step \"TCP connect\"\n"));
    }

    #[test]
    fn json_output() {
        let sink = Sink::default();
        let mut r = Report::new("test-x", "host:1", Format::Json, Box::new(sink.clone()));
        let s = r.start("DNS");
        r.pass(s, "127.0.0.1");
        r.note("n");
        assert_eq!(r.conclude(), 0);
        let v: serde_json::Value = serde_json::from_str(&sink.text()).unwrap();
        assert_eq!(v["result"], "passed");
        assert_eq!(v["steps"][0]["name"], "DNS");
        assert_eq!(v["steps"][0]["status"], "passed");
        assert_eq!(v["steps"][0]["detail"], "127.0.0.1");
        assert_eq!(v["notes"][0], "n");
    }

    #[test]
    fn no_steps_is_not_a_pass() {
        let r = Report::new("t", "h", Format::Json, Box::new(Sink::default()));
        assert_eq!(r.conclude(), 1);
    }
}
