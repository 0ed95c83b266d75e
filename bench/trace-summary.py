#!/usr/bin/env python3
"""bench/trace-summary.py TRACE.json — where a traced run of end2end/topology-bench.mjs spent the renderer's main
thread: for each phase marked by the page (console.timeStamp 'meshdeck:<phase>:start' … ':frame'), the time of
each kind of work (self time, nested events subtracted), largest first. The kinds are Chromium's trace event
names: FunctionCall / v8.callFunction (script, the wasm included), UpdateLayoutTree (style), Layout, PrePaint,
Paint, ParseHTML, GC (MinorGC, MajorGC, V8.GC_*), …"""
import json
import sys
from collections import defaultdict

events = json.load(open(sys.argv[1]))
events = events["traceEvents"] if isinstance(events, dict) else events
# The renderer's main thread: where the marks are.
marks = [e for e in events if e.get("name") == "TimeStamp"
         and str(e.get("args", {}).get("data", {}).get("message", "")).startswith("meshdeck:")]
if not marks:
    sys.exit("no meshdeck: marks in the trace")
pid, tid = marks[0]["pid"], marks[0]["tid"]
at = {m["args"]["data"]["message"]: m["ts"] for m in marks}
phases = sorted({k.split(":")[1] for k in at})
spans = [e for e in events if e.get("pid") == pid and e.get("tid") == tid and e.get("ph") == "X" and "dur" in e]
spans.sort(key=lambda e: (e["ts"], -e["dur"]))
for phase in phases:
    t0, t1 = at.get(f"meshdeck:{phase}:start"), at.get(f"meshdeck:{phase}:frame")
    if t0 is None or t1 is None:
        continue
    inside = [e for e in spans if e["ts"] + e["dur"] > t0 and e["ts"] < t1]
    self_time = defaultdict(float)
    stack = []
    for e in inside:
        end = e["ts"] + e["dur"]
        while stack and stack[-1][1] <= e["ts"]:
            stack.pop()
        clipped = min(end, t1) - max(e["ts"], t0)
        self_time[e["name"]] += clipped
        if stack:
            self_time[stack[-1][0]] -= clipped
        stack.append((e["name"], end))
    total = (t1 - t0) / 1000
    busy = sum(v for v in self_time.values()) / 1000
    print(f"{phase}: {total:.0f} ms from start to frame, {busy:.0f} ms of it traced on the main thread")
    for name, us in sorted(self_time.items(), key=lambda kv: -kv[1])[:14]:
        if us >= 1000:
            print(f"  {us / 1000:8.1f} ms  {name}")
