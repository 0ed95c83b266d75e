#!/usr/bin/env python3
"""bench/cpu.py — where a machine's CPU went during a bench: which programs (the API servers, etcd, the console,
the simulator, helm, …) used how much, in a window of wall-clock time. Standard library only.

  bench/cpu.py record FILE SECONDS         samples every process's CPU time from /proc every 0.25 s
  bench/cpu.py summary FILE START SECONDS [STEP]
                                           the CPU seconds each program used from START (Unix time, e.g. what
                                           bench/drive.py prints as "job from …") for SECONDS, then per STEP
                                           seconds (default 1); on 2 cores a fully busy machine shows 2 per second

Typical use, next to a bench: `bench/cpu.py record /tmp/cpu.txt 120 & DRIVE_STEPS=1 bench/setup 3`, then
`bench/cpu.py summary /tmp/cpu.txt <job start> <seconds>`. Processes that ended inside the window (helm,
kubectl) count with the last time they were seen; kernel threads are left out."""
import collections
import os
import sys
import time

GROUPS = ("kube-apiserver", "etcd", "meshdeck", "meshsim", "helm", "kube-controller", "kube-scheduler", "kwok",
          "kubectl", "guide_by_hand", "dex", "python3", "node", "chromium")


def record(path, seconds):
    end = time.time() + seconds
    with open(path, "w") as out:
        while time.time() < end:
            now = time.time()
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    stat = open(f"/proc/{pid}/stat").read()
                except OSError:
                    continue
                close = stat.rfind(")")
                comm = stat[stat.find("(") + 1:close].replace(" ", "_")
                fields = stat[close + 2:].split()
                out.write(f"{now:.2f} {comm} {pid} {int(fields[11]) + int(fields[12])}\n")
            time.sleep(0.25)


def group(comm):
    # /proc's comm is cut to 15 characters.
    return next((g for g in GROUPS if comm.startswith(g[:15])), "other")


def summary(path, start, seconds, step):
    ticks = os.sysconf("SC_CLK_TCK")
    samples = collections.defaultdict(dict)
    for line in open(path):
        at, comm, pid, t = line.split()
        samples[float(at)][pid] = (comm, int(t))
    times = sorted(samples)

    def used(a, b):
        inside = [t for t in times if a <= t <= b] or [min(times, key=lambda t: abs(t - a))]
        first, last = samples[inside[0]], {}
        for t in inside:
            last.update(samples[t])
        out = collections.Counter()
        for pid, (comm, t) in last.items():
            if not comm.startswith("kworker"):
                out[group(comm)] += (t - first.get(pid, (comm, 0))[1]) / ticks
        return out

    def line(label, u):
        top = " ".join(f"{k}={v:.2f}" for k, v in u.most_common(7) if v >= 0.005)
        return f"{label} cpu {sum(u.values()):5.2f} s  {top}"

    print(line(f"whole {seconds:.1f} s:", used(start, start + seconds)))
    at = start
    while at < start + seconds - 1e-6:
        print(line(f"{at - start:6.1f} s", used(at, min(at + step, start + seconds))))
        at += step


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "record":
        record(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) >= 5 and sys.argv[1] == "summary":
        summary(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 1.0)
    else:
        sys.exit(__doc__)
