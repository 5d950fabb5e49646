#include "mmcore/status.h"

#include <cstdarg>
#include <cstdio>

namespace mmcore {

void ErrorText::set(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(text, kErrorTextCap, fmt, args);
  va_end(args);
}

}  // namespace mmcore
