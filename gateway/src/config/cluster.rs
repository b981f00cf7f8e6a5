//! The venue file's `[cluster]`: the key every node of a cluster proves to
//! its peers in the first frame of each connection (`cluster/src/transport/`,
//! the hello). A node (`--node`) refuses to start without one: the Raft
//! transport takes entries that overwrite the venue's log, so it is never
//! open to whoever reaches its port.

use std::path::Path;

use crate::values::{Ctx, LoadError, TomlRecord};

/// The shortest key taken.
const MIN_KEY_BYTES: usize = 16;

/// Reads `[cluster] key`, if present.
pub(super) fn read_cluster_key(
    table: &toml::Table,
    path: &Path,
) -> Result<Option<String>, LoadError> {
    let ctx = Ctx {
        file: path,
        record: "cluster".to_string(),
    };
    let Some(section) = ctx.optional_section(table, &["key"])? else {
        return Ok(None);
    };
    let record = TomlRecord {
        table: section,
        ctx: &ctx,
    };
    let key = record.string("key")?;
    if key.len() < MIN_KEY_BYTES {
        return Err(ctx.error(
            "key",
            format!(
                "{} bytes: a cluster key has at least {MIN_KEY_BYTES}",
                key.len()
            ),
        ));
    }
    Ok(Some(key))
}
