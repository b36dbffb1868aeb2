/* flush_timeout with a callback that blocks (issue 11 section 1), and calls
   back into its own buffer (issue 13). One worker: the call of "a" blocks
   until main releases it, is abandoned at flush_timeout and its thread
   replaced, so a copy of "a" and then "b" are still delivered meanwhile
   (abandoned_copy.c checks the copy itself). From inside the callback,
   spw_buffer_sync_flush and spw_buffer_close return SPW_ERR_INVALID at once.
   spw_buffer_close(0) returns SPW_ERR_TIMEOUT while "a" still runs;
   spw_buffer_free returns only after it returned, so user_data is freed
   right after it (valgrind/ASan would see a late access). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

struct state {
  pthread_mutex_t mu;
  pthread_cond_t changed;
  bool a_entered, released, a_returned, b_delivered;
  int inside_sync, inside_close; /* statuses seen from inside the callback */
  spw_buffer *buf;
};

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  struct state *s = user_data;
  CHECK(count == 1 && items[0].len == 1);
  char c = (char)items[0].data[0];
  pthread_mutex_lock(&s->mu);
  if (c == 'a' && info->attempt == 0) {
    s->a_entered = true;
    pthread_cond_broadcast(&s->changed);
    while (!s->released) pthread_cond_wait(&s->changed, &s->mu);
    s->a_returned = true;
  } else if (c == 'b') {
    s->inside_sync = spw_buffer_sync_flush(s->buf, 1000);
    s->inside_close = spw_buffer_close(s->buf, 1000);
    s->b_delivered = true;
    pthread_cond_broadcast(&s->changed);
  }
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static void wait_for(struct state *s, const bool *flag) {
  pthread_mutex_lock(&s->mu);
  while (!*flag) pthread_cond_wait(&s->changed, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

int main(void) {
  struct state *s = calloc(1, sizeof *s);
  CHECK(s != NULL);
  CHECK(pthread_mutex_init(&s->mu, NULL) == 0);
  CHECK(pthread_cond_init(&s->changed, NULL) == 0);
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  static const char *const kv[][2] = {
      {"max_size", "1"}, {"workers", "1"}, {"flush_timeout", "50ms"}, {"max_retries", "3"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK_ST(spw_config_set(cfg, kv[i][0], kv[i][1]), SPW_OK);
  CHECK_ST(spw_buffer_new(cfg, on_flush, s, &s->buf), SPW_OK);
  spw_config_free(cfg);

  CHECK_ST(spw_buffer_insert(s->buf, "a", 1), SPW_OK);
  wait_for(s, &s->a_entered);
  /* The only worker is in "a": "b" needs the replacement thread. */
  CHECK_ST(spw_buffer_insert(s->buf, "b", 1), SPW_OK);
  wait_for(s, &s->b_delivered);
  CHECK(s->inside_sync == SPW_ERR_INVALID);
  CHECK(s->inside_close == SPW_ERR_INVALID);
  /* "b" is counted once its call has returned and been settled; before
     it, the copy of the abandoned "a" (attempt 1) was delivered. */
  spw_stats st;
  do {
    sched_yield();
    CHECK_ST(spw_buffer_stats(s->buf, &st), SPW_OK);
  } while (st.delivered < 2);
  CHECK(st.delivered == 2 && st.failed_flushes == 1 && st.in_flight == 0);

  CHECK_ST(spw_buffer_close(s->buf, 0), SPW_ERR_TIMEOUT);
  CHECK_ERR("undelivered");
  pthread_mutex_lock(&s->mu);
  CHECK(!s->a_returned);
  s->released = true;
  pthread_cond_broadcast(&s->changed);
  pthread_mutex_unlock(&s->mu);
  spw_buffer_free(s->buf);
  CHECK(s->a_returned); /* free waited for the callback */
  CHECK(pthread_cond_destroy(&s->changed) == 0);
  CHECK(pthread_mutex_destroy(&s->mu) == 0);
  free(s);
  printf("stuck_callback: ok\n");
  return 0;
}
