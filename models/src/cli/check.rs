//! `wfstate check`: model-check every configuration and variant, print the verdict table and the
//! legacy counterexamples, exit non-zero when a verdict differs from the expected one.

use std::process::ExitCode;

use serde::Serialize;

use crate::model::run::Outcome;
use crate::model::{check, Config, Options, ProtocolModel, Report, Schedule, Variant};

/// The `always` properties shown as table columns, in order.
const COLUMNS: [(&str, &str); 22] = [
    ("I1", "I1"),
    ("I1 at rest", "I1 at rest"),
    ("I2", "I2"),
    ("I3", "I3"),
    ("I4", "I4"),
    ("I5", "I5"),
    ("I6a", "I6a"),
    ("I6b", "I6b"),
    ("I6b after an expiry", "I6b exact"),
    ("I8", "I8"),
    ("no lost task", "queued"),
    ("no stall", "stall"),
    ("no stuck workflow", "stuck"),
    ("completion", "completion"),
    ("decisions accepted", "decisions"),
    ("inspect agrees", "inspect"),
    ("operations report what happened", "outputs"),
    ("no operation finishes holding its lease", "leases"),
    ("I6a after a store failure", "I6a failed"),
    ("I7 after a store failure", "I7 failed"),
    ("task queues exact", "tasks"),
    ("store views agree", "views"),
];

struct Arguments {
    configs: Vec<Config>,
    variants: Vec<Variant>,
    json: bool,
    threads: usize,
    save: Option<std::path::PathBuf>,
}

fn parse(args: &[String]) -> Result<Arguments, String> {
    let mut configs = Vec::new();
    let mut variants = Vec::new();
    let mut json = false;
    let mut threads = 2;
    let mut save = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--config" => {
                let name = args.next().ok_or("--config needs a name")?;
                if name == "all" {
                    configs.extend(
                        Config::CHECKED
                            .iter()
                            .chain(&["large"])
                            .filter_map(|n| Config::named(n)),
                    );
                } else {
                    configs.push(Config::named(name).ok_or_else(|| {
                        format!("unknown config {name:?} (small, default, faults, admin, retry, large, all)")
                    })?);
                }
            }
            "--variant" => variants.push(args.next().ok_or("--variant needs a name")?.parse()?),
            "--threads" => {
                let count = args.next().ok_or("--threads needs a number")?;
                threads = count
                    .parse()
                    .map_err(|_| format!("bad thread count {count:?}"))?;
            }
            "--save-counterexamples" => {
                save = Some(
                    args.next()
                        .ok_or("--save-counterexamples needs a folder")?
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if configs.is_empty() {
        configs = Config::CHECKED
            .iter()
            .filter_map(|name| Config::named(name))
            .collect();
    }
    Ok(Arguments {
        configs,
        variants,
        json,
        threads: threads.max(1),
        save,
    })
}

type DefinitionArguments = (std::path::PathBuf, crate::model::Bounds, bool, usize);

/// `check --definition FILE [--iterations N] [--failures N] [--duplicates N] [--sweepers N]
/// [--no-terminate] [--json] [--threads N]`.
fn parse_definition(args: &[String]) -> Result<DefinitionArguments, String> {
    let mut bounds = crate::model::Bounds::default();
    let mut path = None;
    let mut json = false;
    let mut threads = 2;
    let mut args = args.iter();
    fn number<T: std::str::FromStr>(flag: &str, value: Option<&String>) -> Result<T, String> {
        let value = value.ok_or_else(|| format!("{flag} needs a number"))?;
        value
            .parse()
            .map_err(|_| format!("{flag}: bad number {value:?}"))
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--definition" => {
                path = Some(std::path::PathBuf::from(
                    args.next().ok_or("--definition needs a file")?,
                ))
            }
            "--iterations" => bounds.iterations = number(arg, args.next())?,
            "--failures" => bounds.failures = number(arg, args.next())?,
            "--duplicates" => bounds.duplicates = number(arg, args.next())?,
            "--sweepers" => bounds.sweepers = number(arg, args.next())?,
            "--threads" => threads = number(arg, args.next())?,
            "--no-terminate" => bounds.terminate = false,
            "--json" => json = true,
            other => return Err(format!("unknown argument {other:?} with --definition")),
        }
    }
    let path = path.ok_or("--definition needs a file")?;
    Ok((path, bounds, json, threads))
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    as_expected: bool,
    runs: &'a [Report],
}

