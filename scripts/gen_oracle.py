#!/usr/bin/env python3
"""Replays a basic-mix workload (L, M and C only) through the reference book
of ../shared/workloads/gen.py and prints its fills in the FORMAT.md dump
format: the independent oracle for `tonnex-replay generate`.

    python3 scripts/gen_oracle.py PATH/TO/gen.py WORKLOAD > fills.txt
"""
import importlib.util
import sys


def main():
    gen_path, workload = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location("gen", gen_path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    book = gen.Book()
    book.fill_out = []
    with open(workload) as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if parts[0] == "N":
                oid, acct = int(parts[1]), int(parts[2])
                side = gen.BUY if parts[3] == "B" else gen.SELL
                typ, price, qty = parts[4], int(parts[5]), int(parts[6])
                book.taker = oid
                if typ == "M":
                    book.match(side, None, qty, acct)
                elif typ == "L":
                    left = book.match(side, price, qty, acct)
                    if left > 0:
                        book.rest([oid, side, price, left, acct, True, "L"])
                else:
                    sys.exit(f"{workload}:{number}: type {typ} is not in the basic mix")
            elif parts[0] == "C":
                order = book.orders.get(int(parts[1]))
                if order is not None:
                    book.remove(order)
            else:
                sys.exit(f"{workload}:{number}: command {parts[0]} is not in the basic mix")
    sys.stdout.write("".join(line + "\n" for line in book.fill_out))


if __name__ == "__main__":
    main()
