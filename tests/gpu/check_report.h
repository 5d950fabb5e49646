// What the GPU-host check programs (gpu_check.cpp, search_check.cu) share: the markdown report
// that say() prints and keeps, and the value of a command-line flag.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace mmcore_test {

inline std::string& report_text() {
  static std::string text;
  return text;
}

/// Prints a line of the report and keeps it for write_report().
inline void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void say(const char* fmt, ...) {
  char buf[4096];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  std::fputs(buf, stdout);
  std::fflush(stdout);
  report_text() += buf;
}

inline void write_report(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return;
  }
  std::fputs(report_text().c_str(), f);
  std::fclose(f);
}

/// The value after flag argv[*i] (advancing *i); exits with `usage_exit` when it is missing.
inline const char* flag_value(int argc, char** argv, int* i, int usage_exit) {
  if (*i + 1 >= argc) {
    std::fprintf(stderr, "%s needs a value\n", argv[*i]);
    std::exit(usage_exit);
  }
  return argv[++*i];
}

}  // namespace mmcore_test
