# scripts/lib.sh — sourced by scripts/e2e and the benches (they set REPO, the repository's root).

# wait_compressed URL: asks the console at URL for each wasm of the build (target/site/pkg: the first part and
# every split part) with brotli. The console compresses its browser files once, at start, and a request for
# one waits for that: after this, no page load measured or tested pays for it. Fails when a request does (or
# takes over 10 minutes: a debug console compresses slowly).
wait_compressed() {
  local f
  for f in "$REPO"/target/site/pkg/*.wasm; do
    curl -fsS -o /dev/null --max-time 600 -H "accept-encoding: br" "$1/pkg/${f##*/}" || return 1
  done
}
