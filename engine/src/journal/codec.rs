//! The journal's record payload: a command in a fixed little-endian layout,
//! written field by field (no generic serializer on the engine thread's
//! path, and every byte drawn here).
//!
//! ```text
//! byte 0: tag   then, by tag (u64/i64/u32 little-endian; bool and enums u8):
//! 1 New          id u64, account u64, instrument u32, side u8 (0 buy, 1 sell),
//!                kind u8 (0 L, 1 M, 2 I, 3 F, 4 P), pathway u8 (0 none,
//!                1 engaged, 2 recognised, 3 leadership; + 0x80 when the
//!                buy skips asks below its floor), price i64, qty u64,
//!                cash_budget i64, floor_ticks u32, attestation_id u64, ts_ns u64
//!                (68 bytes in all)
//! 10 New, plain  a New with no cash budget and no compliance (pathway none,
//!                no floor, no attestation): the commonest command, a market
//!                maker's order, without its 21 zero bytes: id u64, account
//!                u64, instrument u32, side u8, kind u8, price i64, qty u64,
//!                ts_ns u64                    (47; 64 with the record header)
//! 11 New, plain, client id / 12 New, client id
//!                tag 10's / tag 1's fields, then client_order_id u64 (a
//!                venue order: reports after a restart carry the client's id)
//!                                                          (55 / 76 bytes)
//! 13 Scoped      a buyer's buy with its compliance decision: tag 12's fields
//!                after the tag, released_from_hold u8, then the decision
//!                (`wire::BuyDecision`, bincode 2 fixed-int little-endian)
//! 14 Venue       a `VenueCommand` (rules in force, attestation, hold,
//!                unhold, refusal, KYC, serial block), bincode 2 fixed-int
//!                little-endian
//! 15 Admin       an operator's action: operator and reason (bincode 2
//!                strings), then the inner command's own payload (`admin_codec`)
//! 16 Settlement  settlement's outcomes (`settlement::SettlementBatch`),
//!                bincode 2 fixed-int little-endian; always inside an Admin
//! 2 Cancel       order_id u64, account u64                              (17)
//! 3 Replace      order_id u64, account u64, price i64, qty u64           (33)
//! 4 MassCancel   account u64, has_instrument u8, instrument u32         (14)
//! 5 AddInstrument instrument u32, symbol_len u8, symbol [u8; 23] (zero
//!                padded), tick_micros i64, min_price i64, max_price i64  (53)
//! 6 Halt         instrument u32, cancel_resting u8                       (6)
//! 7 Resume       instrument u32                                          (5)
//! 8 Deposit / 9 Withdraw
//!                account u64, asset u8 (0 cash, 1 credits), then cash: amount
//!                i64; credits: instrument u32, qty u64           (18 / 22)
//! ```

use crate::command::{Asset, Command, Compliance, InstrumentSpec, NewOrder, ScopedOrder};
use tonnex_protocol::{Cash, OrderKind, Pathway, Price, Qty, Side, Symbol};

/// The longest encoded command.
pub const MAX_ENCODED: usize = 76;

/// Appends little-endian fields to a buffer of [`MAX_ENCODED`] bytes (a
/// fixed size, so that after inlining every bounds check folds away).
struct Out<'a> {
    buf: &'a mut [u8; MAX_ENCODED],
    at: usize,
}

