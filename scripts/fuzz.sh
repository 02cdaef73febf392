#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 60)
# and prints, per target, the inputs executed and the crashes found.
#
#   scripts/fuzz.sh [SECONDS]       e.g. scripts/fuzz.sh 5 (CI's smoke run)
#   FUZZ_TARGETS="review audit" scripts/fuzz.sh 30
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and
# cargo-fuzz (`cargo install cargo-fuzz --locked`). The corpora start from
# the seeds in tests/data (real kube-apiserver reviews, the scenario
# manifests, the inputs fuzzing found) and examples/, and grow under
# fuzz/corpus/ (not committed). Crashes and hangs (over 10 s for one input)
# land in fuzz/artifacts/<target>/; the exit status is 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
targets="${FUZZ_TARGETS:-review review_structured audit config istio mesh}"
# The build flags of every run (a change rebuilds everything): release
# mode as the server runs.
flags=(-O)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: needs cargo-fuzz on nightly: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

# Seeds: files of at most 100 kB (the 1.4 MB review would slow every
# mutation; the property tests cover it).
seed() {
  local target="$1"
  shift
  local dir="fuzz/corpus/$target"
  mkdir -p "$dir"
  local f
  for f in "$@"; do
    [[ -f "$f" && $(wc -c <"$f") -le 100000 ]] || continue
    cp "$f" "$dir/seed-$(basename "$f")"
  done
}
seed review tests/data/reviews/*.json tests/data/fuzz/review-*
seed audit tests/data/scenario/*.yaml examples/*.yaml tests/data/fuzz/audit-* \
  tests/data/namespaces.json
seed config src/config/default.yaml tests/data/fuzz/config-*
# The istio target reads one kind byte, then the object's JSON: the Istio
# objects of the recorded reviews.
mkdir -p fuzz/corpus/istio
i=0
for kind in PeerAuthentication AuthorizationPolicy RequestAuthentication \
  DestinationRule VirtualService Gateway ServiceEntry Sidecar; do
  for f in tests/data/reviews/*-validate-CREATE-"$kind"-*.json; do
    [[ -f "$f" ]] || continue
    {
      printf "\\x$(printf '%02x' "$i")"
      sed -E 's/.*"object":(\{.*\}),"oldObject".*/\1/' "$f"
    } >"fuzz/corpus/istio/seed-$(basename "$f")"
  done
  i=$((i + 1))
done
mkdir -p fuzz/corpus/review_structured fuzz/corpus/mesh

(cd fuzz && cargo +nightly fuzz build "${flags[@]}" >/dev/null)

printf '%-18s %14s %8s %9s\n' target inputs seconds crashes
total_inputs=0
total_crashes=0
for target in $targets; do
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$artifacts"
  before=$(find "$artifacts" -type f | wc -l)
  log="fuzz/artifacts/$target.log"
  # -timeout: an input that takes 10 s is a hang, reported as a crash.
  (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -max_len=100000 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$target/") >"$log" 2>&1 || true
  inputs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  inputs="${inputs:-0}"
  after=$(find "$artifacts" -type f | wc -l)
  crashes=$((after - before))
  if [[ "$inputs" == 0 && "$crashes" == 0 ]]; then
    echo "fuzz.sh: $target did not run; see $log" >&2
    tail -20 "$log" >&2
    crashes=1
  fi
  printf '%-18s %14s %8s %9s\n' "$target" "$inputs" "$seconds" "$crashes"
  total_inputs=$((total_inputs + inputs))
  total_crashes=$((total_crashes + crashes))
done
printf '%-18s %14s %8s %9s\n' total "$total_inputs" "" "$total_crashes"
if ((total_crashes > 0)); then
  echo "fuzz.sh: crashes in fuzz/artifacts/ (logs beside them); replay one with" >&2
  echo "  (cd fuzz && cargo +nightly fuzz run -O TARGET artifacts/TARGET/crash-...)" >&2
  exit 1
fi
