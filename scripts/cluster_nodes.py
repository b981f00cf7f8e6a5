#!/usr/bin/env python3
"""What the cluster scripts share: venue nodes as processes on loopback
ports (`Node`), waiting, the operators' CLI, reading a node's journal back
(`tonnex-replay`), and the end-of-run checks every node must pass
(`final_checks`: every acknowledged order in every journal, one state,
one fill log). Used by `cluster_test.py` and `cluster_bench.py`.
"""

import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(count):
    """`count` distinct free TCP ports on loopback."""
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


class Node:
    def __init__(self, bin_dir, work, node_id, raft, entry, others):
        self.bin_dir, self.id = bin_dir, node_id
        self.dir = os.path.join(work, f"n{node_id}")
        self.out = os.path.join(work, f"n{node_id}.out")
        self.err = os.path.join(work, f"n{node_id}.err")
        self.raft, self.entry = raft, entry
        self.others = others  # fills, admin, metrics, market data ports
        self.proc = None
        # Ready lines printed before this run started (a node prints one
        # each time it starts following and each time it starts leading).
        self.lines_before = 0

    def start(self, peers, entries, join=False):
        self.lines_before = len(self.ready_lines())
        fills, admin, metrics, md = self.others
        with open(self.out, "a") as out, open(self.err, "a") as err:
            self.proc = subprocess.Popen(
                [f"{self.bin_dir}/tonnex-venue", "run",
                 "--config", os.path.join(ROOT, "config/demo/venue.toml"),
                 "--journal-dir", self.dir,
                 "--listen", f"127.0.0.1:{self.entry}",
                 "--fills-listen", f"127.0.0.1:{fills}",
                 "--admin-listen", f"127.0.0.1:{admin}",
                 "--metrics-listen", f"127.0.0.1:{metrics}",
                 "--market-data-listen", f"127.0.0.1:{md}",
                 "--node", str(self.id), "--peers", peers,
                 "--peer-order-entry", entries] + (["--join"] if join else []),
                stdout=out, stderr=err)

    def ready_lines(self):
        try:
            with open(self.out) as f:
                return [l for l in f if l.startswith("ready ")]
        except FileNotFoundError:
            return []

    def role(self):
        """The role of this run's last ready line (None before one)."""
        lines = self.ready_lines()
        if len(lines) <= self.lines_before:
            return None
        match = re.search(r"role=(\w+)", lines[-1])
        return match.group(1) if match else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def describe(self, lines=8):
        """What a failure report shows of this node: running or its exit
        code, its last ready line, the tail of its log."""
        state = "running" if self.alive() else f"exited {self.proc.returncode if self.proc else '-'}"
        ready = self.ready_lines()
        last = re.search(r"role=\w+", ready[-1]).group(0) if ready else "no ready line"
        try:
            with open(self.err) as f:
                tail = f.readlines()[-lines:]
        except FileNotFoundError:
            tail = []
        return "\n".join([f"node {self.id}: {state}, {len(ready)} ready lines, last {last}"]
                         + [f"  {l.rstrip()[:220]}" for l in tail])


def make_nodes(bin_dir, work, count):
    """`count` nodes numbered from 1, each on six free ports of its own."""
    ports = free_ports(count * 6)
    return [Node(bin_dir, work, i + 1, ports[6 * i], ports[6 * i + 1], ports[6 * i + 2:6 * i + 6])
            for i in range(count)]


