//! `tonnex-replay generate`: a FORMAT.md workload on standard output.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use tonnex_engine::generate::{generate, Mix, Options, Profile};
use tracing::error;

/// Usage of the subcommand.
pub const USAGE: &str =
    "tonnex-replay generate --profile steady|deep --mix basic|full --ops N --seed S [--depth N]";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        profile: Profile::Steady,
        mix: Mix::Full,
        ops: 1_000_000,
        seed: 1,
        depth: None,
    };
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what}: '{value}' is not a whole number"))
        };
        match flag {
            "--profile" => {
                options.profile = match value.as_str() {
                    "steady" => Profile::Steady,
                    "deep" => Profile::Deep,
                    other => return Err(format!("--profile: '{other}' is not steady or deep")),
                }
            }
            "--mix" => {
                options.mix = match value.as_str() {
                    "basic" => Mix::Basic,
                    "full" => Mix::Full,
                    other => return Err(format!("--mix: '{other}' is not basic or full")),
                }
            }
            "--ops" => options.ops = number("--ops")? as usize,
            "--seed" => options.seed = number("--seed")?,
            "--depth" => options.depth = Some(number("--depth")? as usize),
            other => return Err(format!("unexpected argument '{other}'")),
        }
        i += 2;
    }
    Ok(options)
}

/// Runs `tonnex-replay generate ARGS`.
pub fn run(args: &[String]) -> ExitCode {
    let options = match parse(args) {
        Ok(options) => options,
        Err(message) => {
            error!("tonnex-replay generate: {message}");
            eprintln!("usage: {USAGE}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    match generate(options, &mut out).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("tonnex-replay generate: {e}");
            ExitCode::from(1)
        }
    }
}
