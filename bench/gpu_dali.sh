#!/usr/bin/env bash
# DALI on a GPU host, from the parts bench/gpu_dali_prepare.sh made (see there for the calls).
#   bash bench/gpu_dali.sh stage N        after the call that carried .gpudali/partN: copies it to
#                                         /tmp/mmcore_dali_parts (outside the checkout, so it stays
#                                         while the machine is warm whatever happens to ignored
#                                         paths there) and says which parts are there
#   bash bench/gpu_dali.sh unpack DIR     joins the three parts (from /tmp/mmcore_dali_parts, else
#                                         .gpudali), checks the sha256, unpacks into DIR/site; exit 0
#                                         and prints DIR/site, else exit 1 with why
set -uo pipefail
cd "$(dirname "$0")/.."
KEEP=${MMCORE_DALI_KEEP:-/tmp/mmcore_dali_parts}  # (tests point it elsewhere)
part_dir() {  # where part $1 is: the kept copy, else the checkout's
  if [[ -f "$KEEP/part$1/MANIFEST" ]]; then echo "$KEEP/part$1"; elif [[ -f ".gpudali/part$1/MANIFEST" ]]; then
    echo ".gpudali/part$1"; fi
}
case "${1:-}" in
  stage)
    n=${2:?part number}
    [[ -f ".gpudali/part$n/MANIFEST" ]] || { echo "part $n was not carried (.gpudali/part$n missing)"; exit 1; }
    mkdir -p "$KEEP" && rm -rf "$KEEP/part$n" && cp -r ".gpudali/part$n" "$KEEP/" || exit 1
    echo "part $n kept in $KEEP; parts here:"
    for i in 1 2 3; do
      d=$(part_dir "$i")
      if [[ -n "$d" ]]; then echo "  part$i: $(cat "$d"/dali.tar.xz.* | wc -c) bytes ($d)"; else echo "  part$i: missing"; fi
    done
    ;;
  unpack)
    OUT=${2:?usage: gpu_dali.sh unpack DIR}
    dirs=()
    for i in 1 2 3; do
      d=$(part_dir "$i")
      [[ -n "$d" ]] || { echo "DALI part $i not here (carry .gpudali/part1..3 with gpu_dali.sh stage first)"; exit 1; }
      dirs+=("$d")
    done
    want=$(awk '$1 == "sha256" {print $2}' "${dirs[0]}/MANIFEST")
    rm -rf "$OUT" && mkdir -p "$OUT/site"
    got=$(cat "${dirs[0]}"/dali.tar.xz.* "${dirs[1]}"/dali.tar.xz.* "${dirs[2]}"/dali.tar.xz.* |
      tee "$OUT/dali.tar.xz" | sha256sum | cut -d' ' -f1)
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
