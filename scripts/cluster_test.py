#!/usr/bin/env python3
"""Cluster failover test on real processes: three (or five) `tonnex-venue run
--node` nodes on loopback, a load test following the leader (`--venue A,B,C`), and
the leader killed with SIGKILL at random moments while orders flow.

After each kill a new leader must take over and the load test must resume
on it: every session logs in again from the last message it saw, in the
same session id, and the new leader's replay goes on from there with no
gap (what the old leader had committed but not sent arrives then). The
killed node is restarted and must catch up. At the end every
node is stopped, and every node's journal must hold every order the load
test saw acknowledged (its `--acked-log`), and all nodes must hold the same
state (equal `tonnex-replay --digest`, equal last sequence).

    scripts/cluster_test.py BIN_DIR [--nodes 3|5] [--kills N] [--rate R] [--seconds S]
    scripts/cluster_test.py BIN_DIR --operations
    scripts/cluster_test.py BIN_DIR --minority
    scripts/cluster_test.py BIN_DIR --behind

Prints one line per kill (`kill n=.. node=.. leader_after_ms=..`) and last
`cluster-test ok kills=N acked=N failover_max_ms=N digest=...`; exit 0 only
when everything holds.

`--operations` runs the operators' verbs instead (tonnex-admin cluster
...): status on the leader and on a follower, a planned leadership
transfer, a fourth node added (started with --join) that catches up, and
a voter removed; then the remaining voters must hold equal states.

`--minority` cuts a leader off from both its followers (SIGSTOP) and sends
it an order: nothing sequenced may come back (no acknowledgement without a
quorum) and the leader must step down; once the followers run again a
leader takes orders and the three nodes end in one state.

`--behind` stops a follower under load until it is past what its leader
keeps in memory (70,000 entries), then lets it run: it must catch up from
the leader's journal within 15 s, with no failover.
"""

import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
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
    return result.stdout + result.stderr, result.returncode


def field(text, name):
    """A field of tonnex-admin's last line (`ok=...`)."""
    last = [l for l in text.splitlines() if l.startswith("ok=")]
    match = re.search(rf"\b{name}=(\S+)", last[-1]) if last else None
    return match.group(1) if match else None


