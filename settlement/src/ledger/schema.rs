//! The ledger's schema: each migration in order; `PRAGMA user_version` says
//! how many a ledger has had.

/// The ledger schema this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 10;

pub(super) const MIGRATIONS: [&str; 10] = ["
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE instruments (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, sub_ledger TEXT NOT NULL, tick_micros INTEGER NOT NULL);
CREATE TABLE movements (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, trade_id INTEGER, stream_seq INTEGER);
CREATE TABLE postings (movement_id INTEGER NOT NULL, account INTEGER NOT NULL, asset INTEGER NOT NULL, amount INTEGER NOT NULL);
CREATE INDEX postings_by_account ON postings (account, asset);
CREATE TABLE serial_blocks (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, instrument INTEGER NOT NULL,
    registry TEXT NOT NULL, project_id TEXT NOT NULL, prefix TEXT NOT NULL, width INTEGER NOT NULL,
    first INTEGER NOT NULL, last INTEGER NOT NULL, next INTEGER NOT NULL, vintage INTEGER NOT NULL, ccp INTEGER NOT NULL);
CREATE INDEX blocks_by_owner ON serial_blocks (account, instrument, id);
CREATE TABLE buy_orders (order_id INTEGER PRIMARY KEY, account INTEGER NOT NULL, instrument INTEGER NOT NULL,
    qty INTEGER NOT NULL, price_ticks INTEGER NOT NULL, decision TEXT NOT NULL,
    filled INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0, certificate TEXT);
CREATE TABLE trades (trade_id INTEGER PRIMARY KEY, journal_seq INTEGER NOT NULL, instrument INTEGER NOT NULL,
    buy_order_id INTEGER NOT NULL, sell_order_id INTEGER NOT NULL, buyer INTEGER NOT NULL, seller INTEGER NOT NULL,
    price_ticks INTEGER NOT NULL, qty INTEGER NOT NULL, amount_micros INTEGER NOT NULL, supplementary_ticks INTEGER NOT NULL,
    state TEXT NOT NULL, payment INTEGER NOT NULL DEFAULT 0, transfer INTEGER NOT NULL DEFAULT 0,
    retire INTEGER NOT NULL, submitted_ms INTEGER NOT NULL, settled_ms INTEGER, retirement_ref TEXT, retired_ms INTEGER);
CREATE INDEX trades_by_state ON trades (state);
CREATE INDEX trades_by_buy_order ON trades (buy_order_id);
CREATE TABLE trade_serials (trade_id INTEGER NOT NULL, block_id INTEGER NOT NULL, first INTEGER NOT NULL,
    last INTEGER NOT NULL, returned INTEGER NOT NULL DEFAULT 0);
CREATE INDEX serials_by_trade ON trade_serials (trade_id);
CREATE TABLE registry_events (event_id TEXT PRIMARY KEY, trade_id INTEGER NOT NULL, kind TEXT NOT NULL,
    confirmed INTEGER NOT NULL, reference TEXT NOT NULL, applied TEXT NOT NULL);
CREATE TABLE supplementary (trade_id INTEGER PRIMARY KEY, buyer INTEGER NOT NULL, ticks_per_t INTEGER NOT NULL,
    qty INTEGER NOT NULL, amount_micros INTEGER NOT NULL);
CREATE TABLE certificates (certificate_id TEXT PRIMARY KEY, order_id INTEGER NOT NULL, sha256 TEXT NOT NULL, json TEXT NOT NULL);
", "
CREATE INDEX movements_by_trade ON movements (trade_id, kind);
", "
-- Pending work is 'awaiting_confirmations', or 'settled' with a retirement
-- owed: by (state, retire), so the poll does not walk every settled trade.
DROP INDEX trades_by_state;
CREATE INDEX trades_by_state ON trades (state, retire, trade_id);
", "
-- Settlement speed: every posting and movement paid for an index entry that
-- only the off-line audit and report read (they scan and group instead), and
-- registry events kept their text key twice (rowid table + its index).
DROP INDEX postings_by_account;
DROP INDEX movements_by_trade;
CREATE TABLE registry_events_by_id (event_id TEXT PRIMARY KEY, trade_id INTEGER NOT NULL, kind TEXT NOT NULL,
    confirmed INTEGER NOT NULL, reference TEXT NOT NULL, applied TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO registry_events_by_id SELECT event_id, trade_id, kind, confirmed, reference, applied FROM registry_events;
DROP TABLE registry_events;
ALTER TABLE registry_events_by_id RENAME TO registry_events;
", "
-- The buyer dashboard (tonnex-web) reads one buyer's orders and fills
-- below the floor: by account, so a page costs the same whatever the
-- ledger's size. A buy order and a supplementary row are rare beside
-- trades and postings: the writes barely notice.
CREATE INDEX buy_orders_by_account ON buy_orders (account, order_id);
CREATE INDEX supplementary_by_buyer ON supplementary (buyer, trade_id);
", "
-- The custody log (custody.rs): one entry per movement, its SHA-256
-- (32 bytes) chaining in the entry before. Movements of an older ledger get
-- their entries when it is opened (custody::backfill).
CREATE TABLE custody_log (movement_id INTEGER PRIMARY KEY, sha256 BLOB NOT NULL);
", "
-- How each trade ended, for the venue's engine (feedback.rs): written in the
-- transaction of the transition, sent in id order on settlement's admin
-- session; meta.feedback_acked is the highest id the venue acknowledged;
-- `refused` the reason code of an outcome the venue refused.
CREATE TABLE venue_feedback (id INTEGER PRIMARY KEY, trade_id INTEGER NOT NULL, outcome TEXT NOT NULL, refused INTEGER);
", "
-- Why a trade did not settle or retire: '<kind>_refused:<registry reason>'
-- or 'timeout' (the report groups them).
ALTER TABLE trades ADD COLUMN failure TEXT;
", "
-- Credits sellers moved into the venue's custody account at the registry
-- (custody_in.rs): each transfer once, then deposited at the venue as a lot
-- (state received -> deposited | refused, with the venue's answer).
CREATE TABLE custody_in (transfer_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, from_account TEXT NOT NULL,
    venue_account INTEGER, instrument TEXT NOT NULL, csv TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL);
", "
-- Withdrawals (withdrawals.rs): the venue debited them; the registry moves
-- their serials (in trade_serials under the withdrawal's id, 1 << 62 | the
-- stream record) out of custody, or refuses and they come back.
CREATE TABLE withdrawals (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, instrument INTEGER NOT NULL,
    qty INTEGER NOT NULL, state TEXT NOT NULL, submitted_ms INTEGER NOT NULL, reference TEXT, failure TEXT);
CREATE INDEX withdrawals_by_state ON withdrawals (state, id);
"];
