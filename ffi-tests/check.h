/* Assertions for the C tests: print where and why, exit 1. */
#ifndef SPW_CHECK_H
#define SPW_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spillway.h"

/* CHECK(cond): fails the test when cond is false. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n  spw_last_error: \"%s\"\n",   \
              __FILE__, __LINE__, #cond, spw_last_error());                    \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* CHECK_ST(call, expected): call returns the status expected. */
#define CHECK_ST(call, expected)                                               \
  do {                                                                         \
    int check_got_ = (int)(call);                                              \
    int check_want_ = (int)(expected);                                         \
    if (check_got_ != check_want_) {                                           \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s\n"                   \
                      "  spw_last_error: \"%s\"\n",                            \
              __FILE__, __LINE__, #call, spw_status_name(check_got_),          \
              spw_status_name(check_want_), spw_last_error());                 \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* CHECK_ERR(...): the thread's last error contains every given substring. */
#define CHECK_ERR(...)                                                         \
  check_err_(__FILE__, __LINE__, (const char *[]){__VA_ARGS__, NULL})

static inline void check_err_(const char *file, int line, const char **parts) {
  const char *msg = spw_last_error();
  if (msg == NULL) {
    fprintf(stderr, "%s:%d: spw_last_error() returned NULL\n", file, line);
    exit(1);
  }
  if (msg[0] == '\0') {
    fprintf(stderr, "%s:%d: spw_last_error() is empty\n", file, line);
    exit(1);
  }
  for (; *parts != NULL; parts++) {
    if (strstr(msg, *parts) == NULL) {
      fprintf(stderr, "%s:%d: spw_last_error() \"%s\" does not mention \"%s\"\n",
              file, line, msg, *parts);
      exit(1);
    }
  }
}

/* CHECK_NO_ERR(): the thread's last call succeeded. */
#define CHECK_NO_ERR() CHECK(spw_last_error() != NULL && spw_last_error()[0] == '\0')

#endif /* SPW_CHECK_H */
