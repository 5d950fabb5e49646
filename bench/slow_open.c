// A network mount's latency, simulated: an LD_PRELOAD shim that sleeps SLOW_US microseconds in
// every open() / open64() / openat() of a path starting with SLOW_PREFIX (other paths untouched).
// Used for the read-latency figures in docs/jobs.md; it slows Python's os.open and mmcore's native
// reader alike.
//
//   cc -O2 -shared -fPIC -o /tmp/slow_open.so bench/slow_open.c -ldl
//   SLOW_PREFIX=/data/images/ SLOW_US=20000 LD_PRELOAD=/tmp/slow_open.so mmcore run /data/images out/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static void wait_if_slow(const char* path) {
  const char* prefix = getenv("SLOW_PREFIX");
  const char* us = getenv("SLOW_US");
  if (prefix != NULL && us != NULL && path != NULL && strncmp(path, prefix, strlen(prefix)) == 0) {
    usleep((useconds_t)atoi(us));
  }
}

static mode_t mode_of(int flags, va_list ap) { return (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0; }

int open(const char* path, int flags, ...) {
  static int (*real)(const char*, int, ...) = NULL;
  if (real == NULL) real = (int (*)(const char*, int, ...))dlsym(RTLD_NEXT, "open");
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  wait_if_slow(path);
  return real(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  static int (*real)(const char*, int, ...) = NULL;
  if (real == NULL) real = (int (*)(const char*, int, ...))dlsym(RTLD_NEXT, "open64");
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  wait_if_slow(path);
  return real(path, flags, mode);
}

int openat(int dir, const char* path, int flags, ...) {
  static int (*real)(int, const char*, int, ...) = NULL;
  if (real == NULL) real = (int (*)(int, const char*, int, ...))dlsym(RTLD_NEXT, "openat");
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  wait_if_slow(path);
  return real(dir, path, flags, mode);
}
