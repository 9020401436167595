"""Each function at scale against the moto server at MOTO_URL (see bench/scale).

For each function and N: reset the server, seed N resources, scale EC2's buckets by F (the
server's `{"scale": F}`) and the functions' pace (EC2_RATE_LIMITS, their default share of
EC2's figures) by F, give the function a timeout of 900 s / F, and run it as Lambda would
through its work queue (tests/scale_harness.py, shared with tests/test_scale.py). One line per
run: the bucket-limited ideal (N - burst) / rate at the function's pace and at EC2's own
figures, the time taken, both ratios, throttled answers, invocations, peak RSS (over every
sandbox), failures and duplicates, and what went wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from scale_harness import Run, Server, run_create, run_expire, run_replicate  # noqa: E402

FUNCTIONS = ("create-image", "create-snapshot", "replicate", "expire")
LAMBDA_TIMEOUT = 900.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binaries", required=True, help="the folder of the release binaries")
    parser.add_argument("--factor", type=float, default=10, help="F: EC2's buckets and the pace times F, the timeout over F")
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--logs", default=os.devnull, help="the binaries' logs go here")
    parser.add_argument("--json", help="append each run as a JSON line to this file")
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 5000, 10000])
    args = parser.parse_args()
    server = Server(os.environ["MOTO_URL"])
    timeout = LAMBDA_TIMEOUT / args.factor
    print(f"F={args.factor:g}, timeout {timeout:g} s; ideal = (N - burst) / rate of "
          "CreateImage, CreateSnapshot, CopyImage or DeregisterImage", flush=True)
    print(Run.HEADER, flush=True)
    with open(args.logs, "a") as logs:
        for name in args.functions.split(","):
            binary = Path(args.binaries) / name
            for n in args.sizes:
                if name in ("create-image", "create-snapshot"):
                    run = run_create(server, binary, n, args.factor, timeout, logs=logs)
                elif name == "replicate":
                    run = run_replicate(server, binary, n, args.factor, timeout, logs=logs)
                else:
                    run = run_expire(server, binary, n, args.factor, timeout, logs=logs)
                print(run.row(), flush=True)
                if args.json:
                    with open(args.json, "a") as out:
                        out.write(json.dumps({**vars(run), "ratio": run.ratio, "ec2_ratio": run.ec2_ratio}) + "\n")


if __name__ == "__main__":
    main()
