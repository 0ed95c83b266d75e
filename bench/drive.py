#!/usr/bin/env python3
"""Drives a running console over HTTP for bench/setup: signs in, registers the given contexts, starts a setup
job (full mesh, LoadBalancer), follows it until it ends, and prints what it measured as key=value pairs:
  seconds      from the start request to the job's success (its last step runs every check to green)
  link_s       from the first link step starting to the verification starting (all links made)
  link_requests_per_cluster   API requests the console sent per cluster during the links (its /metrics)
With DRIVE_PREPARE_BATCH=K the clusters are first set up K at a time without links (jobs of K clusters,
peering: no pairs), and only then is the full-mesh job started and measured: its per-cluster steps find
everything in place (no changes), so the measured job is the links and the checks. Also printed then:
  prepare_s    the batched setup before it
With DRIVE_STEPS=1 the measured job is printed on stderr as it was seen (polled every 0.1 s): when each
cluster's step was first seen running and first seen ended, per step the latest end over the clusters, what the
verification's rounds said, and the job's start in Unix time (for `bench/cpu.py summary`) — where a setup's time
goes.
With DRIVE_VIEW_PAGES=1 the pages that show the mesh are then fetched once each (signed in, rendered by the
server), as a user would look after a setup.
usage: drive.py URL ADMIN_PASSWORD METRICS_TOKEN KUBECONFIG ISTIO_VERSION CONTEXT...
Standard library only."""
import http.cookiejar
import json
import os
import sys
import time
import urllib.error
import urllib.request

url, password, token, kubeconfig, version, *contexts = sys.argv[1:]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def call(name, body):
    req = urllib.request.Request(
        f"{url}/api/{name}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with opener.open(req, timeout=120) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"drive.py: {name} answered {e.code}: {e.read().decode()}")


def form(name, fields):
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(
        f"{url}/api/{name}",
        data=data,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    try:
        with opener.open(req, timeout=120) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"drive.py: {name} answered {e.code}: {e.read().decode()}")


def requests_sent():
    req = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        total = 0
        for line in r.read().decode().splitlines():
            if line.startswith("meshdeck_kube_requests_total{") and 'kind="request"' in line:
                total += int(line.rsplit(" ", 1)[1])
        return total


import urllib.parse  # noqa: E402

form("sign_in", {"username": "admin", "password": password})
kc = open(kubeconfig).read()
outcomes = call("register_clusters", {
    "kubeconfig": kc,
    "clusters": [{"context": c, "name": c, "network": "", "env": "", "region": "", "allow_insecure": False}
                 for c in contexts],
})
bad = [o for o in outcomes if "Err" in o["result"]]
if bad:
    sys.exit(f"drive.py: registration failed: {bad}")

STEPS = os.environ.get("DRIVE_STEPS") == "1"


def timeline(t0, seen):
    """Prints each step as seen (seconds after t0), then per step name the clusters' latest end."""
    rows = sorted(seen.items(), key=lambda kv: (kv[1].get("running", kv[1].get("ended", 0)), kv[0]))
    for (cluster, step), at in rows:
        start, end = at.get("running"), at.get("ended")
        span = f"{start - t0:6.1f}" if start is not None else "     -"
        span += f" {end - t0:6.1f}" if end is not None else "      -"
        took = f"{end - start:5.1f} s" if start is not None and end is not None else "      "
        print(f"drive.py: step {span} {took}  {cluster}/{step} {at.get('state', '')}", file=sys.stderr)
    last = {}
    for (cluster, step), at in seen.items():
        name = step.split(":")[0]
        if "ended" in at:
            last[name] = max(last.get(name, 0), at["ended"] - t0)
    for name, end in sorted(last.items(), key=lambda kv: kv[1]):
        print(f"drive.py: every {name} ended by {end:.1f} s", file=sys.stderr)


def follow(job):
    """Polls a job until it ends; returns its last detail and the link phase's (start, end, requests)."""
    link_start = link_end = None
    req_start = req_end = None
    t0, seen = time.monotonic(), {}
    while True:
        d = form("get_job", {"id": job, "after": "999999999"})
        steps = d["steps"]
        now = time.monotonic()
        for s in steps:
            at = seen.setdefault((s["cluster"], s["step"]), {})
            if s["state"] == "running":
                at.setdefault("running", now)
            elif s["state"] != "pending":
                at.setdefault("ended", now)
                at["state"] = s["state"]
        if link_start is None and any(s["step"].startswith("link:") and s["state"] != "pending" for s in steps):
            link_start, req_start = time.monotonic(), requests_sent()
        if link_end is None and any(s["step"] == "verify" and s["state"] != "pending" for s in steps):
            link_end, req_end = time.monotonic(), requests_sent()
        if d["job"]["state"] != "running":
            break
        time.sleep(0.1 if STEPS else 0.2)
    if STEPS:
        timeline(t0, seen)
        for e in form("get_job", {"id": job, "after": "0"})["events"]:
            if e.get("step") == "verify":
                print(f"drive.py: verify said: {e['message']}", file=sys.stderr)
        print(f"drive.py: job from {time.time() - (time.monotonic() - t0):.2f} (Unix time)", file=sys.stderr)
    if d["job"]["state"] != "succeeded":
        failed = [f'{s["cluster"]}/{s["step"]}: {s["message"]}' for s in d["steps"] if s["state"] == "failed"]
        sys.exit(f"drive.py: job {job} {d['job']['state']}: {failed}")
    link = None
    if link_start is not None and link_end is not None:
        link = (link_end - link_start, req_end - req_start)
        # Wall-clock bounds, to line the phase up with a profile of the machine taken meanwhile.
        now_wall, now_mono = time.time(), time.monotonic()
        print(f"drive.py: link phase from {now_wall - (now_mono - link_start):.2f} "
              f"to {now_wall - (now_mono - link_end):.2f} (Unix time)", file=sys.stderr)
    return link


def setup(clusters, peering):
    return call("start_setup", {"request": {
        "clusters": clusters, "istio_version": version, "eastwest": "load-balancer",
        "peering": peering, "license": {"kind": "key", "key": "meshdeck-bench-license"},
    }})


out = {}
batch = int(os.environ.get("DRIVE_PREPARE_BATCH", "0"))
if batch > 0:
    t0 = time.monotonic()
    for i in range(0, len(contexts), batch):
        follow(setup(contexts[i:i + batch], {"mode": "pairs", "pairs": []}))
    out["prepare_s"] = f"{time.monotonic() - t0:.1f}"

t0 = time.monotonic()
job = setup(contexts, {"mode": "full-mesh"})
link = follow(job)
out["seconds"] = f"{time.monotonic() - t0:.1f}"
if os.environ.get("DRIVE_VIEW_PAGES") == "1":
    # What a user looks at after a setup: every page that shows the mesh, rendered by the server.
    pages = ["/clusters", f"/clusters/{contexts[0]}", "/setup", "/mesh", "/topology", "/checks", "/activity",
             f"/activity/{job}"]
    for path in pages:
        with opener.open(urllib.request.Request(f"{url}{path}", headers={"Accept": "text/html"}), timeout=60) as r:
            if r.status != 200 or b"</html>" not in r.read():
                sys.exit(f"drive.py: {path} answered {r.status} without a whole page")
    out["pages_viewed"] = str(len(pages))
if link is not None:
    out["link_s"] = f"{link[0]:.1f}"
    out["link_requests_per_cluster"] = f"{link[1] / len(contexts):.0f}"
print(" ".join(f"{k}={v}" for k, v in out.items()))
