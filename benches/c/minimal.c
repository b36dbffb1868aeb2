/* The smallest useful spillway program: one buffer, one item, closed.
   Built with -DWITHOUT_SPILLWAY it does the same work without the library
   (the callback is called directly), for the size comparison in footprint.sh. */
#include <stdio.h>
#include <string.h>

#ifndef WITHOUT_SPILLWAY
#include "spillway.h"
#else
typedef struct { const unsigned char *data; size_t len; } spw_item;
typedef struct { unsigned partition; } spw_flush_info;
#endif

static int count(void *user, const spw_item *items, size_t n, const spw_flush_info *info) {
  (void)items;
  (void)info;
  *(size_t *)user += n;
  return 0;
}

int main(void) {
  size_t seen = 0;
  const char *line = "hello";
#ifndef WITHOUT_SPILLWAY
  spw_config *cfg = spw_config_new();
  spw_buffer *buf = NULL;
  if (spw_buffer_new(cfg, count, &seen, &buf) != SPW_OK) return 1;
  spw_config_free(cfg);
  spw_buffer_insert(buf, line, strlen(line));
  spw_buffer_close(buf, 5000);
  spw_buffer_free(buf);
#else
  spw_item item = {(const unsigned char *)line, strlen(line)};
  count(&seen, &item, 1, NULL);
#endif
  printf("%zu\n", seen);
  return seen == 1 ? 0 : 1;
}
