//! The venue file's `[market_data]`: the market-data feed's port, its
//! optional key, and how much a subscriber may fall behind before it is
//! cut off. No table: no feed.

use std::path::Path;

use crate::values::{Ctx, LoadError, TomlRecord};

/// `[market_data]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketDataConfig {
    /// Address to listen on.
    pub listen: String,
    /// A key every subscriber must send (`None`: open to anyone who can
    /// reach the port).
    pub key: Option<String>,
    /// Bytes a subscriber may have queued before the venue disconnects it
    /// as a slow consumer (`max_queued_kb`, default 4096).
    pub max_queued_bytes: usize,
}

/// Reads `[market_data]`, if present.
pub(super) fn read_market_data(
    table: &toml::Table,
    path: &Path,
) -> Result<Option<MarketDataConfig>, LoadError> {
    let ctx = Ctx {
        file: path,
        record: "market_data".to_string(),
    };
    let Some(section) = ctx.optional_section(table, &["listen", "key", "max_queued_kb"])? else {
        return Ok(None);
    };
    let record = TomlRecord {
        table: section,
        ctx: &ctx,
    };
    let key = record.opt_string("key")?;
    if key.as_deref().is_some_and(str::is_empty) {
        return Err(ctx.error("key", "empty: leave it out for an open feed"));
    }
    let max_queued_kb = if section.contains_key("max_queued_kb") {
        u64::try_from(record.integer("max_queued_kb")?)
            .ok()
            .filter(|kb| (16..=1 << 20).contains(kb))
            .ok_or_else(|| ctx.error("max_queued_kb", "must be 16 to 1048576"))?
    } else {
        4096
    };
    Ok(Some(MarketDataConfig {
        listen: record.string("listen")?,
        key,
        max_queued_bytes: (max_queued_kb * 1024) as usize,
    }))
}
