// Scratch bytes that are fully written before they are read: no zero-fill (a 12 MP RGB image
// would otherwise cost a 36 MB memset per use). From the workspace's slot when there is one (kept
// for the next record), else owned here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "mmcore/workspace.h"

namespace mmcore::detail {

class Scratch {
 public:
  Scratch(Workspace* workspace, Workspace::Slot slot) : workspace_(workspace), slot_(slot) {}
  bool alloc(std::size_t n) {
    if (workspace_ != nullptr) {
      try {
        data_ = workspace_->get<std::uint8_t>(slot_, n);
      } catch (const std::bad_alloc&) {
        data_ = nullptr;
      }
      return data_ != nullptr;
    }
    owned_.reset(new (std::nothrow) std::uint8_t[n == 0 ? 1 : n]);
    data_ = owned_.get();
    return data_ != nullptr;
  }
  std::uint8_t* data() const { return data_; }

 private:
  Workspace* workspace_;
  Workspace::Slot slot_;
  std::unique_ptr<std::uint8_t[]> owned_;
  std::uint8_t* data_ = nullptr;
};

}  // namespace mmcore::detail
