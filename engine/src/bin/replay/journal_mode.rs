//! `tonnex-replay --journal DIR [--book FILE] [--orders FILE] [--dump] [--digest]`:
//! recovers the state a venue left in a journal folder, offline, with the
//! venue's own recovery code.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use tonnex_engine::journal::{self, RecoverError, RecoverOptions};
use tonnex_engine::{dump, EngineConfig};
use tracing::{error, warn};

/// What `--journal` mode was asked for.
pub struct JournalOptions {
    pub dir: String,
    pub book: Option<String>,
    pub orders: Option<String>,
    pub dump: bool,
    pub digest: bool,
}

pub fn run(options: &JournalOptions) -> ExitCode {
    let dir = std::path::Path::new(&options.dir);
    if !dir.is_dir() {
        error!("{}: not a journal folder", options.dir);
        return ExitCode::from(2);
    }
    if options.dump {
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        let result = journal::dump(dir, |line| {
            let name = line
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let _ = writeln!(out, "{} {}:{} {}", line.seq, name, line.offset, line.text);
        });
        let _ = out.flush();
        if let Err(error) = result {
            return fail(&error);
        }
    }
    let started = Instant::now();
    // `--orders` wants every order the journal holds: when the journal still
    // reaches back to sequence 1, replay all of it rather than start from a
    // snapshot, so orders that finished before the snapshot are listed too.
    let from_start = options.orders.is_some() && journal_reaches_start(dir);
    let recovered = match journal::recover(
        dir,
        RecoverOptions {
            use_snapshot: !from_start,
            track_orders: options.orders.is_some(),
            config: EngineConfig::default(),
        },
    ) {
        Ok(recovered) => recovered,
        Err(error) => return fail(&error),
    };
    let recovered_ms = started.elapsed().as_millis();
    for warning in &recovered.warnings {
        warn!("tonnex-replay: {warning}");
    }
    if options.orders.is_some() && !from_start {
        warn!(
            "tonnex-replay: the journal no longer reaches sequence 1: --orders lists the snapshot's open orders and what followed"
        );
    }
    if let Err(error) = write_outputs(options, &recovered) {
        error!("tonnex-replay: writing output: {error}");
        return ExitCode::from(1);
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    // The state digest on its own line, so the contract's last line stays
    // exactly as it is.
    if options.digest {
        let _ = writeln!(std::io::stdout(), "digest={}", recovered.state.digest());
    }
    let _ = writeln!(
        std::io::stdout(),
        "records={} last_seq={} recovered_ms={recovered_ms}",
        recovered.records,
        recovered.last_seq
    );
    ExitCode::SUCCESS
}

fn journal_reaches_start(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_str() == Some(journal::segment_name(1).as_str()))
        })
        .unwrap_or(false)
}

fn write_outputs(options: &JournalOptions, recovered: &journal::Recovered) -> std::io::Result<()> {
    if let Some(path) = &options.book {
        let mut out = BufWriter::new(File::create(path)?);
        let books = recovered.state.books();
        let mut order: Vec<usize> = (0..books.len()).collect();
        order.sort_by_key(|&i| books[i].spec.symbol);
        for i in order {
            writeln!(out, "I {}", books[i].spec.symbol)?;
            dump::write_book(&mut out, &recovered.state, i)?;
        }
        out.flush()?;
    }
    if let Some(path) = &options.orders {
        let mut out = BufWriter::new(File::create(path)?);
        for (id, status) in &recovered.orders {
            writeln!(out, "{id} {}", status.as_str())?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Corruption exits 3 naming the segment and offset; other failures 1.
fn fail(error: &RecoverError) -> ExitCode {
    error!("tonnex-replay: {error}");
    match error {
        RecoverError::Corrupt { .. } | RecoverError::MissingStart { .. } => ExitCode::from(3),
        RecoverError::Io { .. } => ExitCode::from(1),
    }
}
