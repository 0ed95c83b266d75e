#!/usr/bin/env python3
"""Drives a running console for bench/portal: the admin makes a team (grants pay-* in the given clusters,
enrolment automatic) and a member; the member then enrols a new namespace in every cluster, RUNS times, and
each time the time from sending the request to the labelled namespace being present in the last cluster is
measured. Presence is seen through a watch per cluster (`kubectl get namespaces -l meshdeck.io/team=… -w`,
started before the first request), so a time is the moment the API server told its watchers, not a poll.
Prints one line per run to stderr, and last, on stdout:
  request_to_applied_ms=<median> min_ms= max_ms= runs= clusters=
usage: portal.py URL ADMIN_PASSWORD KUBECONFIG KUBECTL RUNS CONTEXT...
Standard library only."""
import atexit
import http.cookiejar
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

url, password, kubeconfig, kubectl, runs, *contexts = sys.argv[1:]
runs = int(runs)
team = "bench-pay"
member = ("bench-member", "bench-member-password")


def session():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def send(opener, name, data, content_type):
    req = urllib.request.Request(f"{url}/api/{name}", data=data,
                                 headers={"Content-Type": content_type, "Accept": "application/json"})
    try:
        with opener.open(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def call(opener, name, body, ok=(200,)):
    status, answer = send(opener, name, json.dumps(body).encode(), "application/json")
    if status not in ok:
        sys.exit(f"portal.py: {name} answered {status}: {answer}")
    return answer


def form(opener, name, fields, ok=(200,)):
    status, answer = send(opener, name, urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded")
    if status not in ok:
        sys.exit(f"portal.py: {name} answered {status}: {answer}")
    return answer


admin = session()
form(admin, "sign_in", {"username": "admin", "password": password})
outcomes = call(admin, "register_clusters", {
    "kubeconfig": open(kubeconfig).read(),
    "clusters": [{"context": c, "name": c, "network": "", "env": "", "region": "", "allow_insecure": False}
                 for c in contexts],
})
bad = [o for o in outcomes if "Err" in o["result"] and "already" not in json.dumps(o["result"])]
if bad:
    sys.exit(f"portal.py: registration failed: {bad}")
form(admin, "create_user", {"username": member[0], "role": "viewer", "password": member[1]}, ok=(200, 409))
call(admin, "save_team", {"team": {"name": team, "description": "bench", "contact": "", "max_namespaces": 1000,
                                   "max_services": 10, "rules": {"enrol": "auto", "leave": "auto",
                                                                 "share": "approval", "unshare": "auto"}},
                          "create": True}, ok=(200, 409))
form(admin, "set_team_member", {"team": team, "username": member[0], "role": "member"})
for c in contexts:
    form(admin, "set_team_grant", {"team": team, "cluster": c, "patterns[0]": "pay-*"})

# One watch per cluster: when each namespace of the team appeared there.
seen = {}
seen_lock = threading.Condition()
watchers = []


@atexit.register
def stop_watchers():
    for p in watchers:
        p.kill()


def watch(context):
    p = subprocess.Popen([kubectl, "--kubeconfig", kubeconfig, "--context", context, "get", "namespaces",
                          "-l", f"meshdeck.io/team={team}", "--watch", "-o", "name"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watchers.append(p)
    for line in p.stdout:
        name = line.strip().removeprefix("namespace/")
        with seen_lock:
            seen.setdefault((context, name), time.monotonic())
            seen_lock.notify_all()


for c in contexts:
    threading.Thread(target=watch, args=(c,), daemon=True).start()
time.sleep(2)  # the watches list what exists, then follow

user = session()
form(user, "sign_in", {"username": member[0], "password": member[1]})
stamp = f"{os.getpid()}-{int(time.time())}"
times = []
for i in range(runs):
    ns = f"pay-{stamp}-{i}"
    t0 = time.monotonic()
    answer = call(user, "submit_portal_request", {"action": {
        "team": team, "kind": "enrol", "namespace": ns, "clusters": contexts}})
    if answer.get("waits_for"):
        sys.exit(f"portal.py: the request waits: {answer['waits_for']}")
    with seen_lock:
        ok = seen_lock.wait_for(lambda: all((c, ns) in seen for c in contexts), timeout=60)
        if not ok:
            sys.exit(f"portal.py: {ns} not in every cluster after 60 s")
        t1 = max(seen[(c, ns)] for c in contexts)
    ms = (t1 - t0) * 1000
    times.append(ms)
    print(f"bench/portal: run {i + 1}: {ns} in {len(contexts)} clusters after {ms:.1f} ms", file=sys.stderr)

print(f"request_to_applied_ms={statistics.median(times):.1f} min_ms={min(times):.1f} max_ms={max(times):.1f} "
      f"runs={runs} clusters={len(contexts)}")
