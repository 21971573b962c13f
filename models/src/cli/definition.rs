//! `wfstate check --definition FILE.json`: model-check the fixed protocol with a Conductor
//! workflow definition's own decider, every SWITCH case and loop count up to the bounds. Exit 0
//! clean, 1 a finding (printed with its trace), 2 unreadable, invalid or unsupported.

use std::process::ExitCode;

use serde::Serialize;
use wfstate::conductor::WorkflowDefinition;

use crate::model::definition::{check_definition, Bounds, DefinitionReport};

/// What a definition check came to, as `docs/definitions.md` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// No schedule breaks anything.
    Clean,
    /// A schedule breaks a property: the one-line reason.
    Finding(String),
    /// Not checked: unreadable, invalid or unsupported (the error).
    Unchecked(String),
}

/// The largest definition file read (16 MiB; Conductor's own are a few KB): a larger one, or a
/// file that never ends (`/dev/zero`), is refused before it is held in memory.
pub const MAX_DEFINITION_BYTES: u64 = 16 << 20;

fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_DEFINITION_BYTES + 1)
        .read_to_end(&mut text)?;
    if text.len() as u64 > MAX_DEFINITION_BYTES {
        return Err(std::io::Error::other(format!(
            "the file is larger than {MAX_DEFINITION_BYTES} bytes"
        )));
    }
    Ok(text)
}

/// Reads and checks one file.
pub fn verdict(
    path: &std::path::Path,
    bounds: &Bounds,
    threads: usize,
) -> (Verdict, Option<DefinitionReport>) {
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(error) => return (Verdict::Unchecked(format!("cannot read: {error}")), None),
    };
    let definition = match WorkflowDefinition::from_slice(&text) {
        Ok(definition) => definition,
        Err(error) => return (Verdict::Unchecked(error.to_string()), None),
    };
    match check_definition(&definition, bounds, threads) {
        Err(error) => (Verdict::Unchecked(error.to_string()), None),
        Ok(report) => {
            let verdict = match &report.finding {
                None => Verdict::Clean,
                Some(finding) => Verdict::Finding(finding.reason.clone()),
            };
            (verdict, Some(report))
        }
    }
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    file: String,
    #[serde(flatten)]
    verdict: &'a Verdict,
    report: Option<&'a DefinitionReport>,
}

/// Runs the check of one definition file and prints the result.
pub fn run(path: &std::path::Path, bounds: &Bounds, json: bool, threads: usize) -> ExitCode {
    let (verdict, report) = verdict(path, bounds, threads);
    if json {
        let output = JsonOutput {
            file: path.display().to_string(),
            verdict: &verdict,
            report: report.as_ref(),
        };
        if let Err(code) = super::print_json("check", &output) {
            return code;
        }
    } else {
        print!("{}", render(path, &verdict, report.as_ref()));
    }
    match verdict {
        Verdict::Clean => ExitCode::SUCCESS,
        Verdict::Finding(_) => ExitCode::from(1),
        Verdict::Unchecked(_) => ExitCode::from(2),
    }
}

/// The human-readable result: one summary line, then a finding's trace.
pub fn render(
    path: &std::path::Path,
    verdict: &Verdict,
    report: Option<&DefinitionReport>,
) -> String {
    let file = path.display();
    let mut out = String::new();
    let Some(report) = report else {
        if let Verdict::Unchecked(reason) = verdict {
            out.push_str(&format!("{file}: not checked: {reason}\n"));
        }
        return out;
    };
    let bounds = &report.bounds;
    let summary = format!(
        "{} combinations of {}, {} states, {:.1} s (iterations {}, sweepers {}, failures {}, duplicates {}, terminate {})",
        report.combinations,
        report.of,
        report.states,
        report.seconds,
        bounds.iterations,
        bounds.sweepers,
        bounds.failures,
        bounds.duplicates,
        if bounds.terminate { "yes" } else { "no" },
    );
    match &report.finding {
        None => out.push_str(&format!(
            "{file}: {} v{}: clean: {summary}\n",
            report.name, report.version
        )),
        Some(finding) => {
            out.push_str(&format!(
                "{file}: {} v{}: FINDING: {}\n  choices: {}\n  {summary}\n  breaks \"{}\" in {} steps:\n",
                report.name,
                report.version,
                finding.reason,
                finding.choices,
                finding.property,
                finding.trace.len()
            ));
            out.push_str(&crate::model::trace::indented(&finding.trace));
        }
    }
    out
}
