/* ship_lines: reads lines on stdin and ships them to stdout in batches
   through a spw_buffer; with -c FILE, a checkpoint remembers how many lines
   were shipped, so a second run on the same input ships only the new ones.

     ship_lines [-n BATCH] [-c CHECKPOINT] < input > output

   Each batch is written to stdout as its lines; a summary of each batch goes
   to stderr. Build (see docs/c-and-cpp.md):
     cc ship_lines.c $(pkg-config --cflags --libs --static spillway) -o ship_lines */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spillway.h"


/* What the flush callback needs. Only one partition, so one callback runs at
   a time and the lines arrive in input order: no lock needed. */
typedef struct {
  uint64_t shipped; /* lines written to stdout, counted from the input's start */
  spw_checkpoint *checkpoint; /* NULL without -c */
} shipper;

static const char SOURCE[] = "stdin"; /* the checkpoint's name for our input */

static int64_t now_unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *reason_name(uint32_t reason) {
  switch (reason) {
    case SPW_FLUSH_SIZE: return "size";
    case SPW_FLUSH_TIME: return "time";
    case SPW_FLUSH_MANUAL: return "manual";
    case SPW_FLUSH_CLOSE: return "close";
    case SPW_FLUSH_REPLAY: return "replay";
    default: return "?";
  }
}

/* Writes the batch; a failed write fails the attempt, and spillway retries. */
static int ship(void *user_data, const spw_item *items, size_t count, const spw_flush_info *info) {
  shipper *s = user_data;
  for (size_t i = 0; i < count; i++) {
    if ((items[i].len > 0 && fwrite(items[i].data, 1, items[i].len, stdout) != items[i].len) ||
        putchar('\n') == EOF)
      return 1;
  }
  if (fflush(stdout) != 0) return 1;
  s->shipped += count;
  fprintf(stderr, "batch: %zu lines, %llu bytes (%s)\n", count,
          (unsigned long long)info->batch_bytes, reason_name(info->reason));
  /* Only after the lines are out: a crash re-ships a batch, never skips one. */
  if (s->checkpoint != NULL &&
      spw_checkpoint_persist(s->checkpoint, SOURCE, s->shipped, now_unix_ms()) != SPW_OK)
    fprintf(stderr, "checkpoint: %s\n", spw_last_error());
  return 0;
}

static int fail(const char *what) {
  fprintf(stderr, "ship_lines: %s: %s\n", what, spw_last_error());
  return 1;
}

int main(int argc, char **argv) {
  const char *batch = "100";
  const char *checkpoint_path = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "n:c:")) != -1) {
    switch (opt) {
      case 'n': batch = optarg; break;
      case 'c': checkpoint_path = optarg; break;
      default:
        fprintf(stderr, "usage: ship_lines [-n BATCH] [-c CHECKPOINT] < input\n");
        return 2;
    }
  }

  shipper s = {0};
  uint64_t skip = 0; /* lines an earlier run shipped */
  if (checkpoint_path != NULL) {
    if (spw_checkpoint_open(checkpoint_path, 1000, 1000, &s.checkpoint) != SPW_OK)
      return fail(checkpoint_path);
    int64_t at_ms;
    spw_status st = spw_checkpoint_get(s.checkpoint, SOURCE, &skip, &at_ms);
    if (st != SPW_OK && st != SPW_ERR_EMPTY) return fail("checkpoint");
    s.shipped = skip;
  }

  spw_config *cfg = spw_config_new();
  if (cfg == NULL) return fail("config");
  if (spw_config_set(cfg, "max_size", batch) != SPW_OK) return fail("-n");
  if (spw_config_set(cfg, "flush_interval", "500ms") != SPW_OK ||
      spw_config_set(cfg, "capacity", "10000") != SPW_OK)
    return fail("config");
  spw_buffer *buf = NULL;
  spw_status st = spw_buffer_new(cfg, ship, &s, &buf);
  spw_config_free(cfg);
  if (st != SPW_OK) return fail("buffer");

  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  uint64_t lines_read = 0;
  int rc = 0;
  while ((len = getline(&line, &cap, stdin)) != -1) {
    if (++lines_read <= skip) continue;
    if (len > 0 && line[len - 1] == '\n') len--;
    /* overflow = block: waits while the batch is being written */
    if (spw_buffer_insert(buf, line, (size_t)len) != SPW_OK) {
      rc = fail("insert");
      break;
    }
  }
  free(line);

  if (spw_buffer_close(buf, 30000) != SPW_OK) rc = fail("close");
  spw_buffer_free(buf); /* after this the callback never runs again */
  if (s.checkpoint != NULL) {
    if (spw_checkpoint_shutdown(s.checkpoint) != SPW_OK) rc = fail("checkpoint");
    spw_checkpoint_free(s.checkpoint);
  }
  fprintf(stderr, "shipped %llu lines (%llu skipped as shipped before)\n",
          (unsigned long long)(s.shipped - skip), (unsigned long long)skip);
  return rc;
}
