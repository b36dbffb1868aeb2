/* spw_version, spw_status_name, spw_last_error, spw_bytes_free. */
#include <limits.h>

#include "check.h"

static void version(void) {
  const char *v = spw_version();
  CHECK(v != NULL);
  CHECK(strchr(v, '.') != NULL);  /* "major.minor.patch" */
  CHECK(v == spw_version());      /* static */
}

static void status_names(void) {
  static const char *const names[] = {
      "SPW_OK",          "SPW_ERR_NULL",  "SPW_ERR_INVALID", "SPW_ERR_FULL",
      "SPW_ERR_EMPTY",   "SPW_ERR_TIMEOUT", "SPW_ERR_CLOSED", "SPW_ERR_IO",
      "SPW_ERR_CORRUPT", "SPW_ERR_SINK",  "SPW_ERR_PANIC",
  };
  static const spw_status codes[] = {
      SPW_OK,         SPW_ERR_NULL,   SPW_ERR_INVALID, SPW_ERR_FULL,
      SPW_ERR_EMPTY,  SPW_ERR_TIMEOUT, SPW_ERR_CLOSED, SPW_ERR_IO,
      SPW_ERR_CORRUPT, SPW_ERR_SINK,  SPW_ERR_PANIC,
  };
  for (int i = 0; i <= 10; i++) {
    CHECK((int)codes[i] == i);
    CHECK(strcmp(spw_status_name(i), names[i]) == 0);
    CHECK(strcmp(spw_status_name(codes[i]), names[i]) == 0);
  }
  const int unknown[] = {-1, 11, 100, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    CHECK(strcmp(spw_status_name(unknown[i]), "SPW_UNKNOWN") == 0);
  }
}

static void last_error(void) {
  /* Nothing failed yet on this thread. */
  CHECK(spw_last_error() != NULL);
  CHECK(strcmp(spw_last_error(), "") == 0);

  /* A failing call sets it; spw_status_name and spw_version leave it alone. */
  spw_bytes_free(NULL, 3);
  CHECK_ERR("spw_bytes_free", "data", "NULL");
  (void)spw_status_name(SPW_ERR_NULL);
  (void)spw_version();
  CHECK_ERR("spw_bytes_free");
  CHECK(spw_last_error() == spw_last_error()); /* reading does not replace it */

  /* A successful call clears it. */
  spw_bytes_free(NULL, 0);
  CHECK_NO_ERR();
}

int main(void) {
  version();
  status_names();
  last_error();
  return 0;
}
