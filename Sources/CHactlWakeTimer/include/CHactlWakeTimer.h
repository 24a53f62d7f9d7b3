#ifndef C_HACTL_WAKE_TIMER_H
#define C_HACTL_WAKE_TIMER_H

// The daemon's own timer descriptor (Linux timerfd), which Swift's Glibc
// module does not export. Elsewhere both calls fail with ENOSYS and the
// daemon falls back to its event loop's scheduled tasks.

#include <errno.h>
#include <stdint.h>

#ifdef __linux__
#include <sys/timerfd.h>
#include <time.h>

// CLOCK_BOOTTIME: the clock behind Swift's ContinuousClock on Linux, which
// the daemon's deadlines are measured on.
static inline int hactl_wake_timer_create(void) {
  return timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
}

// Fires once, `nanoseconds` from now (at least 1: 0 would disarm it);
// a negative value disarms it.
static inline int hactl_wake_timer_arm(int descriptor, int64_t nanoseconds) {
  struct itimerspec spec = {0};
  if (nanoseconds >= 0) {
    if (nanoseconds == 0) nanoseconds = 1;
    spec.it_value.tv_sec = (time_t)(nanoseconds / 1000000000);
    spec.it_value.tv_nsec = (long)(nanoseconds % 1000000000);
  }
  return timerfd_settime(descriptor, 0, &spec, 0);
}
#else
static inline int hactl_wake_timer_create(void) {
  errno = ENOSYS;
  return -1;
}

static inline int hactl_wake_timer_arm(int descriptor, int64_t nanoseconds) {
  (void)descriptor;
  (void)nanoseconds;
  errno = ENOSYS;
  return -1;
}
#endif

#endif
