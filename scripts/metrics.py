#!/usr/bin/env python3
"""Parses a Prometheus text exposition (standard input, or the URL given)
with the reference parser (the prometheus_client package) and prints every
sample as one JSON object per line: {"name": ..., "labels": {...}, "value": ...}.
A document the parser refuses exits 1 with its error.

    metrics.py http://127.0.0.1:7004/metrics
    curl -s ADDR/metrics | metrics.py
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    if len(sys.argv) > 1:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
            text = response.read().decode()
    else:
        text = sys.stdin.read()
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                print(json.dumps({"name": sample.name, "labels": sample.labels,
                                  "value": sample.value, "type": family.type}))
    except Exception as error:  # the parser's own errors name the line
        sys.exit(f"metrics.py: not valid Prometheus text: {error}")


if __name__ == "__main__":
    main()
