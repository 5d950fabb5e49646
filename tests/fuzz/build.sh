#!/usr/bin/env bash
# Builds the libFuzzer harnesses (decode, hash, tar) with ASan + UBSan from the project's cpp/src/*.cpp (no CMake,
# no Python) against the Debian codec libraries, and writes a seed corpus from ../shared/corpus.
#
#   bash tests/fuzz/build.sh            # -> build/fuzz/fuzz_{decode,hash,tar}, build/fuzz/seeds{,_tar}/
#   CXX=clang++-15 bash tests/fuzz/build.sh
#
# Needs clang with the libFuzzer runtime (Debian 12: apt-get install clang libclang-rt-14-dev) and the
# codec -dev packages that scripts/setup.sh installs. See tests/fuzz/README.md for how to run it.
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX="${CXX:-$(command -v clang++ || command -v clang++-14 || true)}"
[ -n "$CXX" ] || { echo "build.sh: no clang++ found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
OUT="${OUT:-build/fuzz}"
CORPUS="${MMCORE_CORPUS:-../shared/corpus}"
mkdir -p "$OUT/obj"
# The codec packages CMake links, read from CMakeLists.txt so that the two never disagree.
PKGS=$(sed -n 's/.*pkg_check_modules(MMCORE_CODECS REQUIRED IMPORTED_TARGET \(.*\))/\1/p' CMakeLists.txt)
[ -n "$PKGS" ] || PKGS="libjpeg libpng libwebp libwebpdemux zlib"
# libavif where the system has it, as CMake's MMCORE_AVIF=AUTO (decode_avif.cpp then decodes AVIF).
AVIF_DEF=()
if pkg-config --exists "libavif >= 0.11"; then PKGS="$PKGS libavif" AVIF_DEF=(-DMMCORE_HAVE_AVIF=1); fi

SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
# -O1 -g: line numbers in reports at a useful speed. The library gets coverage instrumentation
# (fuzzer-no-link); only the harness links the libFuzzer main.
COMMON=(-std=c++17 -O1 -g "${SAN[@]}" -Icpp/include -Icpp/src $(pkg-config --cflags $PKGS))
AVX2=(-mavx2 -mfma -mbmi -mbmi2 -mpopcnt -mf16c)  # the flags cmake/mmcore_isa.cmake gives *_avx2.cpp
AVX512=("${AVX2[@]}" -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vpopcntdq -mavx512vnni)
AMX=("${AVX512[@]}" -mamx-tile -mamx-int8)
AVXVNNI=("${AVX2[@]}" -mavxvnni)

objs=()
defs=()
for src in cpp/src/*.cpp; do
  case "$src" in
    *_amx.cpp) defs+=(-DMMCORE_HAVE_AMX=1) ;;
    *_avx512.cpp) defs+=(-DMMCORE_HAVE_AVX512=1) ;;
    *_avxvnni.cpp) defs+=(-DMMCORE_HAVE_AVXVNNI=1) ;;
    *_avx2.cpp) defs+=(-DMMCORE_HAVE_AVX2=1) ;;
  esac
done
for src in cpp/src/*.cpp; do
  isa=()
  case "$src" in
    *_amx.cpp) isa=("${AMX[@]}") ;;
    *_avx512.cpp) isa=("${AVX512[@]}") ;;
    *_avxvnni.cpp) isa=("${AVXVNNI[@]}") ;;
    *_avx2.cpp) isa=("${AVX2[@]}") ;;
    */decode_avif.cpp) isa=("${AVIF_DEF[@]}") ;;
  esac
  obj="$OUT/obj/$(basename "${src%.cpp}").o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$0" -nt "$obj" ] || [ -n "$(find cpp/include cpp/src -name '*.h' -newer "$obj" -print -quit)" ]; then
    echo "build.sh: $src"
    "$CXX" "${COMMON[@]}" "${defs[@]}" "${isa[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  fi
  objs+=("$obj")
done
for harness in fuzz_decode fuzz_hash fuzz_tar; do
  "$CXX" "${COMMON[@]}" "${defs[@]}" -fsanitize=fuzzer "tests/fuzz/$harness.cpp" "${objs[@]}" \
    $(pkg-config --libs $PKGS) -lpthread -o "$OUT/$harness"
  echo "build.sh: built $OUT/$harness"
done

# Seed corpus: small real files of every kind, each prefixed with an option byte (the harness reads
# its options from the first byte). Deterministic: the same corpus gives the same seeds.
if [ -d "$CORPUS" ]; then
  python3 tests/fuzz/make_seeds.py "$CORPUS" "$OUT/seeds"
else
  echo "build.sh: no corpus at $CORPUS: start from an empty seed folder (set MMCORE_CORPUS)" >&2
  mkdir -p "$OUT/seeds"
fi
python3 tests/fuzz/make_seeds.py - "$OUT/seeds" --tar-out "$OUT/seeds_tar"
