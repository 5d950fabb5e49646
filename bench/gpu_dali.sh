#!/usr/bin/env bash
# DALI on a GPU host, from the parts bench/gpu_dali_prepare.sh made (see there for the calls).
#   bash bench/gpu_dali.sh stage N        after the call that carried .gpudali/partN: says which parts
#                                         are there (the earlier ones stay while the machine is warm)
#   bash bench/gpu_dali.sh unpack DIR     joins the three parts, checks the sha256, unpacks into
#                                         DIR/site; exit 0 and prints DIR/site, else exit 1 with why
set -uo pipefail
cd "$(dirname "$0")/.."
D=.gpudali
case "${1:-}" in
  stage)
    echo "part ${2:?part number} carried; parts here:"
    for i in 1 2 3; do
      f=$(ls "$D/part$i"/dali.tar.xz.* 2>/dev/null | head -1)
      if [[ -n "$f" ]]; then echo "  part$i: $(stat -c %s "$f") bytes"; else echo "  part$i: missing"; fi
    done
    ;;
  unpack)
    OUT=${2:?usage: gpu_dali.sh unpack DIR}
    for i in 1 2 3; do
      [[ -f "$D/part$i/MANIFEST" ]] || { echo "DALI part $i not here (carry .gpudali/part1..3 first)"; exit 1; }
    done
    want=$(awk '$1 == "sha256" {print $2}' "$D/part1/MANIFEST")
    rm -rf "$OUT" && mkdir -p "$OUT/site"
    got=$(cat "$D"/part1/dali.tar.xz.* "$D"/part2/dali.tar.xz.* "$D"/part3/dali.tar.xz.* | tee "$OUT/dali.tar.xz" |
      sha256sum | cut -d' ' -f1)
    [[ "$got" == "$want" ]] || { echo "DALI parts do not join to the packed archive (sha256 $got, want $want)"; exit 1; }
    xz -dc "$OUT/dali.tar.xz" | tar -xf - -C "$OUT/site" || { echo "unpacking DALI failed"; exit 1; }
    rm -f "$OUT/dali.tar.xz"
    echo "$OUT/site"
    ;;
  *)
    echo "usage: bash bench/gpu_dali.sh stage N | unpack DIR" >&2
    exit 2
    ;;
esac
