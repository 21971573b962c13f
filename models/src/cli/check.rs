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

/// Model-check the protocol, or one Conductor workflow definition
///
/// Without --definition: every configuration and variant asked for, the verdict table, each
/// legacy variant's counterexample. Exit 0 when every verdict is the expected one, 1 when one
/// is not.
///
/// With --definition: the fixed protocol running that definition's decider, for every SWITCH
/// case and DO_WHILE count it can take. Exit 0 clean, 1 a finding (with its shortest trace), 2
/// unreadable, unsupported or no verdict within the bounds.
#[derive(Debug, clap::Args)]
// A repeated option takes its last value, as the hand-written parsers did.
#[command(args_override_self = true)]
pub struct Args {
    /// A configuration to check (repeatable); `all` is every one, `large` included
    /// [default: small, default, faults, admin, retry]
    #[arg(long = "config", value_name = "NAME", value_parser = CONFIG_NAMES)]
    configs: Vec<String>,
    /// Check only this variant (repeatable) [default: every variant the configuration runs]
    #[arg(long = "variant", value_name = "NAME")]
    variants: Vec<Variant>,
    /// Print the reports as JSON instead of the table
    #[arg(long)]
    json: bool,
    /// Checker threads
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Write each counterexample as FOLDER/CONFIG-VARIANT.json, a schedule `replay` and the
    /// tests can run again
    #[arg(long = "save-counterexamples", value_name = "FOLDER")]
    save: Option<std::path::PathBuf>,
    /// Model-check this Conductor WorkflowDef (JSON, as POST /api/metadata/workflow takes it)
    /// with the fixed protocol, for every SWITCH case and DO_WHILE count it can take
    #[arg(long, value_name = "FILE.json", conflicts_with_all = ["configs", "variants", "save"])]
    definition: Option<std::path::PathBuf>,
    /// With --definition: each DO_WHILE runs 1 to N times [default: 2]
    #[arg(long, value_name = "N", requires = "definition", value_parser = clap::value_parser!(u32).range(1..=16))]
    iterations: Option<u32>,
    /// With --definition: FAILED outcomes the workers may report, in all [default: 1]
    #[arg(long, value_name = "N", requires = "definition", value_parser = clap::value_parser!(u8).range(0..=16))]
    failures: Option<u8>,
    /// With --definition: duplicate deliveries of each report [default: 0]
    #[arg(long, value_name = "N", requires = "definition", value_parser = clap::value_parser!(u8).range(0..=4))]
    duplicates: Option<u8>,
    /// With --definition: concurrent sweepers [default: 1]
    #[arg(long, value_name = "N", requires = "definition", value_parser = clap::value_parser!(u8).range(1..=4))]
    sweepers: Option<u8>,
    /// With --definition: no operator terminates the workflow
    #[arg(long = "no-terminate", requires = "definition")]
    no_terminate: bool,
    /// With --definition: stop a combination with no verdict (exit 2) past N generated states
    /// [default: 20000000]
    #[arg(long = "max-states", value_name = "N", requires = "definition", value_parser = clap::value_parser!(u64).range(1..))]
    max_states: Option<u64>,
}

/// The names `--config` takes.
const CONFIG_NAMES: [&str; 7] = [
    "small", "default", "faults", "admin", "retry", "large", "all",
];

impl clap::ValueEnum for Variant {
    fn value_variants<'a>() -> &'a [Self] {
        &Variant::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl Args {
    /// The configurations asked for, in order.
    fn configs(&self) -> Vec<Config> {
        let names: Vec<&str> = if self.configs.is_empty() {
            Config::CHECKED.to_vec()
        } else {
            self.configs.iter().map(String::as_str).collect()
        };
        names
            .into_iter()
            .flat_map(|name| {
                if name == "all" {
                    Config::CHECKED.iter().chain(&["large"]).copied().collect()
                } else {
                    vec![name]
                }
            })
            .filter_map(Config::named)
            .collect()
    }

    /// The bounds of a definition check: the defaults, with what the flags changed.
    fn bounds(&self) -> crate::model::Bounds {
        let mut bounds = crate::model::Bounds::default();
        bounds.iterations = self.iterations.unwrap_or(bounds.iterations);
        bounds.failures = self.failures.unwrap_or(bounds.failures);
        bounds.duplicates = self.duplicates.unwrap_or(bounds.duplicates);
        bounds.sweepers = self.sweepers.map_or(bounds.sweepers, usize::from);
        bounds.terminate = !self.no_terminate;
        bounds.max_states = self.max_states.map_or(bounds.max_states, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
        bounds
    }
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    as_expected: bool,
    runs: &'a [Report],
}

/// Runs the subcommand.
pub fn run(arguments: Args) -> ExitCode {
    let threads = usize::from(arguments.threads);
    if let Some(path) = &arguments.definition {
        return super::definition::run(path, &arguments.bounds(), arguments.json, threads);
    }
    let mut reports = Vec::new();
    for config in &arguments.configs() {
        let variants = if arguments.variants.is_empty() {
            config.variants()
        } else {
            arguments.variants.clone()
        };
        for variant in variants {
            eprintln!("checking {} / {} ...", config.name, variant);
            let model = ProtocolModel::new(config.clone(), variant);
            let options = Options {
                threads,
                progress: Some(progress),
                ..Options::default()
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
        if let Err(code) = super::print_json("check", &output) {
            return code;
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use crate::cli::Cli;
    use crate::model::Bounds;

    /// The definition flags' help states [`Bounds::default`]'s values, which the flags fall back
    /// to: the two cannot drift apart.
    #[test]
    fn the_help_states_the_default_bounds() {
        let command = Cli::command();
        let check = command.find_subcommand("check").expect("check");
        let bounds = Bounds::default();
        for (id, default) in [
            ("iterations", bounds.iterations.to_string()),
            ("failures", bounds.failures.to_string()),
            ("duplicates", bounds.duplicates.to_string()),
            ("sweepers", bounds.sweepers.to_string()),
            ("max_states", bounds.max_states.to_string()),
        ] {
            let help = check
                .get_arguments()
                .find(|argument| argument.get_id() == id)
                .and_then(|argument| argument.get_help())
                .unwrap_or_else(|| panic!("--{id} has a help text"))
                .to_string();
            assert!(
                help.ends_with(&format!("[default: {default}]")),
                "{id}: {help}"
            );
        }
        assert!(bounds.terminate, "--no-terminate turns a default on off");
    }
}