impl Out<'_> {
    #[inline(always)]
    fn bytes<const N: usize>(&mut self, bytes: [u8; N]) {
        self.buf[self.at..self.at + N].copy_from_slice(&bytes);
        self.at += N;
    }
    #[inline(always)]
    fn u8(&mut self, v: u8) {
        self.bytes([v]);
    }
    #[inline(always)]
    fn u32(&mut self, v: u32) {
        self.bytes(v.to_le_bytes());
    }
    #[inline(always)]
    fn u64(&mut self, v: u64) {
        self.bytes(v.to_le_bytes());
    }
    #[inline(always)]
    fn i64(&mut self, v: i64) {
        self.bytes(v.to_le_bytes());
    }
    /// A new order with every field (tags 1 and 12; 12 adds the client id).
    #[inline(always)]
    fn full_order(&mut self, tag: u8, o: &NewOrder) {
        self.order_head(tag, o);
        self.u8(o.compliance.pathway as u8 | (u8::from(o.compliance.skip_below_floor) << 7));
        self.i64(o.price.ticks());
        self.u64(o.qty.tonnes());
        self.i64(o.cash_budget.0);
        self.u32(o.compliance.floor_ticks);
        self.u64(o.compliance.attestation_id);
        self.u64(o.ts_ns);
        if tag == 12 {
            self.u64(o.client_order_id);
        }
    }
    /// The tag and the fields both forms of a new order start with.
    #[inline(always)]
    fn order_head(&mut self, tag: u8, o: &NewOrder) {
        self.u8(tag);
        self.u64(o.id);
        self.u64(o.account);
        self.u32(o.instrument);
        self.u8(o.side as u8);
        self.u8(o.kind as u8);
    }
}

/// Encodes `command` at the start of `buf` and returns the number of bytes
/// written.
#[inline]
pub fn encode(command: &Command, buf: &mut [u8; MAX_ENCODED]) -> usize {
    let mut out = Out { buf, at: 0 };
    match *command {
        Command::New(ref o) if o.cash_budget.0 == 0 && o.compliance == Compliance::NONE => {
            out.order_head(if o.client_order_id == 0 { 10 } else { 11 }, o);
            out.i64(o.price.ticks());
            out.u64(o.qty.tonnes());
            out.u64(o.ts_ns);
            if o.client_order_id != 0 {
                out.u64(o.client_order_id);
            }
        }
        Command::New(ref o) => out.full_order(if o.client_order_id == 0 { 1 } else { 12 }, o),
        Command::Scoped(_) | Command::Venue(_) | Command::Admin(_) | Command::Settlement(_) => {
            unreachable!("variable-length commands go through encode_large")
        }
        Command::Cancel { order_id, account } => {
            out.u8(2);
            out.u64(order_id);
            out.u64(account);
        }
        Command::Replace {
            order_id,
            account,
            price,
            qty,
        } => {
            out.u8(3);
            out.u64(order_id);
            out.u64(account);
            out.i64(price.ticks());
            out.u64(qty.tonnes());
        }
        Command::MassCancel {
            account,
            instrument,
        } => {
            out.u8(4);
            out.u64(account);
            out.u8(u8::from(instrument.is_some()));
            out.u32(instrument.unwrap_or(0));
        }
        Command::AddInstrument { instrument, spec } => {
            out.u8(5);
            out.u32(instrument);
            let text = spec.symbol.as_str().as_bytes();
            let mut symbol = [0u8; Symbol::CAPACITY];
            symbol[..text.len()].copy_from_slice(text);
            out.u8(text.len() as u8);
            out.bytes(symbol);
            out.i64(spec.tick_micros);
            out.i64(spec.min_price.ticks());
            out.i64(spec.max_price.ticks());
        }
        Command::Halt {
            instrument,
            cancel_resting,
        } => {
            out.u8(6);
            out.u32(instrument);
            out.u8(u8::from(cancel_resting));
        }
        Command::Resume { instrument } => {
            out.u8(7);
            out.u32(instrument);
        }
        Command::Deposit { account, asset } | Command::Withdraw { account, asset } => {
            out.u8(if matches!(command, Command::Deposit { .. }) {
                8
            } else {
                9
            });
            out.u64(account);
            match asset {
                Asset::Cash(cash) => {
                    out.u8(0);
                    out.i64(cash.0);
                }
                Asset::Credits { instrument, qty } => {
                    out.u8(1);
                    out.u32(instrument);
                    out.u64(qty.tonnes());
                }
            }
        }
    }
    out.at
}

