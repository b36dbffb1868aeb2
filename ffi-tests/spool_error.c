/* SPW_EVENT_SPOOL_ERROR from a real disk fault (issue 11 section 3).
   overflow: spill with a callback that always fails sends every batch to
   the partition's spool. Its directory (<spool_dir>/p0) is removed right
   after spw_buffer_new opened it, before the spool wrote anything: creating
   the first segment file then fails with ENOENT, for root too (unlike a
   permission bit), every time. The spool keeps the records it could not
   write in memory; the final flush at close fails the same way, so close
   says they are not durable. */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "tmpdir.h"

enum { MAX_ERRORS = 8, MESSAGE_LEN = 512 };

struct seen {
  pthread_mutex_t mu;
  pthread_cond_t changed;
  size_t errors;
  char messages[MAX_ERRORS][MESSAGE_LEN];
  int32_t statuses[MAX_ERRORS];
  uint32_t partitions[MAX_ERRORS];
  uint64_t spilled;
};

static int always_fails(void *user_data, const spw_item *items, size_t count,
                        const spw_flush_info *info) {
  (void)user_data;
  (void)items;
  (void)count;
  (void)info;
  return 1;
}

static void on_event(void *user_data, const spw_event *event) {
  struct seen *s = user_data;
  pthread_mutex_lock(&s->mu);
  if (event->kind == SPW_EVENT_SPILL) s->spilled += event->items;
  if (event->kind == SPW_EVENT_SPOOL_ERROR) {
    CHECK(s->errors < MAX_ERRORS);
    CHECK(strlen(event->message) < MESSAGE_LEN);
    strcpy(s->messages[s->errors], event->message);
    s->statuses[s->errors] = event->status;
    s->partitions[s->errors] = event->partition;
    s->errors++;
    pthread_cond_broadcast(&s->changed);
  }
  pthread_mutex_unlock(&s->mu);
}

/* Checks spool error `i`: its operation, that it names the segment file
   that could not be created, and why. */
static void check_error(struct seen *s, size_t i, const char *operation, const char *dir) {
  char want[MESSAGE_LEN];
  int n = snprintf(want, sizeof want, "%s: spool I/O error: create %s/p0/0000000000000001.seg: ",
                   operation, dir);
  CHECK(n > 0 && (size_t)n < sizeof want);
  const char *got = s->messages[i];
  if (strncmp(got, want, (size_t)n) != 0 || strstr(got, "No such file or directory") == NULL) {
    fprintf(stderr, "spool error %zu: \"%s\"\n  expected it to start with \"%s\" and say "
                    "\"No such file or directory\"\n", i, got, want);
    exit(1);
  }
  CHECK(s->statuses[i] == SPW_ERR_IO);
  CHECK(s->partitions[i] == 0);
}

int main(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool-error");
  char part[TMPDIR_LEN + 8];
  CHECK(snprintf(part, sizeof part, "%s/p0", dir) < (int)sizeof part);

  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  const char *const kv[][2] = {
      {"spool_dir", dir},    {"overflow", "spill"},     {"partitions", "1"},
      {"max_size", "4"},     {"max_retries", "0"},      {"retry_backoff", "5ms"},
      {"spool_sync", "batch"}, {"flush_interval", "1h"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    CHECK_ST(spw_config_set(cfg, kv[i][0], kv[i][1]), SPW_OK);
  }
  struct seen *s = calloc(1, sizeof *s);
  CHECK(s != NULL);
  CHECK(pthread_mutex_init(&s->mu, NULL) == 0);
  CHECK(pthread_cond_init(&s->changed, NULL) == 0);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, always_fails, NULL, &buf), SPW_OK);
  spw_config_free(cfg);
  CHECK_ST(spw_buffer_observe(buf, on_event, s), SPW_OK);

  /* The spool opened its directory and wrote no segment yet; take the
     directory away. */
  struct stat st_dir;
  CHECK(stat(part, &st_dir) == 0 && S_ISDIR(st_dir.st_mode));
  remove_dir(part);

  /* One batch: the callback fails, the batch goes to the spool, whose
     group commit cannot create its segment. */
  for (int i = 0; i < 4; i++) CHECK_ST(spw_buffer_insert(buf, "item", 4), SPW_OK);
  pthread_mutex_lock(&s->mu);
  while (s->errors == 0) pthread_cond_wait(&s->changed, &s->mu);
  check_error(s, 0, "push", dir);
  CHECK(s->spilled == 4); /* taken, though only into the spool's memory */
  pthread_mutex_unlock(&s->mu);
  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.spool_errors == 1);
  CHECK(st.inserted == 4 && st.dropped == 0 && st.spooled + st.in_flight == 4);

  /* Close: the final flush fails too, so the four records are only in
     memory, and close says so. */
  CHECK_ST(spw_buffer_close(buf, 5000), SPW_ERR_IO);
  CHECK_ERR("4 items", "only in memory", "SPW_EVENT_SPOOL_ERROR");
  pthread_mutex_lock(&s->mu);
  CHECK(s->errors == 2);
  check_error(s, 1, "flush", dir);
  pthread_mutex_unlock(&s->mu);
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.spool_errors == 2);
  CHECK(st.inserted == 4 && st.delivered == 0 && st.dropped == 0);
  CHECK(st.spooled == 4 && st.in_flight == 0 && st.buffered == 0);
  CHECK_ST(spw_buffer_close(buf, 0), SPW_ERR_IO); /* idempotent, same status */
  spw_buffer_free(buf);
  /* Nothing was recreated behind the test's back. */
  CHECK(stat(part, &st_dir) != 0);

  CHECK(pthread_cond_destroy(&s->changed) == 0);
  CHECK(pthread_mutex_destroy(&s->mu) == 0);
  free(s);
  remove_dir(dir);
  printf("spool_error: ok\n");
  return 0;
}
