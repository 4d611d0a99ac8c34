/* guard.c - storage for the per-thread re-entry flag (see guard.h). */
#include "guard.h"

__thread int tt_guard_depth __attribute__((tls_model("initial-exec")));
