//! The venue file's `[journal]` table: what an acknowledgement survives.

use std::path::Path;

use tonnex_engine::journal::Durability;

use crate::values::{Ctx, LoadError, TomlRecord};

/// What the venue's `[journal] durability` asks of an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VenueDurability {
    /// Acknowledged once in the page cache: survives the process dying.
    Process,
    /// Acknowledged once `msync`ed; a sync covers `records` commands or
    /// waits at most `micros` for more (group commit).
    Batch {
        /// Commands per sync at most.
        records: u32,
        /// Longest a command waits for its sync, in microseconds.
        micros: u64,
    },
    /// Acknowledged once `msync`ed; every batch the engine takes from the
    /// ring is synced at once, without waiting for more.
    Sync,
}

impl VenueDurability {
    /// The journal policy that implements it.
    #[must_use]
    pub fn journal(self) -> Durability {
        match self {
            VenueDurability::Process => Durability::Process,
            VenueDurability::Batch { records, micros } => Durability::Batch { records, micros },
            // One sync per batch: a batch policy with no count limit and no
            // wait, ticked after every batch.
            VenueDurability::Sync => Durability::Batch {
                records: u32::MAX,
                micros: 0,
            },
        }
    }

    /// Parses `process`, `batch`, `batch:RECORDS:MICROS` or `sync`.
    pub fn parse(text: &str) -> Result<VenueDurability, String> {
        match text {
            "process" => Ok(VenueDurability::Process),
            "sync" => Ok(VenueDurability::Sync),
            "batch" => Ok(VenueDurability::Batch {
                records: 256,
                micros: 1000,
            }),
            other => match Durability::parse(other) {
                Ok(Durability::Batch { records, micros }) => {
                    Ok(VenueDurability::Batch { records, micros })
                }
                _ => Err(format!(
                    "'{other}' is not a durability policy: process, batch, batch:RECORDS:MICROS or sync"
                )),
            },
        }
    }
}

/// The `[journal]` table: `durability = "process" | "batch" | "sync"`, and
/// for `batch` optionally `batch_records` and `batch_micros`.
pub(super) fn read_durability(
    table: &toml::Table,
    path: &Path,
) -> Result<VenueDurability, LoadError> {
    let Some(value) = table.get("journal") else {
        return Ok(VenueDurability::Process);
    };
    let ctx = Ctx {
        file: path,
        record: "journal".to_string(),
    };
    let toml::Value::Table(journal) = value else {
        return Err(ctx.error("journal", "expected a [journal] table"));
    };
    let record = TomlRecord {
        table: journal,
        ctx: &ctx,
    };
    for key in journal.keys() {
        if !["durability", "batch_records", "batch_micros"].contains(&key.as_str()) {
            return Err(ctx.error(
                key,
                "unknown key: durability, batch_records or batch_micros",
            ));
        }
    }
    let policy = record
        .opt_string("durability")?
        .unwrap_or_else(|| "process".to_string());
    let durability = match policy.as_str() {
        "process" | "batch" | "sync" => {
            VenueDurability::parse(&policy).map_err(|e| ctx.error("durability", e))?
        }
        other => {
            return Err(ctx.error(
                "durability",
                format!("'{other}' is not process, batch or sync"),
            ))
        }
    };
    let batch_key = |key: &str, max: i64| -> Result<Option<i64>, LoadError> {
        if !journal.contains_key(key) {
            return Ok(None);
        }
        if durability == VenueDurability::Process || durability == VenueDurability::Sync {
            return Err(ctx.error(key, "applies only to durability = \"batch\""));
        }
        let v = record.integer(key)?;
        if v <= 0 || v > max {
            return Err(ctx.error(key, format!("must be 1..={max}")));
        }
        Ok(Some(v))
    };
    let records = batch_key("batch_records", i64::from(u32::MAX))?;
    let micros = batch_key("batch_micros", 10_000_000)?;
    Ok(match durability {
        VenueDurability::Batch {
            records: r,
            micros: m,
        } => VenueDurability::Batch {
            records: records.map_or(r, |v| v as u32),
            micros: micros.map_or(m, |v| v as u64),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<VenueDurability, String> {
        let table: toml::Table = text.parse().unwrap();
        read_durability(&table, Path::new("venue.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn each_policy_reads_and_a_bad_one_names_the_file_and_field() {
        assert_eq!(read(""), Ok(VenueDurability::Process));
        assert_eq!(
            read("[journal]\ndurability = \"sync\""),
            Ok(VenueDurability::Sync)
        );
        assert_eq!(
            read("[journal]\ndurability = \"batch\""),
            Ok(VenueDurability::Batch {
                records: 256,
                micros: 1000
            })
        );
        assert_eq!(
            read("[journal]\ndurability = \"batch\"\nbatch_records = 8\nbatch_micros = 50"),
            Ok(VenueDurability::Batch {
                records: 8,
                micros: 50
            })
        );
        let error = read("[journal]\ndurability = \"fast\"").unwrap_err();
        assert!(
            error.contains("venue.toml")
                && error.contains("journal.durability")
                && error.contains("'fast'"),
            "{error}"
        );
        let error = read("[journal]\ndurability = \"sync\"\nbatch_records = 8").unwrap_err();
        assert!(error.contains("journal.batch_records"), "{error}");
        let error = read("[journal]\ndurability = \"batch\"\nbatch_micros = 0").unwrap_err();
        assert!(error.contains("must be 1..="), "{error}");
        let error = read("[journal]\nfsync = true").unwrap_err();
        assert!(error.contains("journal.fsync: unknown key"), "{error}");
    }

    #[test]
    fn sync_is_one_group_commit_per_batch() {
        assert_eq!(
            VenueDurability::Sync.journal(),
            Durability::Batch {
                records: u32::MAX,
                micros: 0
            }
        );
        assert_eq!(
            VenueDurability::parse("batch:4:10"),
            Ok(VenueDurability::Batch {
                records: 4,
                micros: 10
            })
        );
        assert!(VenueDurability::parse("batch:0:10").is_err());
    }
}
