/* The spill and replay path through C at scale: 100 000 items inserted while
   the callback fails go to the spool (overflow = spill); the buffer closes;
   a new buffer on the same spool_dir delivers every one of them, in order,
   as SPW_FLUSH_REPLAY batches, and the spool ends empty. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "tmpdir.h"

enum { ITEMS = 100000 };

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;  /* signalled on every accepted batch */
  bool fail;
  uint64_t next;      /* the number the next accepted item must carry */
  uint64_t accepted;
  uint64_t failed_calls;
  uint64_t replayed;  /* items that came with SPW_FLUSH_REPLAY */
} sink;

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  sink *s = user_data;
  pthread_mutex_lock(&s->mu);
  if (s->fail) {
    s->failed_calls++;
    pthread_mutex_unlock(&s->mu);
    return 1;
  }
  for (size_t i = 0; i < count; i++) {
    uint64_t v;
    CHECK(items[i].len == sizeof v);
    memcpy(&v, items[i].data, sizeof v);
    if (v != s->next) {
      fprintf(stderr, "item %llu came where %llu was due\n", (unsigned long long)v,
              (unsigned long long)s->next);
      exit(1);
    }
    s->next++;
  }
  s->accepted += count;
  if (info->reason == SPW_FLUSH_REPLAY) s->replayed += count;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static spw_buffer *open_buffer(const char *dir, sink *s) {
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  const char *const kv[][2] = {
      {"workers", "1"},         {"partitions", "1"},   {"max_size", "5000"},
      {"capacity", "20000"},    {"overflow", "spill"}, {"spool_dir", NULL},
      {"max_retries", "0"},     {"flush_interval", "10ms"},
      {"retry_backoff", "1ms"}, {"spool_sync", "batch"}, {NULL, NULL}};
  for (size_t i = 0; kv[i][0] != NULL; i++)
    CHECK_ST(spw_config_set(cfg, kv[i][0], kv[i][1] != NULL ? kv[i][1] : dir), SPW_OK);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, on_flush, s, &buf), SPW_OK);
  spw_config_free(cfg);
  return buf;
}

int main(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "replay");
  sink s;
  memset(&s, 0, sizeof s);
  CHECK(pthread_mutex_init(&s.mu, NULL) == 0);
  CHECK(pthread_cond_init(&s.cv, NULL) == 0);

  /* Run 1: every call fails, so every item ends in the spool. */
  s.fail = true;
  spw_buffer *buf = open_buffer(dir, &s);
  for (uint64_t i = 0; i < ITEMS; i++) CHECK_ST(spw_buffer_insert(buf, &i, sizeof i), SPW_OK);
  spw_status closed = spw_buffer_close(buf, 60000);
  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  if (closed != SPW_OK || st.spooled != ITEMS) {
    fprintf(stderr, "close: %s (%s); inserted %llu delivered %llu dropped %llu spooled %llu\n",
            spw_status_name(closed), spw_last_error(), (unsigned long long)st.inserted,
            (unsigned long long)st.delivered, (unsigned long long)st.dropped,
            (unsigned long long)st.spooled);
    return 1;
  }
  CHECK(st.inserted == ITEMS && st.delivered == 0 && st.dropped == 0);
  CHECK(st.buffered == 0 && st.in_flight == 0);
  spw_buffer_free(buf);
  CHECK(s.accepted == 0 && s.failed_calls > 0);

  /* Run 2: the callback accepts; the spool is replayed, oldest first. The
     replay starts when the buffer opens; wait for all of it (valgrind and
     debug builds make it slow), then close. */
  s.fail = false;
  buf = open_buffer(dir, &s);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 900;
  pthread_mutex_lock(&s.mu);
  while (s.accepted < ITEMS) {
    if (pthread_cond_timedwait(&s.cv, &s.mu, &until) != 0) {
      fprintf(stderr, "only %llu of %d items replayed after 900 s\n",
              (unsigned long long)s.accepted, ITEMS);
      return 1;
    }
  }
  pthread_mutex_unlock(&s.mu);
  CHECK_ST(spw_buffer_close(buf, 60000), SPW_OK);
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  spw_buffer_free(buf);
  CHECK(s.accepted == ITEMS && s.next == ITEMS && s.replayed == ITEMS);
  CHECK(st.delivered == ITEMS && st.spooled == 0 && st.dropped == 0);

  /* Run 3: nothing is left to replay. */
  buf = open_buffer(dir, &s);
  CHECK_ST(spw_buffer_close(buf, 60000), SPW_OK);
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.delivered == 0 && st.spooled == 0);
  spw_buffer_free(buf);
  CHECK(s.accepted == ITEMS);

  pthread_cond_destroy(&s.cv);
  pthread_mutex_destroy(&s.mu);
  remove_dir(dir);
  puts("spill_replay: ok");
  return 0;
}