def wait_for(what, check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise SystemExit(f"FAIL: {what} within {seconds} s")


def replay(bin_dir, node, work):
    orders = os.path.join(work, f"orders{node.id}.txt")
    result = subprocess.run(
        [f"{bin_dir}/tonnex-replay", "--journal", node.dir, "--digest", "--orders", orders],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"FAIL: tonnex-replay on node {node.id}: {result.stderr}")
    digest = re.search(r"digest=(\w+)", result.stdout).group(1)
    last_seq = int(re.search(r"last_seq=(\d+)", result.stdout).group(1))
    records = int(re.search(r"records=(\d+)", result.stdout).group(1))
    with open(orders) as f:
        known = {int(l.split()[0]) for l in f if l.strip()}
    # A node that caught up from a leader's snapshot has a journal that
    # starts after it: its --orders knows the snapshot's open orders only.
    return digest, last_seq, known, last_seq - records + 1


def admin(bin_dir, node, *verb):
    """`tonnex-admin` against NODE's admin port as the demo operator; its
    output and exit status."""
    result = subprocess.run(
        [f"{bin_dir}/tonnex-admin", "--admin", f"127.0.0.1:{node.others[1]}",
         "--operator", "ops", "--key", "demo-ops-key", "--reason", "cluster test", *verb],
        capture_output=True, text=True, timeout=30)
    return result.stdout, result.returncode


def field(text, name):
    """A field of tonnex-admin's last line (`ok=...`)."""
    last = [l for l in text.splitlines() if l.startswith("ok=")]
    match = re.search(rf"\b{name}=(\S+)", last[-1]) if last else None
    return match.group(1) if match else None


def read_for(sock, buffer, seconds):
    """Every message `sock` brings within `seconds`, decoded, and whether the
    venue closed the connection."""
    import client
    messages, deadline = [], time.time() + seconds
    while time.time() < deadline:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return messages, True
        if not chunk:
            return messages, True
        buffer.extend(chunk)
        while len(buffer) >= 4:
            (length,) = struct.unpack_from("<I", buffer)
            if len(buffer) < 4 + length:
                break
            messages.append(client.decode(bytes(buffer[4:4 + length])))
            del buffer[:4 + length]
    return messages, False


def fill_log_details(path):
    """(instruments, their sub-ledgers named, credit deposits, with their
    registry lot) in a node's fill log: what only the journaled annotations
    give a node that did not take the command itself."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    at, instruments, named, deposits, lots = 0, 0, 0, 0, 0
    while at + 8 <= len(data):
        _crc, length = struct.unpack_from("<II", data, at)
        if length == 0:  # zeros prepared past the records end the log
            break
        payload = data[at + 8:at + 8 + length]
        at += 8 + length
        (tag,) = struct.unpack_from("<I", payload, 16)
        if tag == 0:  # Instrument: instrument u32, symbol, sub_ledger
            instruments += 1
            (symbol_len,) = struct.unpack_from("<Q", payload, 24)
            (sub_len,) = struct.unpack_from("<Q", payload, 32 + symbol_len)
            named += sub_len > 0
        elif tag == 2:  # CreditDeposit: account, instrument, qty, lot option
            deposits += 1
            lots += payload[40] == 1
    return instruments, named, deposits, lots


def count_lines(path):
    with open(path) as f:
        return sum(1 for l in f if l.strip())


def client_order(addresses):
    """`scripts/client.py` sells 1 t of instrument 0 at 25.00 as account
    2001 through `addresses` (it follows redirects); its output."""
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts/client.py"),
         "--venue", ",".join(addresses),
         "--account", "2001", "--secret", "demo-2001", "--instrument", "0",
         "--side", "sell", "--price-ticks", "2500", "--qty", "1"],
        capture_output=True, text=True, timeout=30)
    return result.stdout


def metrics(node):
    """NODE's `GET /metrics` text."""
    import urllib.request
    return urllib.request.urlopen(
        f"http://127.0.0.1:{node.others[2]}/metrics", timeout=10).read().decode()


class Load:
    """`tonnex-loadtest --venue A,B,C` in the background for `seconds`, its
    acknowledged orders in `acked_log` and its report in `json_path`."""

    def __init__(self, bin_dir, work, venues, rate, seconds):
        self.seconds = seconds
        self.acked_log = os.path.join(work, "acked.log")
        self.json_path = os.path.join(work, "load.json")
        self.out_path = os.path.join(work, "load.out")
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen(
            [f"{bin_dir}/tonnex-loadtest", "--venue", venues, "--sessions", "4",
             "--rate", str(rate), "--duration", str(seconds), "--instruments", "0,1",
             "--acked-log", self.acked_log, "--out", self.json_path, "--quiet"],
            stdout=self.out, stderr=subprocess.STDOUT)
        wait_for("the load test's first acknowledgements",
                 lambda: os.path.exists(self.acked_log) and os.path.getsize(self.acked_log) > 0,
                 20)

    def running(self):
        return self.proc.poll() is None

    def text(self):
        with open(self.out_path) as f:
            return f.read()

    def finish(self):
        """Waits for the end; its output and last line (`sent=...`), which
        must show no error."""
        self.proc.wait(timeout=self.seconds + 120)
        self.out.close()
        text = self.text()
        last = text.strip().splitlines()[-1] if text.strip() else ""
        if self.proc.returncode != 0 or not last.startswith("sent="):
            raise SystemExit(f"FAIL: the load test failed:\n{text}")
        print(f"load test: {last}")
        errors = int(re.search(r"errors=(\d+)", last).group(1))
        if errors:
            raise SystemExit(f"FAIL: the load test counted {errors} errors:\n{text}")
        return text, last

    def kill(self):
        if self.running():
            self.proc.kill()


def stop_all(nodes):
    """SIGTERM to every node; each must exit 0."""
    for node in nodes:
        node.proc.send_signal(signal.SIGTERM)
    for node in nodes:
        if node.proc.wait(timeout=30) != 0:
            raise SystemExit(f"FAIL: node {node.id} did not exit 0 on SIGTERM")


def same_state(bin_dir, work, nodes):
    """Each stopped node's journal read back (`replay`); all must hold one
    digest and one last sequence. Returns the replays, by node."""
    results = [replay(bin_dir, n, work) for n in nodes]
    if len({r[0] for r in results}) != 1 or len({r[1] for r in results}) != 1:
        raise SystemExit(f"FAIL: the nodes' states differ: {[r[:2] for r in results]}")
    return results


def final_checks(bin_dir, work, nodes, acked_log):
    """Stops every node, then: every acknowledged order in every node's
    journal that covers it, one digest and last sequence, one fill log
    (with every lot and sub-ledger). Returns the digest."""
    # Let the last restarted node catch up, then stop every node.
    time.sleep(1.0)
    stop_all(nodes)
    with open(acked_log) as f:
        acked = {int(l) for l in f if l.strip()}
    results = same_state(bin_dir, work, nodes)
    for node, (digest, last_seq, known, start) in zip(nodes, results):
        covered = {a for a in acked if a >= start}
        missing = sorted(covered - known)
        if missing:
            raise SystemExit(f"FAIL: node {node.id}: {len(missing)} acknowledged orders "
                             f"missing, first {missing[:10]}")
        print(f"node {node.id}: last_seq={last_seq} journal_from={start} digest={digest} "
              f"all {len(covered)} acknowledged orders its journal covers present")
    first = min(r[3] for r in results)
    unverified = sorted(a for a in acked if a < first)
    if unverified:
        raise SystemExit(f"FAIL: {len(unverified)} acknowledged orders precede every node's "
                         f"journal (all caught up from snapshots): cannot be checked")
    # Every node serves the same fill stream: the same records under the
    # same sequence numbers (each node writes its own, from the log).
    fills = {}
    for node in nodes:
        with open(os.path.join(node.dir, "fills.log"), "rb") as f:
            fills[node.id] = hashlib.sha256(f.read()).hexdigest()
    if len(set(fills.values())) != 1:
        raise SystemExit(f"FAIL: the nodes' fill logs differ: {fills}")
    instruments, named, deposits, lots = fill_log_details(
        os.path.join(nodes[0].dir, "fills.log"))
    if not instruments or named != instruments or not deposits or lots != deposits:
        raise SystemExit(f"FAIL: fill log details lost: {named} of {instruments} instruments "
                         f"name a sub-ledger, {lots} of {deposits} credit deposits a lot")
    print(f"every node's fill log is the same ({fills[1][:16]}...)")
    return results[0][0]
