# Shared helpers of testenv/up and testenv/down (sourced; expects STATE to be set).
# Every process the test world starts is recorded as $STATE/pids/<name> = "<pid> <start-time>", so that
# `down` stops exactly those processes and never a stranger that reused a pid.

# alive NAME: the recorded process NAME still runs (same pid and same start time).
alive() {
  local f="$STATE/pids/$1" pid st
  [ -f "$f" ] || return 1
  read -r pid st < "$f"
  [ -d "/proc/$pid" ] || return 1
  [ "$(proc_start "$pid")" = "$st" ]
}

# proc_start PID: the process start time in clock ticks since boot (field 22 of /proc/PID/stat).
proc_start() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'
}

# start NAME CMD ARGS...: run CMD in the background, detached, logging to $STATE/logs/NAME.log.
start() {
  local name=$1; shift
  mkdir -p "$STATE/pids" "$STATE/logs"
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 < /dev/null 9>&- &
  local pid=$!
  echo "$pid $(proc_start "$pid")" > "$STATE/pids/$name"
}

# stop NAME: TERM the recorded process, then KILL it after 10 s.
stop() {
  local name=$1 f="$STATE/pids/$1" pid
  if alive "$name"; then
    read -r pid _ < "$f"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

# wait_for SECONDS WHAT CMD...: poll CMD every 0.25 s until it succeeds.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "testenv: timed out after ${limit}s waiting for $what; logs in $STATE/logs" >&2
      return 1
    fi
    sleep 0.25
  done
}

# write_kubeconfig FILE NAME PORT TOKEN
write_kubeconfig() {
  cat > "$1.tmp" <<EOF
apiVersion: v1
kind: Config
current-context: $2
clusters: [{name: $2, cluster: {server: "https://127.0.0.1:$3", certificate-authority: "$PKI/ca.crt"}}]
users: [{name: admin, user: {token: "$4"}}]
contexts: [{name: $2, context: {cluster: $2, user: admin}}]
EOF
  chmod 600 "$1.tmp"; mv "$1.tmp" "$1"
}