/// Runs the subcommand.
pub fn run(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--definition") {
        return match parse_definition(args) {
            Ok((path, bounds, json, threads)) => {
                super::definition::run(&path, &bounds, json, threads)
            }
            Err(message) => {
                eprintln!("wfstate check: {message}\n{}", super::USAGE);
                ExitCode::from(2)
            }
        };
    }
    let arguments = match parse(args) {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("wfstate check: {message}\n{}", super::USAGE);
            return ExitCode::from(2);
        }
    };
    let mut reports = Vec::new();
    for config in &arguments.configs {
        let variants = if arguments.variants.is_empty() {
            config.variants()
        } else {
            arguments.variants.clone()
        };
        for variant in variants {
            eprintln!("checking {} / {} ...", config.name, variant);
            let model = ProtocolModel::new(config.clone(), variant);
            let options = Options {
                threads: arguments.threads,
                progress: Some(progress),
            };
            let report = check(model, options);
            eprintln!(
                "  {} states, depth {}, {:.1} s{}",
                report.states,
                report.depth,
                report.seconds,
                if report.as_expected() {
                    ""
                } else {
                    "  <-- NOT AS EXPECTED"
                }
            );
            reports.push(report);
        }
    }
    if let Some(folder) = &arguments.save {
        if let Err(error) = save(folder, &reports) {
            eprintln!("wfstate check: cannot save counterexamples: {error}");
            return ExitCode::from(2);
        }
    }
    let as_expected = reports.iter().all(Report::as_expected);
    if arguments.json {
        let output = JsonOutput {
            as_expected,
            runs: &reports,
        };
        match serde_json::to_string_pretty(&output) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("wfstate check: {error}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", render(&reports));
    }
    if as_expected {
        ExitCode::SUCCESS
    } else {
        eprintln!("wfstate check: a verdict differs from the expected one");
        ExitCode::from(1)
    }
}

fn progress(states: usize, depth: usize, seconds: f64) {
    eprintln!("  ... {states} states, depth {depth}, {seconds:.0} s");
}

/// The verdict table, then each legacy counterexample as a trace.
pub fn render(reports: &[Report]) -> String {
    let mut out = String::new();
    let names: Vec<&str> = COLUMNS.iter().map(|(_, short)| *short).collect();
    out.push_str(&format!(
        "| config | variant | states | depth | seconds | states/s | {} | sometimes | expected |\n",
        names.join(" | ")
    ));
    out.push_str(&format!(
        "|---|---|---:|---:|---:|---:|{}---|---|\n",
        "---|".repeat(COLUMNS.len())
    ));
    for report in reports {
        let cells: Vec<&str> = COLUMNS.iter().map(|(name, _)| cell(report, name)).collect();
        let sometimes: Vec<_> = report
            .verdicts
            .iter()
            .filter(|v| v.kind == "sometimes")
            .collect();
        let reached = sometimes
            .iter()
            .filter(|v| v.outcome == Outcome::Reached)
            .count();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {:.0} | {} | {}/{} reached | {} |\n",
            report.config,
            report.variant,
            report.states,
            report.depth,
            report.seconds,
            report.states_per_second(),
            cells.join(" | "),
            reached,
            sometimes.len(),
            if report.as_expected() { "yes" } else { "NO" },
        ));
    }
    for report in reports {
        let unreached: Vec<_> = report
            .verdicts
            .iter()
            .filter(|v| v.outcome == Outcome::Unreached)
            .map(|v| v.property)
            .collect();
        if !unreached.is_empty() {
            out.push_str(&format!(
                "\n{} / {}: unreached: {}\n",
                report.config,
                report.variant,
                unreached.join(", ")
            ));
        }
        if let Some(counterexample) = &report.counterexample {
            out.push_str(&format!(
                "\n{} / {}: counterexample to {} ({} steps)\n",
                report.config,
                report.variant,
                counterexample.property,
                counterexample.trace.len()
            ));
            out.push_str(&crate::model::trace::indented(&counterexample.trace));
        }
    }
    out
}

fn cell(report: &Report, name: &str) -> &'static str {
    match report
        .verdicts
        .iter()
        .find(|v| v.property == name)
        .map(|v| v.outcome)
    {
        Some(Outcome::Holds) => "holds",
        Some(Outcome::Violated) => "VIOLATED",
        Some(Outcome::Reached) => "reached",
        Some(Outcome::Unreached) => "UNREACHED",
        Some(Outcome::Unsettled) | None => "-",
    }
}

/// Writes each counterexample as `{folder}/{config}-{variant}.json` (a [`Schedule`]).
fn save(folder: &std::path::Path, reports: &[Report]) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    for report in reports {
        let Some(counterexample) = &report.counterexample else {
            continue;
        };
        let schedule = Schedule {
            config: report.config.clone(),
            variant: report.variant,
            property: counterexample.property.to_string(),
            actions: counterexample.actions.clone(),
        };
        let text = serde_json::to_string_pretty(&schedule).map_err(std::io::Error::other)?;
        let path = folder.join(format!("{}-{}.json", report.config, report.variant));
        std::fs::write(path, text + "\n")?;
    }
    Ok(())
}
