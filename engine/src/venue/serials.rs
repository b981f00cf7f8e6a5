//! Registry serial blocks ever deposited: a lot whose block overlaps one of
//! them would mint credits twice, so ingestion refuses it, naming the
//! block it overlaps and where that came from.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};

/// A block of registry serials: `prefix` followed by the numbers
/// `first..=last` (the serial's trailing digits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Encode, Decode)]
pub struct SerialBlock {
    /// Registry name.
    pub registry: String,
    /// Everything before the serial's trailing digits.
    pub prefix: String,
    /// First number of the block.
    pub first: u64,
    /// Last number of the block (inclusive).
    pub last: u64,
    /// Digits the numbers are written with (zero-padded), for display.
    pub width: u8,
}

impl SerialBlock {
    /// Serials in the block.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.last - self.first + 1
    }
}

impl std::fmt::Display for SerialBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (registry, prefix, width) = (&self.registry, &self.prefix, usize::from(self.width));
        write!(
            f,
            "{registry} {prefix}{:0width$}..{prefix}{:0width$}",
            self.first, self.last
        )
    }
}

/// A deposited block and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SerialRecord {
    /// Journal sequence that recorded it (0: not journaled yet).
    pub seq: u64,
    /// The block.
    pub block: SerialBlock,
    /// Its origin, such as `lots.csv line 3`.
    pub source: String,
}

/// Every block deposited, searchable by overlap.
#[derive(Clone, Debug, Default)]
pub struct SerialBlocks {
    /// `(registry, prefix)` → first → index into `records`.
    index: BTreeMap<(String, String), BTreeMap<u64, usize>>,
    records: Vec<SerialRecord>,
}

impl SerialBlocks {
    /// Blocks rebuilt from their records, in order.
    #[must_use]
    pub fn from_records(records: &[SerialRecord]) -> SerialBlocks {
        let mut blocks = SerialBlocks::default();
        for record in records {
            // An image holds no overlaps: `insert` kept them out.
            let _ = blocks.insert(record.clone());
        }
        blocks
    }

    /// The recorded block `block` overlaps, if any.
    #[must_use]
    pub fn overlapping(&self, block: &SerialBlock) -> Option<&SerialRecord> {
        let starts = self
            .index
            .get(&(block.registry.clone(), block.prefix.clone()))?;
        // Recorded blocks never overlap one another, so only the last one
        // starting at or before `block.last` can reach into it.
        let (_, &at) = starts.range(..=block.last).next_back()?;
        let record = &self.records[at];
        (record.block.last >= block.first).then_some(record)
    }

    /// Records a block. An overlapping one is refused (the ingestion path
    /// checks first, so a refusal here names a bug) with the block it hits.
    pub fn insert(&mut self, record: SerialRecord) -> Result<(), SerialRecord> {
        if let Some(hit) = self.overlapping(&record.block) {
            return Err(hit.clone());
        }
        let key = (record.block.registry.clone(), record.block.prefix.clone());
        self.index
            .entry(key)
            .or_default()
            .insert(record.block.first, self.records.len());
        self.records.push(record);
        Ok(())
    }

    /// Every record, in the order deposited.
    #[must_use]
    pub fn records(&self) -> &[SerialRecord] {
        &self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(prefix: &str, first: u64, last: u64) -> SerialBlock {
        SerialBlock {
            registry: "Verra".into(),
            prefix: prefix.into(),
            first,
            last,
            width: 3,
        }
    }

    fn record(prefix: &str, first: u64, last: u64) -> SerialRecord {
        SerialRecord {
            seq: 0,
            block: block(prefix, first, last),
            source: format!("{first}"),
        }
    }

    #[test]
    fn overlaps_are_found_at_either_edge_and_inside() {
        let mut blocks = SerialBlocks::default();
        blocks.insert(record("A-", 100, 199)).unwrap();
        blocks.insert(record("A-", 300, 399)).unwrap();
        for (first, last, hit) in [
            (1, 99, None),
            (1, 100, Some(100)),
            (199, 250, Some(100)),
            (200, 299, None),
            (150, 160, Some(100)),
            (50, 500, Some(300)),
            (399, 399, Some(300)),
            (400, 900, None),
        ] {
            let found = blocks
                .overlapping(&block("A-", first, last))
                .map(|r| r.block.first);
            assert_eq!(found, hit, "{first}..{last}");
        }
        // Another prefix or registry is another series.
        assert!(blocks.overlapping(&block("B-", 100, 199)).is_none());
        let mut other = block("A-", 100, 199);
        other.registry = "Gold Standard".into();
        assert!(blocks.overlapping(&other).is_none());
        assert_eq!(
            blocks.insert(record("A-", 390, 410)).unwrap_err().source,
            "300"
        );
        assert_eq!(blocks.records().len(), 2);
    }
}
