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
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_nodes import (  # noqa: E402
    Load, admin, client_order, count_lines, field, final_checks, make_nodes, metrics, read_for,
    same_state, stop_all, wait_for)


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
        for node in founders:
            text = metrics(node)
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
        stop_all([third])
        founder_entries = ",".join(f"{n.id}@127.0.0.1:{n.entry}" for n in founders)
        third.start(peers, founder_entries)
        wait_for(f"node {third.id} restarted", lambda: third.role() is not None, 20)
        order = client_order([f"127.0.0.1:{third.entry}"])
        if (f"'order_entry': '127.0.0.1:{newcomer.entry}'" not in order
                or "OrderAccepted" not in order):
            raise SystemExit(f"FAIL: node {third.id}, restarted with the founders' flags, did "
                             f"not redirect to node 4:\n{order}")

        def third_caught_up():
            out, code = admin(bin_dir, leader, "cluster", "status")
            lag = re.search(rf"peer node={third.id} matched=(\d+) lag=(\d+)", out)
            return code == 0 and lag and int(lag.group(1)) > 0 and lag.group(2) == "0"
        wait_for(f"node {third.id} to catch up with node 4 leading", third_caught_up, 20)
        print(f"node {third.id}, restarted with the founders' --peers, learnt node 4 from its "
              f"hello: caught up, and redirects clients to it")
        # The reconfigured cluster takes an order (through any node).
        order = client_order([f"127.0.0.1:{n.entry}" for n in nodes if n is not old])
        if "OrderAccepted" not in order:
            raise SystemExit(f"FAIL: no order accepted after the changes:\n{order}")
        time.sleep(0.5)
        stop_all(nodes)
        results = same_state(bin_dir, work, [n for n in nodes if n is not old])
        print(f"cluster-ops ok voters={remaining} last_seq={results[0][1]} digest={results[0][0]}")
    finally:
        for node in nodes:
            if node.alive():
                node.proc.kill()


def minority(bin_dir, work):
    """A leader cut off from both followers (stopped with SIGSTOP: they
    neither answer nor time out) takes an order it cannot acknowledge:
    nothing sequenced comes back for it, check quorum makes the leader step
    down, and once the followers run again the cluster has a leader that
    takes orders, and the three nodes end in one state."""
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
        order = client_order([f"127.0.0.1:{n.entry}" for n in nodes])
        if "OrderAccepted" not in order:
            raise SystemExit(f"FAIL: no order accepted once healed:\n{order}")
        print(f"healed: node {new.id} leads and takes orders")
        time.sleep(0.5)
        stop_all(nodes)
        results = same_state(bin_dir, work, nodes)
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
        order = client_order([f"127.0.0.1:{follower.entry}", f"127.0.0.1:{leader.entry}"])
        if ("NotLeader" not in order or f"127.0.0.1:{leader.entry}" not in order
                or "OrderAccepted" not in order):
            raise SystemExit(f"FAIL: the client was not redirected to the leader:\n"
                             f"{order}")
        print("a client sent to a follower was redirected to the leader and its order accepted")
        # The first kill must find the load test's sessions logged in (Load
        # waits for its first acknowledgements).
        load = Load(bin_dir, work, venues, args.rate, seconds)
        rng = random.Random()
        started = time.time()
        failovers = []
        for kill in range(args.kills):
            # A random moment, leaving time for the rest of the kills.
            left = args.kills - kill
            budget = (started + seconds - 1.5) - time.time()
            time.sleep(max(0.3, rng.uniform(0.3, max(0.4, budget / left - 1.0))))
            if not load.running():
                raise SystemExit(f"FAIL: the load test ended early:\n{load.text()}")
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
        load_text, _ = load.finish()
        seen = len(re.findall(r"^failover ", load_text, re.M))
        first_acks = sorted(int(v) for v in re.findall(r"^failover .*first_ack_ms=(\d+)",
                                                       load_text, re.M))
        print(f"load test followed {seen} failovers; leader lost to the new leader's first "
              f"acknowledgement, ms: {first_acks}")
        if seen < args.kills:
            raise SystemExit(f"FAIL: {args.kills} kills, the load test followed {seen}")
        import json
        with open(load.json_path) as f:
            reported = json.load(f)["failovers"]
        # (The last failover may come too close to the end for an ack.)
        if len(reported) != seen or any(f["first_ack_ms"] <= 0 for f in reported[:-1]):
            raise SystemExit(f"FAIL: the JSON report's failovers: {reported}")
        # Every session resumed on each new leader from the last message it
        # saw: same session id, the stream going on with no gap (a gap or a
        # repeat would be a load-test error, checked by `finish`).
        not_resumed = [f for f in reported if not f["resumed"]]
        if not_resumed:
            raise SystemExit(f"FAIL: sessions did not resume after these failovers: {not_resumed}")
        replayed = sum(f["replayed"] for f in reported)
        print(f"every session resumed after every failover; {replayed} messages replayed "
              f"by new leaders")
        digest = final_checks(bin_dir, work, nodes, load.acked_log)
        print(f"cluster-test ok kills={args.kills} acked={count_lines(load.acked_log)} "
              f"elected_max_ms={max(failovers, default=0)} "
              f"first_ack_median_ms={first_acks[len(first_acks) // 2] if first_acks else 0} "
              f"first_ack_max_ms={max(first_acks, default=0)} digest={digest}")
        return 0
    finally:
        if load is not None:
            load.kill()


def behind(args, bin_dir, work, nodes, peers, entries, venues):
    """A follower stopped (SIGSTOP) under the load test until it is 70,000
    entries behind, past the 65,536 its leader keeps in memory, then let
    run: it must catch up from the leader's journal (the leader's
    `tonnex_cluster_commands_read_back` says it read it) within 15 s, with
    no failover and no load-test error, and the kill test's end checks
    hold."""
    seconds = args.seconds or 40
    load = None
    try:
        for node in nodes:
            node.start(peers, entries)
        leader = wait_for("a leader elected",
                          lambda: next((n for n in nodes if n.role() == "leader"), None), 20)
        load = Load(bin_dir, work, venues, args.rate, seconds)
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
        shown = re.search(r"^tonnex_cluster_commands_read_back (\d+)$", metrics(leader), re.M)
        read_back = int(shown.group(1)) if shown else 0
        if read_back == 0:
            raise SystemExit("FAIL: the leader read nothing back from its journal: the "
                             "follower was not behind its memory")
        print(f"node {follower.id} stopped {resumed_at - stopped_at:.1f} s, {gap} entries "
              f"behind: caught up in {caught_s:.1f} s, the leader read {read_back} commands "
              f"back from its journal")
        load_text, _ = load.finish()
        failovers = re.findall(r"^failover .*$", load_text, re.M)
        if failovers:
            raise SystemExit(f"FAIL: the catch-up cost a failover: {failovers}")
        digest = final_checks(bin_dir, work, nodes, load.acked_log)
        print(f"cluster-behind ok entries_behind={gap} caught_up_s={caught_s:.1f} "
              f"read_back={read_back} acked={count_lines(load.acked_log)} digest={digest}")
        return 0
    finally:
        if load is not None:
            load.kill()


if __name__ == "__main__":
    sys.exit(main())
