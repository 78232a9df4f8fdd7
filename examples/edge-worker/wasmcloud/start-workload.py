#!/usr/bin/env python3
"""Start (or stop) the edge worker on a `wash host` (wasmCloud v2) over NATS.

    pip install nats-py
    export AWS_ENDPOINT_URL_S3=... AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
    export S3E_BUCKET=my-bucket S3E_NODE_ID=worker-a IMAGE=localhost:5000/edge-worker:0.2.0
    python3 start-workload.py --host-name host-a workload.json
    python3 start-workload.py --host-name host-a --stop workload.json

`workload.json` names its settings as ${VAR} (required) or ${VAR:-default}; they are filled in
from this process's environment, so the file holds no secrets. The host gets the filled-in
values in the start request: on anything but a local NATS, protect that connection (TLS,
credentials). Sends a request to `runtime.host.<host id>.workload.start` (or `.stop`);
`--host-name` waits for the host's next heartbeat to learn its id (hosts send one about every
15 s), `--host-id` takes the id from the host's log line `Host started host_id=...`.
Prints the host's answer; exits 0 when the workload runs (or was stopped).
"""

import argparse
import asyncio
import json
import os
import re
import sys
import time

try:
    import nats
except ImportError:
    sys.exit("start-workload.py: needs nats-py (pip install nats-py)")

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def fill(value, missing):
    """Every ${VAR} and ${VAR:-default} in the strings of `value`, from the environment."""
    if isinstance(value, str):

        def one(m):
            name, default = m.group(1), m.group(2)
            got = os.environ.get(name)
            if got is None:
                if default is None:
                    missing.add(name)
                    return ""
                return default
            return got

        return VAR.sub(one, value)
    if isinstance(value, list):
        return [fill(v, missing) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, missing) for k, v in value.items()}
    return value


async def host_id_of(nc, name, wait_s):
    """The id of the host named `name`, from its heartbeat."""
    found = asyncio.get_running_loop().create_future()

    async def heartbeat(msg):
        try:
            beat = json.loads(msg.data)
        except ValueError:
            return
        if beat.get("hostname") == name and not found.done():
            found.set_result(beat.get("id"))

    sub = await nc.subscribe("runtime.operator.heartbeat.*", cb=heartbeat)
    try:
        return await asyncio.wait_for(found, wait_s)
    except asyncio.TimeoutError:
        sys.exit(f"start-workload.py: no heartbeat from a host named {name!r} within {wait_s} s")
    finally:
        await sub.unsubscribe()


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload", help="workload description (JSON, with ${VAR} placeholders)")
    p.add_argument("--nats", default="nats://127.0.0.1:4222", help="the hosts' scheduler NATS")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--host-id", help="the host's id (its log: `Host started host_id=...`)")
    who.add_argument("--host-name", help="the host's --host-name (waits for its heartbeat)")
    p.add_argument("--stop", action="store_true", help="stop the workload instead")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for the host")
    args = p.parse_args()

    with open(args.workload) as f:
        description = json.load(f)
    missing = set()
    # Stopping needs only the workload's id.
    request = fill({"workloadId": description["workloadId"]} if args.stop else description, missing)
    if missing:
        sys.exit("start-workload.py: set " + ", ".join(sorted(missing)) + " first")

    started = time.monotonic()
    try:
        nc = await nats.connect(args.nats, connect_timeout=5, max_reconnect_attempts=0)
    except Exception as e:  # nats-py raises several kinds
        sys.exit(f"start-workload.py: cannot reach NATS at {args.nats}: {e}")
    try:
        host = args.host_id or await host_id_of(nc, args.host_name, args.timeout)
        if args.stop:
            subject = f"runtime.host.{host}.workload.stop"
            body = {"workloadId": request["workloadId"]}
        else:
            subject = f"runtime.host.{host}.workload.start"
            body = request
        try:
            reply = await nc.request(subject, json.dumps(body).encode(), timeout=args.timeout)
        except Exception as e:
            # A host that cannot parse the request logs why and does not answer.
            sys.exit(f"start-workload.py: no answer on {subject} within {args.timeout} s ({e}); see the host's log")
    finally:
        await nc.close()
    took = time.monotonic() - started
    try:
        answer = json.loads(reply.data)
    except ValueError:
        sys.exit(f"start-workload.py: the host answered {reply.data!r}")
    status = answer.get("workloadStatus", answer)
    print(json.dumps({"host_id": host, "seconds": round(took, 3), **status}))
    state = status.get("workloadState", "")
    wanted = ("STOPPING", "STOPPED", "COMPLETED") if args.stop else ("RUNNING",)
    sys.exit(0 if state.endswith(wanted) else 1)


asyncio.run(main())
