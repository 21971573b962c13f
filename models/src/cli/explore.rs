//! `wfstate explore CONFIG VARIANT [--port N]`: serve stateright's web explorer on 127.0.0.1.

use std::process::ExitCode;

use stateright::Model;

use crate::model::{Config, ProtocolModel, Variant};

/// Serve stateright's web explorer for one configuration and variant
///
/// Listens on 127.0.0.1 until interrupted. Exit 2 when the port is taken.
#[derive(Debug, clap::Args)]
// A repeated option takes its last value, as the hand-written parsers did.
#[command(args_override_self = true)]
pub struct Args {
    /// The configuration
    #[arg(value_name = "CONFIG", value_parser = ["small", "default", "faults", "admin", "retry", "large"])]
    config: String,
    /// The variant: fixed or a legacy one
    #[arg(value_name = "VARIANT")]
    variant: Variant,
    /// The port to listen on
    #[arg(long, value_name = "N", default_value_t = 3000)]
    port: u16,
}

/// Runs the subcommand (serves until interrupted).
pub fn run(args: Args) -> ExitCode {
    let Some(config) = Config::named(&args.config) else {
        // clap has checked the name against the same list.
        eprintln!("wfstate explore: unknown config {:?}", args.config);
        return ExitCode::from(2);
    };
    let port = args.port;
    let address = ("127.0.0.1", port);
    // stateright's server panics when it cannot bind: say why instead.
    if let Err(error) = std::net::TcpListener::bind(address) {
        eprintln!("wfstate explore: cannot listen on 127.0.0.1:{port}: {error}");
        return ExitCode::from(2);
    }
    eprintln!(
        "explorer for {} / {} on http://127.0.0.1:{port}/ (Ctrl-C to stop)",
        config.name, args.variant
    );
    ProtocolModel::new(config, args.variant)
        .checker()
        .threads(1)
        .serve(address);
    ExitCode::SUCCESS
}
