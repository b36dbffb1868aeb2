/* Resident memory of spillway buffers at rest, read from /proc/self/status:
   the process before any buffer, then with BUFFERS buffers (default
   configuration: 2 flusher threads and a timer thread each) idle and empty,
   then after ITEMS items of 100 bytes went through each and were flushed. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spillway.h"

enum { BUFFERS = 10, ITEMS = 10000, ITEM_BYTES = 100 };

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
  }
  if (f != NULL) fclose(f);
  return kib;
}

/* Lets the buffers' threads start and go idle: rest, not a rendezvous. */
static void settle(void) {
  struct timespec ts = {0, 300 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

static int accept(void *user, const spw_item *items, size_t n, const spw_flush_info *info) {
  (void)user;
  (void)items;
  (void)n;
  (void)info;
  return 0;
}

static void ok(spw_status st, const char *what) {
  if (st != SPW_OK) {
    fprintf(stderr, "%s: %s\n", what, spw_last_error());
    exit(1);
  }
}

int main(int argc, char **argv) {
  const char *workers = argc > 1 ? argv[1] : "2";
  spw_config *cfg = spw_config_new();
  ok(spw_config_set(cfg, "workers", workers), "workers");
  settle();
  long before = rss_kib();

  spw_buffer *bufs[BUFFERS];
  for (int i = 0; i < BUFFERS; i++) ok(spw_buffer_new(cfg, accept, NULL, &bufs[i]), "new");
  settle();
  long empty = rss_kib();

  char item[ITEM_BYTES];
  memset(item, 'x', sizeof item);
  for (int i = 0; i < BUFFERS; i++) {
    for (int k = 0; k < ITEMS; k++) ok(spw_buffer_insert(bufs[i], item, sizeof item), "insert");
    ok(spw_buffer_sync_flush(bufs[i], 60000), "sync_flush");
  }
  settle();
  long used = rss_kib();

  printf("workers=%s: process before buffers %ld KiB; per buffer at rest: empty %.0f KiB, "
         "after %d items of %d bytes %.0f KiB\n",
         workers, before, (double)(empty - before) / BUFFERS, ITEMS, ITEM_BYTES,
         (double)(used - before) / BUFFERS);
  for (int i = 0; i < BUFFERS; i++) spw_buffer_free(bufs[i]);
  spw_config_free(cfg);
  return 0;
}
