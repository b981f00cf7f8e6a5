#!/usr/bin/env python3
"""Reads a venue's whole fill stream (docs/protocol.md, "Fill stream") from
record 1 until it goes quiet, and prints what it holds.

    fillstream.py ADDR            the number of records
    fillstream.py ADDR --summary  counts by kind, the first and last records

It subscribes as TONNEX_FILL_NAME with key TONNEX_FILL_KEY (the venue's
[[fill_subscriber]]); without them, as the demo's `settlement` subscriber
with its demo key.
"""
import os
import socket
import struct
import sys

KINDS = ["Instrument", "CashDeposit", "CreditDeposit", "CashWithdrawal", "CreditWithdrawal",
         "BuyAccepted", "Trade", "Cancelled", "Refused"]


def string(text):
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def subscribe(from_seq):
    """StreamSubscribe { from_seq, name, key }, framed."""
    name = os.environ.get("TONNEX_FILL_NAME", "settlement")
    key = os.environ.get("TONNEX_FILL_KEY", "demo-settlement-key")
    payload = struct.pack("<Q", from_seq) + string(name) + string(key)
    return struct.pack("<I", len(payload)) + payload


def records(addr, quiet_s=1.0):
    """(seq, journal_seq, kind) of every record the stream sends before it
    is quiet for quiet_s seconds."""
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=quiet_s)
    sock.sendall(subscribe(1))
    data, at, out = bytearray(), 0, []
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            while len(data) - at >= 4:
                (n,) = struct.unpack_from("<I", data, at)
                if len(data) - at < 4 + n:
                    break
                seq, journal_seq, tag = struct.unpack_from("<QQI", data, at + 4)
                if seq == 0:
                    sys.exit("the venue refused the fill-stream subscription")
                out.append((seq, journal_seq, KINDS[tag] if tag < len(KINDS) else tag))
                at += 4 + n
            del data[:at]
            at = 0
    except socket.timeout:
        pass
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    found = records(sys.argv[1])
    if "--summary" not in sys.argv[2:]:
        print(len(found))
        return
    counts = {}
    for _, _, kind in found:
        counts[kind] = counts.get(kind, 0) + 1
    print(f"{len(found)} records: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    for seq, journal_seq, kind in found[:3] + [("...", "", "")] + found[-3:]:
        print(f"  seq={seq} journal_seq={journal_seq} {kind}")


if __name__ == "__main__":
    main()