def operations(bin_dir, work):
    """Status, transfer, add and remove, through tonnex-admin."""
    nodes = make_nodes(bin_dir, work, 4)
    founders = nodes[:3]
    peers = ",".join(f"{n.id}@127.0.0.1:{n.raft}" for n in founders)
    entries = ",".join(f"{n.id}@127.0.0.1:{n.entry}" for n in nodes)
    try:
        for node in founders:
            node.start(peers, entries)
        leader = wait_for("a leader elected",
                          lambda: next((n for n in founders if n.role() == "leader"), None), 20)
        out, code = admin(bin_dir, leader, "cluster", "status")
        if code != 0 or field(out, "role") != "leader" or field(out, "voters") != "1,2,3" \
                or out.count("peer node=") != 2:
            raise SystemExit(f"FAIL: cluster status on the leader:\n{out}")
        print(f"status on the leader: {[l for l in out.splitlines() if l.startswith('ok=')][-1]}")
        follower = next(n for n in founders if n is not leader)
        out, code = admin(bin_dir, follower, "cluster", "status")
        if code != 0 or field(out, "role") != "follower" or field(out, "leader") != str(leader.id):
            raise SystemExit(f"FAIL: cluster status on a follower:\n{out}")
        out, code = admin(bin_dir, follower, "halt", "--all")
        if code == 0 or field(out, "reason") != "NOT_LEADER":
            raise SystemExit(f"FAIL: a follower carried out an order-flow verb:\n{out}")
        print("a follower answers cluster status and refuses other verbs NOT_LEADER")
        # GET /metrics shows each node's view.
        import urllib.request
        for node in founders:
            text = urllib.request.urlopen(
                f"http://127.0.0.1:{node.others[2]}/metrics", timeout=10).read().decode()
            shown = dict(re.findall(r"^(tonnex_cluster_\w+) (\d+)$", text, re.M))
            if shown.get("tonnex_cluster_node") != str(node.id) or \
                    shown.get("tonnex_cluster_leader") != str(int(node is leader)):
                raise SystemExit(f"FAIL: node {node.id}'s metrics: {shown}")
        print("GET /metrics shows each node's role")

        # A planned transfer: the named follower leads.
        out, code = admin(bin_dir, leader, "cluster", "transfer", str(follower.id))
        if code != 0:
            raise SystemExit(f"FAIL: cluster transfer:\n{out}")
        wait_for(f"node {follower.id} to lead after the transfer",
                 lambda: follower.role() == "leader", 10)
        old = leader
        leader = follower
        print(f"leadership transferred from node {old.id} to node {leader.id}")

        # A fourth node joins: started with --join, added by the leader.
        newcomer = nodes[3]
        newcomer.start(peers + f",4@127.0.0.1:{newcomer.raft}", entries, join=True)
        wait_for("node 4 started", lambda: newcomer.role() is not None, 20)
        out, code = admin(bin_dir, leader, "cluster", "add", "4", f"127.0.0.1:{newcomer.raft}")
        if code != 0:
            raise SystemExit(f"FAIL: cluster add:\n{out}")

        def caught_up():
            out, code = admin(bin_dir, leader, "cluster", "status")
            lag = re.search(r"peer node=4 matched=(\d+) lag=(\d+)", out)
            return code == 0 and field(out, "voters") == "1,2,3,4" and lag and lag.group(2) == "0"
        wait_for("node 4 to be a voter and caught up", caught_up, 20)
        out, _ = admin(bin_dir, newcomer, "cluster", "status")
        print(f"node 4 added and caught up: {[l for l in out.splitlines() if l.startswith('ok=')][-1]}")

        # The old leader (now a follower) is removed.
        out, code = admin(bin_dir, leader, "cluster", "remove", str(old.id))
        if code != 0:
            raise SystemExit(f"FAIL: cluster remove:\n{out}")
        remaining = ",".join(str(n.id) for n in nodes if n is not old)
        wait_for(f"voters {remaining}",
                 lambda: field(admin(bin_dir, leader, "cluster", "status")[0], "voters")
                 == remaining, 10)
        print(f"node {old.id} removed: voters {remaining}")

        # Node 4 leads, and a founder restarts with the founders' flags only
        # (its --peers and --peer-order-entry predate node 4, and its log,
        # compacted around the addition, no longer holds the change): it
        # learns where node 4 listens from node 4's hello, catches up, and
        # redirects a client to node 4's order entry.
        out, code = admin(bin_dir, leader, "cluster", "transfer", "4")
        if code != 0:
            raise SystemExit(f"FAIL: cluster transfer to node 4:\n{out}")
        wait_for("node 4 to lead", lambda: newcomer.role() == "leader", 10)
        leader = newcomer
        third = next(n for n in founders if n is not old and n.role() != "leader")
        third.proc.send_signal(signal.SIGTERM)
        if third.proc.wait(timeout=30) != 0:
            raise SystemExit(f"FAIL: node {third.id} did not exit 0 on SIGTERM")
        founder_entries = ",".join(f"{n.id}@127.0.0.1:{n.entry}" for n in founders)
        third.start(peers, founder_entries)
        wait_for(f"node {third.id} restarted", lambda: third.role() is not None, 20)
        order = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts/client.py"),
             "--venue", f"127.0.0.1:{third.entry}",
             "--account", "2001", "--secret", "demo-2001", "--instrument", "0",
             "--side", "sell", "--price-ticks", "2500", "--qty", "1"],
            capture_output=True, text=True, timeout=30)
        if (f"'order_entry': '127.0.0.1:{newcomer.entry}'" not in order.stdout
                or "OrderAccepted" not in order.stdout):
            raise SystemExit(f"FAIL: node {third.id}, restarted with the founders' flags, did "
                             f"not redirect to node 4:\n{order.stdout}{order.stderr}")

        def third_caught_up():
            out, code = admin(bin_dir, leader, "cluster", "status")
            lag = re.search(rf"peer node={third.id} matched=(\d+) lag=(\d+)", out)
            return code == 0 and lag and int(lag.group(1)) > 0 and lag.group(2) == "0"
        wait_for(f"node {third.id} to catch up with node 4 leading", third_caught_up, 20)
        print(f"node {third.id}, restarted with the founders' --peers, learnt node 4 from its "
              f"hello: caught up, and redirects clients to it")
        # The reconfigured cluster takes an order (through any node).
        order = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts/client.py"),
             "--venue", ",".join(f"127.0.0.1:{n.entry}" for n in nodes if n is not old),
             "--account", "2001", "--secret", "demo-2001", "--instrument", "0",
             "--side", "sell", "--price-ticks", "2500", "--qty", "1"],
            capture_output=True, text=True, timeout=30)
        if "OrderAccepted" not in order.stdout:
            raise SystemExit(f"FAIL: no order accepted after the changes:\n{order.stdout}")
        time.sleep(0.5)
        voters = [n for n in nodes if n is not old]
        for node in nodes:
            node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            if node.proc.wait(timeout=30) != 0:
                raise SystemExit(f"FAIL: node {node.id} did not exit 0 on SIGTERM")
        results = [replay(bin_dir, n, work) for n in voters]
        if len({r[0] for r in results}) != 1 or len({r[1] for r in results}) != 1:
            raise SystemExit(f"FAIL: the voters' states differ: {[r[:2] for r in results]}")
        print(f"cluster-ops ok voters={remaining} last_seq={results[0][1]} digest={results[0][0]}")
    finally:
        for node in nodes:
            if node.alive():
                node.proc.kill()


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


