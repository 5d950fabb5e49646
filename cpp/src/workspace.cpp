#include "mmcore/workspace.h"

#include <cstring>

namespace mmcore {

void* Workspace::bytes(Slot slot, std::size_t size) {
  Buffer& b = buffers_[static_cast<int>(slot)];
  if (size > b.size || !b.data) {
    b.data.reset();  // the old block goes first: the peak is the new size, not both
    b.size = 0;
    b.data.reset(new unsigned char[size == 0 ? 1 : size]);
    b.size = size;
  }
  return b.data.get();
}

void Workspace::end_record() {
  for (int i = static_cast<int>(Slot::kCount) - 1; i >= 0; --i) {
    Buffer& b = buffers_[i];
    if (b.size < retain_bytes_) {
      b.data.reset();
      b.size = 0;
    }
  }
}

void Workspace::fill(unsigned char byte) {
  for (Buffer& b : buffers_) {
    if (b.data) std::memset(b.data.get(), byte, b.size);
  }
}

std::size_t Workspace::held_bytes() const {
  std::size_t total = 0;
  for (const Buffer& b : buffers_) total += b.size;
  return total;
}

}  // namespace mmcore