/// The protocol's bincode configuration, bounded: a damaged length field can
/// never ask for more memory than a few records' worth. bincode counts a
/// vector's memory (its length × the element's in-memory size) against the
/// limit, which is more than the bytes it was written in (a settlement
/// outcome: 13 to 32 bytes written, 32 in memory; a scope line 10 and 16),
/// so the limit is 16 records, not one: every record of at most
/// `MAX_PAYLOAD` bytes reads back.
pub(super) fn record_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_little_endian()
        .with_limit::<{ 16 * crate::journal::segment::MAX_PAYLOAD }>()
}

/// Whether `command` has a variable length and goes through [`encode_large`].
#[inline]
#[must_use]
pub fn is_large(command: &Command) -> bool {
    matches!(
        command,
        Command::Scoped(_) | Command::Venue(_) | Command::Admin(_) | Command::Settlement(_)
    )
}

/// Encodes a variable-length command (tags 13 to 16) into `out`.
pub fn encode_large(command: &Command, out: &mut Vec<u8>) {
    out.clear();
    match command {
        Command::Scoped(scoped) => {
            let mut head = [0u8; MAX_ENCODED];
            let mut fields = Out {
                buf: &mut head,
                at: 0,
            };
            fields.full_order(12, &scoped.order);
            let at = fields.at;
            head[0] = 13;
            out.extend_from_slice(&head[..at]);
            out.push(u8::from(scoped.released_from_hold));
            bincode::encode_into_std_write(&scoped.decision, out, tonnex_protocol::codec_config())
                .expect("writing to a Vec cannot fail");
        }
        Command::Venue(venue) => {
            out.push(14);
            bincode::encode_into_std_write(&**venue, out, tonnex_protocol::codec_config())
                .expect("writing to a Vec cannot fail");
        }
        Command::Admin(admin) => super::admin_codec::encode(admin, out),
        Command::Settlement(batch) => {
            out.push(16);
            bincode::encode_into_std_write(&**batch, out, tonnex_protocol::codec_config())
                .expect("writing to a Vec cannot fail");
        }
        _ => unreachable!("fixed-length commands go through encode"),
    }
}

/// Reads fields back, failing on a short payload.
struct In<'a> {
    buf: &'a [u8],
    at: usize,
}

impl In<'_> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self
            .buf
            .get(self.at..self.at + N)
            .ok_or_else(|| format!("payload ends at byte {} inside a field", self.buf.len()))?;
        self.at += N;
        Ok(bytes.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes::<1>()?[0])
    }
    fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("flag byte {other} is neither 0 nor 1")),
        }
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.bytes()?))
    }
}