def minority(bin_dir, work):
    """A leader cut off from both followers (stopped with SIGSTOP: they
    neither answer nor time out) takes an order it cannot acknowledge:
    nothing sequenced comes back for it, check quorum makes the leader step
    down, and once the followers run again the cluster has a leader that
    takes orders, and the three nodes end in one state."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import client
    nodes = make_nodes(bin_dir, work, 3)
    peers = ",".join(f"{n.id}@127.0.0.1:{n.raft}" for n in nodes)
    entries = ",".join(f"{n.id}@127.0.0.1:{n.entry}" for n in nodes)
    stopped = []
    try:
        for node in nodes:
            node.start(peers, entries)
        leader = wait_for("a leader elected",
                          lambda: next((n for n in nodes if n.role() == "leader"), None), 20)
        sock, _, (seq, name, fields) = client.open_session(
            [f"127.0.0.1:{leader.entry}"], 2001, "demo-2001", 2.0)
        if name != "LoginAccepted":
            raise SystemExit(f"FAIL: login to the leader: {name} {fields}")
        buffer = bytearray()
        # What a login brings (its replay), then quiet.
        before, closed = read_for(sock, buffer, 1.0)
        if closed:
            raise SystemExit("FAIL: the leader closed a fresh session")
        for node in nodes:
            if node is not leader:
                node.proc.send_signal(signal.SIGSTOP)
                stopped.append(node)
        cut_at = time.time()
        sock.sendall(client.new_order(int(cut_at * 1000), 0, client.SIDES["sell"], 0, 0,
                                      2500, 1))
        answers, closed = read_for(sock, buffer, 3.0)
        sequenced = [m for m in answers if m[0] > 0]
        if sequenced:
            raise SystemExit(f"FAIL: a leader without a quorum sent sequenced messages: "
                             f"{sequenced}")
        stepped = wait_for(f"node {leader.id}, cut off, to step down",
                           lambda: leader.role() == "follower", 10)
        print(f"node {leader.id} cut off from its followers: the order got no answer in 3 s "
              f"({len(answers)} unsequenced messages, session "
              f"{'closed' if closed else 'open'}), the node stepped down ({stepped})")
        sock.close()
        for node in stopped:
            node.proc.send_signal(signal.SIGCONT)
        stopped.clear()
        new = wait_for("a leader after the followers run again",
                       lambda: next((n for n in nodes if n.role() == "leader"), None), 20)
        order = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts/client.py"),
             "--venue", ",".join(f"127.0.0.1:{n.entry}" for n in nodes),
             "--account", "2001", "--secret", "demo-2001", "--instrument", "0",
             "--side", "sell", "--price-ticks", "2500", "--qty", "1"],
            capture_output=True, text=True, timeout=30)
        if "OrderAccepted" not in order.stdout:
            raise SystemExit(f"FAIL: no order accepted once healed:\n{order.stdout}")
        print(f"healed: node {new.id} leads and takes orders")
        time.sleep(0.5)
        for node in nodes:
            node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            if node.proc.wait(timeout=30) != 0:
                raise SystemExit(f"FAIL: node {node.id} did not exit 0 on SIGTERM")
        results = [replay(bin_dir, n, work) for n in nodes]
        if len({r[0] for r in results}) != 1 or len({r[1] for r in results}) != 1:
            raise SystemExit(f"FAIL: the nodes' states differ: {[r[:2] for r in results]}")
        print(f"cluster-minority ok last_seq={results[0][1]} digest={results[0][0]}")
    except BaseException:
        for node in nodes:
            print(node.describe(), file=sys.stderr)
        raise
    finally:
        for node in stopped:
            node.proc.send_signal(signal.SIGCONT)
        for node in nodes:
            if node.alive():
                node.proc.kill()


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    parser.add_argument("--rate", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=0,
                        help="seconds of load (default: enough for the kills)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--operations", action="store_true",
                        help="status, transfer, add and remove instead of kills")
    parser.add_argument("--minority", action="store_true",
                        help="a leader cut off from its followers acknowledges nothing")
    parser.add_argument("--behind", action="store_true",
                        help="a follower stopped under load until past its leader's memory "
                             "catches up from the leader's journal, with no failover")
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    if args.operations or args.minority:
        work = tempfile.mkdtemp(prefix="tonnex-cluster-ops.")
        try:
            (operations if args.operations else minority)(bin_dir, work)
        finally:
            if args.keep:
                print(f"kept {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        return 0
    work = tempfile.mkdtemp(prefix="tonnex-cluster.")
    nodes = make_nodes(bin_dir, work, args.nodes)
    peers = ",".join(f"{n.id}@127.0.0.1:{n.raft}" for n in nodes)
    entries = ",".join(f"{n.id}@127.0.0.1:{n.entry}" for n in nodes)
    venues = ",".join(f"127.0.0.1:{n.entry}" for n in nodes)
    try:
        return (behind if args.behind else kills)(args, bin_dir, work, nodes, peers, entries,
                                                   venues)
    except BaseException:
        # A check failed or the script broke: what each node was doing (a
        # CI log has nothing else to go on).
        for node in nodes:
            print(node.describe(), file=sys.stderr)
        raise
    finally:
        for node in nodes:
            if node.alive():
                node.proc.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


def kills(args, bin_dir, work, nodes, peers, entries, venues):
    """Starts the nodes, runs the load test through `args.kills` leader
    kills, and checks what every node holds at the end."""
    seconds = args.seconds or 4 + 2.5 * args.kills
    load = None
    try:
        for node in nodes:
            node.start(peers, entries)
        leader = wait_for("a leader elected",
                          lambda: next((n for n in nodes if n.role() == "leader"), None), 20)
        print(f"cluster ready: node {leader.id} leads")
        # The reference client, given a follower first, is redirected.
        follower = next(n for n in nodes if n is not leader)
        order = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts/client.py"),
             "--venue", f"127.0.0.1:{follower.entry},127.0.0.1:{leader.entry}",
             "--account", "2001", "--secret", "demo-2001", "--instrument", "0",
             "--side", "sell", "--price-ticks", "2500", "--qty", "1"],
            capture_output=True, text=True, timeout=30)
        if ("NotLeader" not in order.stdout or f"127.0.0.1:{leader.entry}" not in order.stdout
                or "OrderAccepted" not in order.stdout):
            raise SystemExit(f"FAIL: the client was not redirected to the leader:\n"
                             f"{order.stdout}{order.stderr}")
        print("a client sent to a follower was redirected to the leader and its order accepted")
        acked_log = os.path.join(work, "acked.log")
        load_out = open(os.path.join(work, "load.out"), "w")
        load = subprocess.Popen(
            [f"{bin_dir}/tonnex-loadtest", "--venue", venues, "--sessions", "4",
             "--rate", str(args.rate), "--duration", str(seconds), "--instruments", "0,1",
             "--acked-log", acked_log, "--out", os.path.join(work, "load.json"), "--quiet"],
            stdout=load_out, stderr=subprocess.STDOUT)
        rng = random.Random()
        # The first kill must find the load test's sessions logged in.
        wait_for("the load test's first acknowledgements",
                 lambda: os.path.exists(acked_log) and os.path.getsize(acked_log) > 0, 20)
        started = time.time()
        failovers = []
        for kill in range(args.kills):
            # A random moment, leaving time for the rest of the kills.
            left = args.kills - kill
            budget = (started + seconds - 1.5) - time.time()
            time.sleep(max(0.3, rng.uniform(0.3, max(0.4, budget / left - 1.0))))
            if load.poll() is not None:
                raise SystemExit("FAIL: the load test ended early:\n"
                                 + open(os.path.join(work, "load.out")).read())
            leader = wait_for("a leader to kill",
                              lambda: next((n for n in nodes if n.alive() and n.role() == "leader"), None), 10)
            killed_at = time.time()
            leader.proc.send_signal(signal.SIGKILL)
            leader.proc.wait()
            new = wait_for("a new leader after the kill",
                           lambda: next((n for n in nodes if n is not leader and n.alive()
                                         and n.role() == "leader"), None), 10)
            elected_ms = int((time.time() - killed_at) * 1000)
            failovers.append(elected_ms)
            print(f"kill n={kill + 1} node={leader.id} at_s={killed_at - started:.2f} "
                  f"new_leader={new.id} leader_after_ms={elected_ms}")
            leader.start(peers, entries)
            wait_for(f"node {leader.id} restarted", lambda: leader.role() is not None, 20)
        load.wait(timeout=seconds + 120)
        load_out.close()
        with open(os.path.join(work, "load.out")) as f:
            load_text = f.read()
        last = load_text.strip().splitlines()[-1] if load_text.strip() else ""
        if load.returncode != 0 or not last.startswith("sent="):
            raise SystemExit(f"FAIL: the load test failed:\n{load_text}")
        seen = len(re.findall(r"^failover ", load_text, re.M))
        first_acks = sorted(int(v) for v in re.findall(r"^failover .*first_ack_ms=(\d+)",
                                                       load_text, re.M))
        print(f"load test: {last}")
        print(f"load test followed {seen} failovers; leader lost to the new leader's first "
              f"acknowledgement, ms: {first_acks}")
        if seen < args.kills:
            raise SystemExit(f"FAIL: {args.kills} kills, the load test followed {seen}")
        import json
        with open(os.path.join(work, "load.json")) as f:
            reported = json.load(f)["failovers"]
        # (The last failover may come too close to the end for an ack.)
        if len(reported) != seen or any(f["first_ack_ms"] <= 0 for f in reported[:-1]):
            raise SystemExit(f"FAIL: the JSON report's failovers: {reported}")
        # Every session resumed on each new leader from the last message it
        # saw: same session id, the stream going on with no gap (a gap or a
        # repeat would be a load-test error, checked below).
        not_resumed = [f for f in reported if not f["resumed"]]
        if not_resumed:
            raise SystemExit(f"FAIL: sessions did not resume after these failovers: {not_resumed}")
        replayed = sum(f["replayed"] for f in reported)
        print(f"every session resumed after every failover; {replayed} messages replayed "
              f"by new leaders")
        errors = int(re.search(r"errors=(\d+)", last).group(1))
        if errors:
            raise SystemExit(f"FAIL: the load test counted {errors} errors:\n{load_text}")
        digest = final_checks(bin_dir, work, nodes, acked_log)
        print(f"cluster-test ok kills={args.kills} acked={count_lines(acked_log)} "
              f"elected_max_ms={max(failovers, default=0)} "
              f"first_ack_median_ms={first_acks[len(first_acks) // 2] if first_acks else 0} "
              f"first_ack_max_ms={max(first_acks, default=0)} digest={digest}")
        return 0
    finally:
        if load is not None and load.poll() is None:
            load.kill()


def behind(args, bin_dir, work, nodes, peers, entries, venues):
    """A follower stopped (SIGSTOP) under the load test until it is 70,000
    entries behind, past the 65,536 its leader keeps in memory, then let
    run: it must catch up from the leader's journal (the leader's
    `tonnex_cluster_commands_read_back` says it read it) within 15 s, with
    no failover and no load-test error, and the kill test's end checks
    hold."""
    import urllib.request
    seconds = args.seconds or 40
    load = None
    try:
        for node in nodes:
            node.start(peers, entries)
        leader = wait_for("a leader elected",
                          lambda: next((n for n in nodes if n.role() == "leader"), None), 20)
        acked_log = os.path.join(work, "acked.log")
        load_out = open(os.path.join(work, "load.out"), "w")
        load = subprocess.Popen(
            [f"{bin_dir}/tonnex-loadtest", "--venue", venues, "--sessions", "4",
             "--rate", str(args.rate), "--duration", str(seconds), "--instruments", "0,1",
             "--acked-log", acked_log, "--quiet"],
            stdout=load_out, stderr=subprocess.STDOUT)
        wait_for("the load test's first acknowledgements",
                 lambda: os.path.exists(acked_log) and os.path.getsize(acked_log) > 0, 20)
        follower = next(n for n in nodes if n is not leader)

        def lag():
            out, code = admin(bin_dir, leader, "cluster", "status")
            match = re.search(rf"peer node={follower.id} matched=\d+ lag=(\d+)", out)
            return int(match.group(1)) if code == 0 and match else None

        follower.proc.send_signal(signal.SIGSTOP)
        stopped_at = time.time()
        try:
            while (lag() or 0) < 70_000:
                if time.time() - stopped_at > seconds - 15:
                    raise SystemExit(f"FAIL: the stopped follower is only {lag()} entries "
                                     f"behind after {time.time() - stopped_at:.0f} s")
                time.sleep(0.5)
        finally:
            follower.proc.send_signal(signal.SIGCONT)
        gap = lag()
        resumed_at = time.time()
        wait_for(f"node {follower.id} to catch up",
                 lambda: (lag() if lag() is not None else 1 << 62) < 100, 15)
        caught_s = time.time() - resumed_at
        metrics = urllib.request.urlopen(
            f"http://127.0.0.1:{leader.others[2]}/metrics", timeout=10).read().decode()
        shown = re.search(r"^tonnex_cluster_commands_read_back (\d+)$", metrics, re.M)
        read_back = int(shown.group(1)) if shown else 0
        if read_back == 0:
            raise SystemExit("FAIL: the leader read nothing back from its journal: the "
                             "follower was not behind its memory")
        print(f"node {follower.id} stopped {resumed_at - stopped_at:.1f} s, {gap} entries "
              f"behind: caught up in {caught_s:.1f} s, the leader read {read_back} commands "
              f"back from its journal")
        load.wait(timeout=seconds + 120)
        load_out.close()
        with open(os.path.join(work, "load.out")) as f:
            load_text = f.read()
        last = load_text.strip().splitlines()[-1] if load_text.strip() else ""
        if load.returncode != 0 or not last.startswith("sent="):
            raise SystemExit(f"FAIL: the load test failed:\n{load_text}")
        print(f"load test: {last}")
        failovers = re.findall(r"^failover .*$", load_text, re.M)
        if failovers:
            raise SystemExit(f"FAIL: the catch-up cost a failover: {failovers}")
        if int(re.search(r"errors=(\d+)", last).group(1)):
            raise SystemExit(f"FAIL: the load test counted errors:\n{load_text}")
        digest = final_checks(bin_dir, work, nodes, acked_log)
        print(f"cluster-behind ok entries_behind={gap} caught_up_s={caught_s:.1f} "
              f"read_back={read_back} acked={count_lines(acked_log)} digest={digest}")
        return 0
    finally:
        if load is not None and load.poll() is None:
            load.kill()


def count_lines(path):
    with open(path) as f:
        return sum(1 for l in f if l.strip())


def final_checks(bin_dir, work, nodes, acked_log):
    """Stops every node, then: every acknowledged order in every node's
    journal that covers it, one digest and last sequence, one fill log
    (with every lot and sub-ledger). Returns the digest."""
    # Let the last restarted node catch up, then stop every node.
    time.sleep(1.0)
    for node in nodes:
        node.proc.send_signal(signal.SIGTERM)
    for node in nodes:
        if node.proc.wait(timeout=30) != 0:
            raise SystemExit(f"FAIL: node {node.id} did not exit 0 on SIGTERM")
    with open(acked_log) as f:
        acked = {int(l) for l in f if l.strip()}
    results = [replay(bin_dir, n, work) for n in nodes]
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
    if len({r[0] for r in results}) != 1 or len({r[1] for r in results}) != 1:
        raise SystemExit("FAIL: the nodes' states differ")
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


if __name__ == "__main__":
    sys.exit(main())
