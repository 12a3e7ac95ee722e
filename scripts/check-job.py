#!/usr/bin/python3
"""Checks a sharded-scan Job manifest (deploy/portscan-shards.yaml) before anyone applies it.

1. Schema: the manifest must validate against deploy/job.schema.json (JSON Schema draft 7,
   with Debian's python3-jsonschema and python3-yaml): a strict subset of Kubernetes' batch/v1
   Job, so a misspelt or unknown field is an error. kubeconform and kubeval would check the
   full schema but fetch it from the network and are not packaged in Debian; the subset kept
   here checks offline, and says exactly what our manifests may use.
2. Meaning: an Indexed Job whose containers' command, run by sh for each completion index
   0..completions-1 with a stand-in portscan that prints its arguments, passes
   --shard INDEX+1/completions: every part scanned once, none twice, none missed.

Usage: scripts/check-job.py MANIFEST... (exit 0: all good; 1: a problem, said on stderr)
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import jsonschema
import yaml

SCHEMA = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "job.schema.json"


def problems(manifest_path):
    with open(manifest_path) as file:
        documents = [doc for doc in yaml.safe_load_all(file) if doc is not None]
    if len(documents) != 1:
        yield f"{len(documents)} documents, expected one Job"
        return
    job = documents[0]
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(job), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = "/".join(str(part) for part in error.absolute_path) or "(top)"
        yield f"{where}: {error.message}"
    if errors:
        return
    spec = job["spec"]
    if spec.get("completionMode") != "Indexed":
        yield "spec/completionMode: not Indexed, so pods get no JOB_COMPLETION_INDEX"
        return
    shards = spec.get("completions")
    if not shards:
        yield "spec/completions: an Indexed Job needs it (the N of --shard K/N)"
        return
    for container in spec["template"]["spec"]["containers"]:
        yield from shard_mapping(container, shards)


def shard_mapping(container, shards):
    """Runs the container's command for each index with a portscan that echoes its
    arguments, and checks the --shard each index gets."""
    argv = container.get("command", []) + container.get("args", [])
    if not argv:
        yield f"container {container['name']}: no command"
        return
    with tempfile.TemporaryDirectory() as bin_dir:
        stand_in = pathlib.Path(bin_dir) / "portscan"
        stand_in.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
        stand_in.chmod(0o755)
        for index in range(shards):
            env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "JOB_COMPLETION_INDEX": str(index)}
            env.update({var["name"]: var.get("value", "") for var in container.get("env", [])})
            ran = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10)
            args = ran.stdout.splitlines()
            want = f"{index + 1}/{shards}"
            if ran.returncode != 0:
                yield f"container {container['name']}, index {index}: {ran.stderr.strip()}"
            elif "--shard" not in args or args.index("--shard") + 1 >= len(args):
                yield f"container {container['name']}, index {index}: no --shard in {args}"
            elif args[args.index("--shard") + 1] != want:
                got = args[args.index("--shard") + 1]
                yield f"container {container['name']}, index {index}: --shard {got}, not {want}"


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    failed = False
    for path in sys.argv[1:]:
        for problem in problems(path):
            print(f"check-job: {path}: {problem}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
