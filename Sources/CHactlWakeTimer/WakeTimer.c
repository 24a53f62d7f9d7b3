// The calls are inline in include/CHactlWakeTimer.h.
