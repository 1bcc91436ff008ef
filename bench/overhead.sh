#!/usr/bin/env bash
# Throughput cost of per-route allocation tracking on the GIF workload.
# Builds oipd with and without the `track-alloc` feature (release), serves the demo
# GIFs with each, and alternates wrk runs (concurrency 50) between the two so that
# machine noise hits both alike. Prints each run, the medians and their ratio, and
# writes bench/results/overhead.md.
#   usage: bench/overhead.sh [rounds=5] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

echo "building (tracked and untracked release builds)..." >&2
cargo build --release --locked -q
cargo build --release --locked -q --no-default-features --target-dir target/untracked
work=$(mktemp -d)
trap 'pkill -f "oipd-overhead-" 2>/dev/null || true; rm -rf "$work"' EXIT
cp target/release/oipd "$work/oipd-overhead-tracked"
cp target/untracked/release/oipd "$work/oipd-overhead-untracked"

# The demo corpus: six animated GIFs of 0.5-2 MB.
"$work/oipd-overhead-tracked" serve --demo --data-dir "$work/data" --listen 127.0.0.1:3990 >/dev/null 2>&1 &
sleep 2; pkill -f "oipd-overhead-tracked" || true; sleep 1
cat > "$work/gifs.lua" <<'LUA'
local names = {}
for n in io.popen('ls ' .. os.getenv("GIF_DIR")):lines() do names[#names + 1] = n end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/media/fitnessally/" .. names[(i % #names) + 1])
end
LUA
export GIF_DIR="$work/data/media/web/fitnessally"

declare -A results
for r in $(seq 1 "$rounds"); do
  for variant in tracked untracked; do
    "$work/oipd-overhead-$variant" serve --data-dir "$work/data" --listen 127.0.0.1:3990 >/dev/null 2>&1 &
    for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:3990/api/health && break; sleep 0.1; done
    rps=$(wrk -t2 -c50 -d"${secs}s" -s "$work/gifs.lua" http://127.0.0.1:3990/ | awk '/Requests\/sec/ {print $2}')
    echo "round $r/$rounds $variant: $rps req/s" >&2
    results[$variant]="${results[$variant]:-} $rps"
    pkill -f "oipd-overhead-$variant" || true
    sleep 1
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
t=$(echo "${results[tracked]}" | median)
u=$(echo "${results[untracked]}" | median)
ratio=$(awk -v t="$t" -v u="$u" 'BEGIN {printf "%.3f", t/u}')
cost=$(awk -v t="$t" -v u="$u" 'BEGIN {printf "%.1f", (1 - t/u) * 100}')
{
  echo "# Allocation-tracking overhead (GIF workload)"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, \`bench/overhead.sh $rounds $secs\`: wrk -t2 -c50 -d${secs}s over the six demo GIFs, builds alternated."
  echo
  echo "| build | runs (req/s) | median |"
  echo "|---|---|---|"
  echo "| tracked (default) |${results[tracked]} | $t |"
  echo "| untracked (\`--no-default-features\`) |${results[untracked]} | $u |"
  echo
  echo "tracked ÷ untracked = **$ratio** (throughput cost $cost %)."
} | tee bench/results/overhead.md
