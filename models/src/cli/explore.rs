//! `wfstate explore CONFIG VARIANT [--port N]`: serve stateright's web explorer on 127.0.0.1.

use std::process::ExitCode;

use stateright::Model;

use crate::model::{Config, ProtocolModel, Variant};

/// Runs the subcommand (serves until interrupted).
pub fn run(args: &[String]) -> ExitCode {
    match parse(args) {
        Ok((config, variant, port)) => {
            let address = ("127.0.0.1", port);
            // stateright's server panics when it cannot bind: say why instead.
            if let Err(error) = std::net::TcpListener::bind(address) {
                eprintln!("wfstate explore: cannot listen on 127.0.0.1:{port}: {error}");
                return ExitCode::from(2);
            }
            eprintln!(
                "explorer for {} / {variant} on http://127.0.0.1:{port}/ (Ctrl-C to stop)",
                config.name
            );
            ProtocolModel::new(config, variant)
                .checker()
                .threads(1)
                .serve(address);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("wfstate explore: {message}\n{}", super::USAGE);
            ExitCode::from(2)
        }
    }
}

fn parse(args: &[String]) -> Result<(Config, Variant, u16), String> {
    let mut positional = Vec::new();
    let mut port = 3000;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--port" {
            let value = args.next().ok_or("--port needs a number")?;
            port = value.parse().map_err(|_| format!("bad port {value:?}"))?;
        } else {
            positional.push(arg.as_str());
        }
    }
    let [config, variant] = positional[..] else {
        return Err("explore needs CONFIG and VARIANT".into());
    };
    let config = Config::named(config).ok_or_else(|| format!("unknown config {config:?}"))?;
    Ok((config, variant.parse()?, port))
}
