#!/usr/bin/env python3
"""Reference client for the tonnex order-entry protocol (docs/protocol.md).

Standard library only. Logs in, optionally sends one order, and prints every
message the venue sends until it has seen the order's outcome (or --wait
seconds pass). It exists to prove that the byte layouts in docs/protocol.md
are all a client in another language needs.

    scripts/client.py --venue 127.0.0.1:7001 --account 3001 --secret demo-3001 \
        --instrument 0 --side sell --price-ticks 2500 --qty 10
"""

import argparse
import socket
import struct
import sys
import time

SIDES = {"buy": 0, "sell": 1}
REJECTS = {
    1: "UNKNOWN_INSTRUMENT", 2: "INSTRUMENT_HALTED", 3: "DUPLICATE_ORDER_ID",
    4: "INVALID_QUANTITY", 5: "PRICE_OUTSIDE_BAND", 6: "UNKNOWN_ORDER_ID",
    7: "NOT_ORDER_OWNER", 8: "POST_ONLY_WOULD_CROSS", 9: "INSUFFICIENT_FUNDS",
    10: "INSUFFICIENT_CREDITS", 11: "FLOOR_NOT_MET", 12: "MISSING_CASH_BUDGET",
    13: "INVALID_INSTRUMENT", 14: "INVALID_AMOUNT", 15: "INVALID_PRICE",
    64: "UNKNOWN_ACCOUNT", 65: "ACCOUNT_NOT_ACTIVE", 66: "INVALID_ORDER",
    67: "NO_PROFILE", 68: "SUBLEDGER_NOT_ELIGIBLE", 69: "INTERNAL_PRICE_BELOW_FLOOR",
    70: "SCOPE_MISSING", 71: "SCOPE_EXCEEDS_INVENTORY", 72: "PRICE_BELOW_FLOOR",
    73: "ATTESTATION_REQUIRED", 74: "LOT_NOT_ELIGIBLE", 96: "THROTTLED",
    97: "DUPLICATE_CLIENT_ORDER_ID", 98: "RISK_MAX_QTY", 99: "RISK_MAX_NOTIONAL",
    100: "RISK_PRICE_COLLAR", 101: "VENUE_CLOSING",
}
CANCELS = {1: "USER", 2: "IOC_REMAINDER", 3: "FOK_UNFILLED", 4: "SELF_TRADE",
           5: "MASS_CANCEL", 6: "HALT", 7: "BUDGET_EXHAUSTED"}


def string(text):
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


def login(account, secret, last_seen_seq=0, cancel_on_disconnect=False):
    return frame(struct.pack("<IQ", 0, account) + string(secret)
                 + struct.pack("<QB", last_seen_seq, int(cancel_on_disconnect)))


def new_order(client_order_id, instrument, side, order_type, tif, price_ticks, qty,
              cash_budget_micros=0, scope=(), attestation=None):
    body = struct.pack("<IQIBBBqQq", 3, client_order_id, instrument, side, order_type,
                       tif, price_ticks, qty, cash_budget_micros)
    body += struct.pack("<Q", len(scope))
    for line_scope, category, line_qty in scope:
        body += struct.pack("<BBQ", line_scope, category, line_qty)
    body += b"\x00" if attestation is None else b"\x01" + string(attestation)
    return frame(body)


class Reader:
    """Decodes the fields of one payload in order."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def string(self):
        n = self.take("Q")
        text = self.data[self.at:self.at + n].decode()
        self.at += n
        return text

    def option_string(self):
        return self.string() if self.take("B") else None

    def levels(self):
        return [self.take("qQ") for _ in range(self.take("Q"))]


def decode(payload):
    """A venue frame's payload as (seq, name, fields)."""
    r = Reader(payload)
    seq, tag = r.take("QI")
    if tag == 0:
        return seq, "LoginAccepted", dict(zip(("account", "next_seq", "heartbeat_ms"), r.take("QQI")))
    if tag == 1:
        return seq, "LoginRejected", {"text": r.string()}
    if tag == 2:
        return seq, "Heartbeat", {}
    if tag == 3:
        f = dict(zip(("client_order_id", "order_id", "instrument", "side", "price_ticks", "qty",
                      "pathway"), r.take("QQIBqQB")))
        f["sub_ledger"] = r.string()
        f["floor_ticks"] = r.take("I")
        f["attestation"] = r.option_string()
        return seq, "OrderAccepted", f
    if tag == 4:
        f = dict(zip(("client_order_id", "order_id", "reason"), r.take("QQB")))
        f["reason"] = REJECTS.get(f["reason"], f["reason"])
        return seq, "OrderRejected", f
    if tag == 5:
        f = dict(zip(("client_order_id", "reason"), r.take("QB")))
        f["reason"] = REJECTS.get(f["reason"], f["reason"])
        return seq, "OrderHeld", f
    if tag == 6:
        names = ("client_order_id", "order_id", "trade_id", "instrument", "side", "price_ticks",
                 "qty", "leaves_qty", "aggressor", "supplementary_ticks")
        return seq, "Fill", dict(zip(names, r.take("QQQIBqQQBq")))
    if tag == 7:
        f = dict(zip(("client_order_id", "order_id", "instrument", "open_qty", "reason"),
                     r.take("QQIQB")))
        f["reason"] = CANCELS.get(f["reason"], f["reason"])
        return seq, "Cancelled", f
    if tag == 8:
        names = ("client_order_id", "order_id", "price_ticks", "qty", "priority_kept")
        return seq, "Replaced", dict(zip(names, r.take("QQqQB")))
    if tag == 9:
        instruments = []
        for _ in range(r.take("Q")):
            number = r.take("I")
            symbol, sub_ledger = r.string(), r.string()
            tick, low, high = r.take("qqq")
            instruments.append({"instrument": number, "symbol": symbol, "sub_ledger": sub_ledger,
                                "tick_micros": tick, "min_price_ticks": low,
                                "max_price_ticks": high})
        return seq, "ReferenceData", {"instruments": instruments}
    if tag == 10:
        instrument, md_seq = r.take("IQ")
        return seq, "BookSnapshot", {"instrument": instrument, "md_seq": md_seq,
                                     "bids": r.levels(), "asks": r.levels()}
    if tag == 11:
        names = ("instrument", "md_seq", "side", "price_ticks", "qty")
        return seq, "LevelUpdate", dict(zip(names, r.take("IQBqQ")))
    if tag == 12:
        names = ("instrument", "md_seq", "trade_id", "price_ticks", "qty", "aggressor_side")
        return seq, "Trade", dict(zip(names, r.take("IQQqQB")))
    if tag == 13:
        return seq, "AttestationAccepted", {"id": r.string(), "rechecked": r.take("I")}
    if tag == 14:
        return seq, "SessionError", {"text": r.string()}
    if tag == 18:
        return seq, "NotLeader", {"leader": r.take("Q"), "order_entry": r.string()}
    return seq, "Unknown", {"tag": tag}


