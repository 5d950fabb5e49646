// CPU variant selection: the one dispatch point.
//
// Contract: cpuid is read once (thread-safe static initialisation) into a read-only table;
// MMCORE_FORCE_BACKEND=ref|avx2|avx512 overrides the choice. Forcing a variant the CPU or the
// build lacks falls back to the best available one below it and records why in
// backend_note(). Kernels call active_backend() once per call, never per element.
#pragma once

namespace mmcore {

enum class Backend : int { kRef = 0, kAvx2 = 1, kAvx512 = 2 };

/// The variant kernels use, fixed for the life of the process.
Backend active_backend();
/// "ref", "avx2", "avx512".
const char* backend_name(Backend b);
/// Whether the variant was compiled into this build.
bool backend_compiled(Backend b);
/// Whether this CPU (and OS) can run the variant.
bool backend_supported(Backend b);
/// Why the active backend differs from the requested one; "" when it does not.
const char* backend_note();
/// Whether this CPU (and OS) runs AVX-VNNI: vpdpbusd on 256-bit vectors, VEX-encoded (Intel cores
/// since Alder Lake, Sierra Forest, AMD Zen 5). The avx2 variant's int8 / int4 scoring uses it.
bool cpu_has_avx_vnni();
/// Whether this CPU has AMX-INT8 tiles and the OS enables their state (the process must still be
/// granted them: quant_amx.cpp asks once). The avx512 variant scores int8 / int4 batches on them.
bool cpu_has_amx_int8();

}  // namespace mmcore
