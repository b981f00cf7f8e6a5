"""Waits for a settlement ledger to catch up: shared by the scripts that run
`tonnex-settlement` against a venue.

    from settled import wait_settled
    wait_settled(LEDGER_PATH, RECORDS, timeout_s)   # exits the script on timeout
"""
import os
import sqlite3
import sys
import time


def open_ledger(path):
    """A read-only connection (the settlement process keeps writing; WAL
    allows a reader), once the ledger file exists."""
    while not os.path.exists(path):
        time.sleep(0.05)
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def applied(db):
    """The last fill-stream record the ledger has applied (0: none)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'last_stream_seq'").fetchone()
    return row[0] if row else 0


def wait_settled(path, count, timeout_s, poll_s=0.2, since=None):
    """Returns the connection once the ledger has applied `count` records and
    no trade is in flight; exits with a message `timeout_s` seconds after
    `since` (a time.time() value; default: now)."""
    deadline = (time.time() if since is None else since) + timeout_s
    db = open_ledger(path)
    seq, in_flight = 0, None
    while time.time() < deadline:
        seq = applied(db)
        in_flight = db.execute(
            "SELECT COUNT(*) FROM trades WHERE state IN ('locked', 'awaiting_confirmations', 'failed')"
        ).fetchone()[0]
        if seq == count and in_flight == 0:
            return db
        time.sleep(poll_s)
    sys.exit(f"settlement did not catch up: {seq} of {count} records, {in_flight} trades in flight")


def wait_fed(path, timeout_s, poll_s=0.2):
    """Waits until the venue has acknowledged every trade outcome the ledger
    queued for it (the venue feed is drained); exits the script on timeout."""
    deadline = time.time() + timeout_s
    db = open_ledger(path)
    queued = acked = None
    while time.time() < deadline:
        queued, acked = db.execute(
            "SELECT (SELECT COUNT(*) FROM venue_feedback),"
            " COALESCE((SELECT value FROM meta WHERE key = 'feedback_acked'), 0)"
        ).fetchone()
        if queued == acked:
            return db
        time.sleep(poll_s)
    sys.exit(f"the venue did not acknowledge every outcome: {acked} of {queued}")