def read_frames(sock, buffer):
    """Yields whole payloads from the socket until it closes or times out."""
    while True:
        while len(buffer) >= 4:
            (length,) = struct.unpack_from("<I", buffer)
            if len(buffer) < 4 + length:
                break
            payload = bytes(buffer[4:4 + length])
            del buffer[:4 + length]
            yield payload
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return
        if not chunk:
            return
        buffer.extend(chunk)


def open_session(addresses, account, secret, wait):
    """Logs in to whichever node of a cluster leads (a single venue is a
    cluster of one), following `NotLeader` redirects; returns the socket,
    its frame reader and the login's answer."""
    deadline = time.time() + max(wait, 5.0)
    queue = list(addresses)
    while time.time() < deadline:
        if not queue:
            queue = list(addresses)
            time.sleep(0.1)  # an election may be under way
        address = queue.pop(0)
        host, port = address.rsplit(":", 1)
        try:
            sock = socket.create_connection((host, int(port)), timeout=wait)
            sock.sendall(login(account, secret))
        except OSError as e:
            print(f"{address}: {e}", flush=True)
            continue
        frames = read_frames(sock, bytearray())
        first = next(frames, None)
        if first is None:
            sock.close()
            continue
        seq, name, fields = decode(first)
        if name == "NotLeader":
            print(f"{address}: seq={seq} {name} {fields}", flush=True)
            sock.close()
            if fields["order_entry"]:
                queue.insert(0, fields["order_entry"])
            continue
        return sock, frames, (seq, name, fields)
    raise SystemExit(f"no node of {addresses} answered as leader")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", default="127.0.0.1:7001",
                        help="ADDR, or a cluster's nodes ADDR,ADDR,... (the leader is found)")
    parser.add_argument("--account", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--instrument", type=int)
    parser.add_argument("--side", choices=SIDES, default="buy")
    parser.add_argument("--price-ticks", type=int, default=0)
    parser.add_argument("--qty", type=int, default=1)
    parser.add_argument("--market", action="store_true", help="market order (IOC)")
    parser.add_argument("--scope", action="append", default=[],
                        help="scope allocation line SCOPE:CATEGORY:QTY (repeatable)")
    parser.add_argument("--client-order-id", type=int, default=int(time.time() * 1000))
    parser.add_argument("--wait", type=float, default=2.0)
    args = parser.parse_args()

    sock, frames, answer = open_session(args.venue.split(","), args.account, args.secret,
                                        args.wait)
    seq, name, fields = answer
    print(f"seq={seq} {name} {fields}", flush=True)
    if name in ("LoginRejected", "SessionError"):
        return 1
    if args.instrument is not None:
        scope = [tuple(int(x) for x in line.split(":")) for line in args.scope]
        sock.sendall(new_order(args.client_order_id, args.instrument, SIDES[args.side],
                               1 if args.market else 0, 1 if args.market else 0,
                               0 if args.market else args.price_ticks, args.qty, scope=scope))
    outcome_seen = False
    for payload in frames:
        seq, name, fields = decode(payload)
        print(f"seq={seq} {name} {fields}", flush=True)
        if name in ("LoginRejected", "SessionError"):
            return 1
        if name in ("OrderAccepted", "OrderRejected", "OrderHeld") and not outcome_seen:
            outcome_seen = True
            sock.settimeout(0.3)  # what follows at once (fills), then stop
        if args.instrument is None and name == "ReferenceData":
            break
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