/// Decodes a payload written by [`encode`]; every byte must be used.
pub fn decode(payload: &[u8]) -> Result<Command, String> {
    let mut r = In {
        buf: payload,
        at: 0,
    };
    let command = match r.u8()? {
        15 => return super::admin_codec::decode(&payload[1..]),
        14 => {
            let (venue, used) = bincode::decode_from_slice::<crate::command::VenueCommand, _>(
                &payload[1..],
                record_config(),
            )
            .map_err(|e| format!("venue command: {e}"))?;
            r.at = 1 + used;
            Command::Venue(Box::new(venue))
        }
        16 => {
            let (batch, used) =
                bincode::decode_from_slice::<crate::settlement::SettlementBatch, _>(
                    &payload[1..],
                    record_config(),
                )
                .map_err(|e| format!("settlement outcomes: {e}"))?;
            r.at = 1 + used;
            Command::Settlement(Box::new(batch))
        }
        tag @ (1 | 10 | 11 | 12 | 13) => {
            let (id, account, instrument) = (r.u64()?, r.u64()?, r.u32()?);
            let side = match r.u8()? {
                0 => Side::Buy,
                1 => Side::Sell,
                other => return Err(format!("side {other}")),
            };
            let kind = match r.u8()? {
                0 => OrderKind::Limit,
                1 => OrderKind::Market,
                2 => OrderKind::Ioc,
                3 => OrderKind::Fok,
                4 => OrderKind::PostOnly,
                other => return Err(format!("order kind {other}")),
            };
            let order = |price, qty, cash_budget, compliance, ts_ns, client_order_id| NewOrder {
                id,
                account,
                client_order_id,
                instrument,
                side,
                kind,
                price,
                qty,
                cash_budget,
                compliance,
                ts_ns,
            };
            if tag == 10 || tag == 11 {
                let (price, qty, ts_ns) = (Price(r.i64()?), Qty(r.u64()?), r.u64()?);
                let client_order_id = if tag == 11 { r.u64()? } else { 0 };
                Command::New(order(
                    price,
                    qty,
                    Cash::ZERO,
                    Compliance::NONE,
                    ts_ns,
                    client_order_id,
                ))
            } else {
                let pathway_byte = r.u8()?;
                let skip_below_floor = pathway_byte & 0x80 != 0;
                let pathway = match pathway_byte & 0x7f {
                    0 => Pathway::None,
                    1 => Pathway::Engaged,
                    2 => Pathway::Recognised,
                    3 => Pathway::Leadership,
                    other => return Err(format!("pathway {other}")),
                };
                let (price, qty, cash_budget) = (Price(r.i64()?), Qty(r.u64()?), Cash(r.i64()?));
                let (floor_ticks, attestation_id, ts_ns) = (r.u32()?, r.u64()?, r.u64()?);
                let compliance = Compliance {
                    pathway,
                    floor_ticks,
                    attestation_id,
                    skip_below_floor,
                };
                let client_order_id = if tag == 1 { 0 } else { r.u64()? };
                let order = order(price, qty, cash_budget, compliance, ts_ns, client_order_id);
                if tag == 13 {
                    let released_from_hold = r.bool()?;
                    let (decision, used) =
                        bincode::decode_from_slice(&payload[r.at..], record_config())
                            .map_err(|e| format!("buy decision: {e}"))?;
                    r.at += used;
                    Command::Scoped(Box::new(ScopedOrder {
                        order,
                        decision,
                        released_from_hold,
                    }))
                } else {
                    Command::New(order)
                }
            }
        }
        2 => Command::Cancel {
            order_id: r.u64()?,
            account: r.u64()?,
        },
        3 => Command::Replace {
            order_id: r.u64()?,
            account: r.u64()?,
            price: Price(r.i64()?),
            qty: Qty(r.u64()?),
        },
        4 => {
            let account = r.u64()?;
            let has = r.bool()?;
            let instrument = r.u32()?;
            Command::MassCancel {
                account,
                instrument: has.then_some(instrument),
            }
        }
        5 => {
            let instrument = r.u32()?;
            let len = usize::from(r.u8()?);
            let raw: [u8; Symbol::CAPACITY] = r.bytes()?;
            let text = raw
                .get(..len)
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or_else(|| format!("symbol length {len}"))?;
            let symbol =
                Symbol::new(text).ok_or_else(|| format!("symbol '{text}' is not valid"))?;
            Command::AddInstrument {
                instrument,
                spec: InstrumentSpec {
                    symbol,
                    tick_micros: r.i64()?,
                    min_price: Price(r.i64()?),
                    max_price: Price(r.i64()?),
                },
            }
        }
        6 => Command::Halt {
            instrument: r.u32()?,
            cancel_resting: r.bool()?,
        },
        7 => Command::Resume {
            instrument: r.u32()?,
        },
        tag @ (8 | 9) => {
            let account = r.u64()?;
            let asset = match r.u8()? {
                0 => Asset::Cash(Cash(r.i64()?)),
                1 => Asset::Credits {
                    instrument: r.u32()?,
                    qty: Qty(r.u64()?),
                },
                other => return Err(format!("asset kind {other}")),
            };
            if tag == 8 {
                Command::Deposit { account, asset }
            } else {
                Command::Withdraw { account, asset }
            }
        }
        other => return Err(format!("unknown command tag {other}")),
    };
    if r.at != payload.len() {
        return Err(format!("{} bytes after the command", payload.len() - r.at));
    }
    Ok(command)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
