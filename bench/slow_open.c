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

typedef int (*open_fn)(const char*, int, ...);

// The real function `name` (looked up once into *real), called after the wait.
static int opened(open_fn* real, const char* name, const char* path, int flags, mode_t mode) {
  if (*real == NULL) *real = (open_fn)dlsym(RTLD_NEXT, name);
  wait_if_slow(path);
  return (*real)(path, flags, mode);
}

// The mode argument, which the caller passes only with O_CREAT.
#define MODE_OF(flags, mode)                           \
  do {                                                 \
    va_list ap;                                        \
    va_start(ap, flags);                               \
    mode = (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0; \
    va_end(ap);                                        \
  } while (0)

int open(const char* path, int flags, ...) {
  static open_fn real = NULL;
  mode_t mode;
  MODE_OF(flags, mode);
  return opened(&real, "open", path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  static open_fn real = NULL;
  mode_t mode;
  MODE_OF(flags, mode);
  return opened(&real, "open64", path, flags, mode);
}

int openat(int dir, const char* path, int flags, ...) {
  static int (*real)(int, const char*, int, ...) = NULL;
  if (real == NULL) real = (int (*)(int, const char*, int, ...))dlsym(RTLD_NEXT, "openat");
  mode_t mode;
  MODE_OF(flags, mode);
  wait_if_slow(path);
  return real(dir, path, flags, mode);
}
