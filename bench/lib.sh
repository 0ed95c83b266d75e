# bench/lib.sh — sourced by the benches.

# wait_compressed URL: asks the console at URL for each wasm of the build (target/site/pkg) with brotli. The
# console compresses its browser files once, at start, and a request for one waits for that: after this, no
# measured run includes it. Fails when a request does.
wait_compressed() {
  local f
  for f in "$REPO"/target/site/pkg/*.wasm; do
    curl -sf -o /dev/null -H "accept-encoding: br" "$1/pkg/${f##*/}" || return 1
  done
}
