// What both mmcore_hash operators (CPU: mmcore_hash.cc, GPU: mmcore_hash_gpu.cc) parse from their
// DALI arguments: the kinds and the number of outputs.
#pragma once

#include <string>
#include <vector>

#include "dali/pipeline/data/tensor_list.h"
#include "dali/pipeline/operator/operator.h"
#include "mmcore/hash.h"

namespace mmcore_dali {

inline mmcore::HashKind parse_kind(const std::string& s) {
  static const char* const names[] = {"ahash",        "dhash", "dhash_vertical", "phash",
                                      "phash_simple", "whash", "colorhash",      "pdq"};
  for (int k = 0; k < mmcore::kHashKindCount; ++k) {
    if (s == names[k]) return static_cast<mmcore::HashKind>(k);
  }
  DALI_FAIL("mmcore_hash: unknown hash kind \"" + s +
            "\" (kinds: ahash, dhash, dhash_vertical, phash, phash_simple, whash, colorhash, pdq)");
}

inline std::vector<mmcore::HashKind> parse_kinds(const dali::OpSpec& spec) {
  std::vector<mmcore::HashKind> kinds;
  for (const std::string& s : spec.GetRepeatedArgument<std::string>("kinds")) {
    const mmcore::HashKind k = parse_kind(s);
    for (mmcore::HashKind seen : kinds)
      DALI_ENFORCE(seen != k, "mmcore_hash: kind \"" + s + "\" given twice");
    kinds.push_back(k);
  }
  DALI_ENFORCE(!kinds.empty(), "mmcore_hash: kinds must name at least one hash");
  return kinds;
}

inline bool has_pdq(const std::vector<mmcore::HashKind>& kinds) {
  for (mmcore::HashKind k : kinds) {
    if (k == mmcore::HashKind::kPdq) return true;
  }
  return false;
}

inline int output_count(const dali::OpSpec& spec) {
  const std::vector<mmcore::HashKind> kinds = parse_kinds(spec);
  return static_cast<int>(kinds.size()) + (has_pdq(kinds) ? 1 : 0) + 2;
}

/// The sample dimensions of mmcore_hash's input (2: HW, 3: HWC), after checking it is uint8 images.
template <class Backend>
int image_dims(const dali::TensorList<Backend>& in) {
  DALI_ENFORCE(in.type() == DALI_UINT8, "mmcore_hash: images must be uint8, got " +
                                            std::string(dali::TypeTable::GetTypeInfo(in.type()).name()));
  const int ndim = in.sample_dim();
  DALI_ENFORCE(ndim == 2 || ndim == 3,
               "mmcore_hash: images must be HW or HWC, got " + std::to_string(ndim) + " dimensions");
  // A layout, when the input has one, must say so: a CHW tensor would otherwise be read as HWC
  // (a 3x100x4 one as a 3x100 RGBA image) and hashed wrong with status OK.
  const dali::TensorLayout layout = in.GetLayout();
  DALI_ENFORCE(layout.empty() || layout == (ndim == 3 ? "HWC" : "HW"),
               "mmcore_hash: images must be HW or HWC, got layout " + layout.str() +
                   " (transpose first, e.g. fn.transpose(..., perm=[1, 2, 0]))");
  return ndim;
}

}  // namespace mmcore_dali
