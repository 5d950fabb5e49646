// The one place that picks a CPU variant.
#include "mmcore/backend.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace mmcore {
namespace {

struct CpuTable {
  bool supported[3] = {true, false, false};
  bool avx_vnni = false;
  bool amx_int8 = false;
  Backend active = Backend::kRef;
  const char* note = "";
};

#if defined(__x86_64__)
std::uint64_t read_xcr0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

CpuTable detect() {
  CpuTable t;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return t;
  const bool osxsave = (c & bit_OSXSAVE) != 0;
  const bool popcnt = (c & bit_POPCNT) != 0;
  const bool fma = (c & bit_FMA) != 0;
  if (!osxsave) return t;
  const std::uint64_t xcr0 = read_xcr0();
  const bool ymm = (xcr0 & 0x6) == 0x6;
  const bool zmm = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return t;
  const bool avx2 = (b & bit_AVX2) != 0, bmi2 = (b & bit_BMI2) != 0;
  const bool f = (b & bit_AVX512F) != 0, bw = (b & bit_AVX512BW) != 0;
  const bool vl = (b & bit_AVX512VL) != 0, dq = (b & bit_AVX512DQ) != 0;
  const bool vpopcntdq = (c & bit_AVX512VPOPCNTDQ) != 0, vnni = (c & bit_AVX512VNNI) != 0;
  t.supported[1] = ymm && avx2 && fma && bmi2 && popcnt;
  t.supported[2] = t.supported[1] && zmm && f && bw && vl && dq && vpopcntdq && vnni;
  // AMX-INT8: the tile and int8 instructions (leaf 7 EDX bits 24, 25) and the tile state enabled
  // by the OS (XCR0 bits 17, 18); the process must still ask for it (quant_amx.cpp).
  t.amx_int8 = ((d >> 24) & 1) != 0 && ((d >> 25) & 1) != 0 && (xcr0 & (3u << 17)) == (3u << 17);
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d) != 0) t.avx_vnni = t.supported[1] && ((a >> 4) & 1) != 0;
  return t;
}
#else
// Not x86-64: only the scalar reference is compiled (cmake/mmcore_isa.cmake).
CpuTable detect() {
  return CpuTable{};
}
#endif

// Compiled variants: the build defines MMCORE_HAVE_AVX2 / MMCORE_HAVE_AVX512.
constexpr bool kCompiled[3] = {
    true,
#ifdef MMCORE_HAVE_AVX2
    true,
#else
    false,
#endif
#ifdef MMCORE_HAVE_AVX512
    true,
#else
    false,
#endif
};

bool usable(const CpuTable& t, int i) {
  return kCompiled[i] && t.supported[i];
}

CpuTable build_table() {
  CpuTable t = detect();
  int best = 0;
  for (int i = 2; i >= 0; --i) {
    if (usable(t, i)) {
      best = i;
      break;
    }
  }
  const char* forced = std::getenv("MMCORE_FORCE_BACKEND");
  if (forced != nullptr && forced[0] != '\0') {
    int want = -1;
    if (std::strcmp(forced, "ref") == 0) want = 0;
    if (std::strcmp(forced, "avx2") == 0) want = 1;
    if (std::strcmp(forced, "avx512") == 0) want = 2;
    if (want < 0) {
      t.note = "MMCORE_FORCE_BACKEND is not one of ref, avx2, avx512; ignored";
    } else if (usable(t, want)) {
      best = want;
    } else {
      t.note = kCompiled[want] ? "forced backend not supported by this CPU; using the best below it"
                               : "forced backend not compiled into this build; using the best below it";
      while (want > 0 && !usable(t, want)) --want;
      best = want;
    }
  }
  t.active = static_cast<Backend>(best);
  return t;
}

const CpuTable& table() {
  static const CpuTable t = build_table();
  return t;
}

}  // namespace

Backend active_backend() {
  return table().active;
}

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kRef: return "ref";
    case Backend::kAvx2: return "avx2";
    case Backend::kAvx512: return "avx512";
  }
  return "?";
}

bool backend_compiled(Backend b) {
  return kCompiled[static_cast<int>(b)];
}

bool cpu_has_avx_vnni() {
  return table().avx_vnni;
}

bool cpu_has_amx_int8() {
  return table().amx_int8;
}

bool backend_supported(Backend b) {
  return table().supported[static_cast<int>(b)];
}

const char* backend_note() {
  return table().note;
}

}  // namespace mmcore
