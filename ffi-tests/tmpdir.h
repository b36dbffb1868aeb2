/* Temporary directories for the C tests: made fresh, removed with their
   contents. Needs _XOPEN_SOURCE 700 (for nftw) before the first include. */
#ifndef SPW_TMPDIR_H
#define SPW_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

/* Room for a path made by make_dir. */
enum { TMPDIR_LEN = 48 };

/* A fresh, empty directory /tmp/spillway-ffi-<what>-XXXXXX, written to path. */
static inline void make_dir(char path[TMPDIR_LEN], const char *what) {
  int n = snprintf(path, TMPDIR_LEN, "/tmp/spillway-ffi-%s-XXXXXX", what);
  CHECK(n > 0 && n < TMPDIR_LEN);
  CHECK(mkdtemp(path) != NULL);
}

static inline int tmpdir_remove_entry_(const char *path, const struct stat *st, int flag,
                                       struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Removes the directory and everything in it. */
static inline void remove_dir(const char *path) {
  CHECK(nftw(path, tmpdir_remove_entry_, 8, FTW_DEPTH | FTW_PHYS) == 0);
}

#endif /* SPW_TMPDIR_H */
