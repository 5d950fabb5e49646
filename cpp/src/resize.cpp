// PLACEHOLDER: replaced by the real resize (resize helper). Nearest neighbour only.
#include "mmcore/resize.h"

#include <cstring>

namespace mmcore {

void resize(ConstImageView src, ImageView dst, Filter filter, Backend) {
  (void)filter;
  const int c = dst.channels;
  for (int y = 0; y < dst.height; ++y) {
    const int sy = static_cast<int>((y + 0.5) * src.height / dst.height);
    for (int x = 0; x < dst.width; ++x) {
      const int sx = static_cast<int>((x + 0.5) * src.width / dst.width);
      std::memcpy(dst.row(y) + x * c, src.row(sy) + sx * c, c);
    }
  }
}

void resize(ConstImageView src, ImageView dst, Filter filter) {
  resize(src, dst, filter, active_backend());
}

}  // namespace mmcore
