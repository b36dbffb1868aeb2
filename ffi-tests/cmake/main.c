/* The C side of the same project: one item through a spw_buffer. */
#include <stdio.h>

#include <spillway.h>

static int count(void *user, const spw_item *items, size_t n, const spw_flush_info *info) {
  (void)items;
  (void)info;
  *(size_t *)user += n;
  return 0;
}

int main(void) {
  spw_config *cfg = spw_config_new();
  spw_buffer *buf = NULL;
  size_t seen = 0;
  if (cfg == NULL || spw_buffer_new(cfg, count, &seen, &buf) != SPW_OK) {
    fprintf(stderr, "spillway: %s\n", spw_last_error());
    return 1;
  }
  spw_config_free(cfg);
  spw_status st = spw_buffer_insert(buf, "x", 1);
  if (st == SPW_OK) st = spw_buffer_close(buf, 5000);
  spw_buffer_free(buf);
  printf("spillway %s: %zu item\n", spw_version(), seen);
  return st == SPW_OK && seen == 1 ? 0 : 1;
}
