/* An abandoned callback's batch goes on at once, from a copy (issue 11
   section 1; the C ABI always copies, its items being bytes). The first call
   blocks until main releases it, at the very end. Before that, the next call
   gets the same three items (attempt 1), and a later batch is delivered too;
   spw_buffer_close(0) returns SPW_ERR_TIMEOUT, the call still running, with
   no item undelivered. After the release and spw_buffer_free, the stuck
   call read its original items (valgrind/ASan would see them freed early),
   the first batch arrived exactly twice and the second once. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define MAX_CALLS 8
#define BATCH 3

struct call {
  uint32_t attempt;
  size_t count;
  char items[BATCH][3]; /* "a1" ... "b3", NUL-terminated */
};

struct state {
  pthread_mutex_t mu;
  pthread_cond_t changed;
  struct call calls[MAX_CALLS];
  int ncalls;
  bool released, first_returned;
  struct call first_at_return; /* what the stuck call read after the release */
};

static void copy_items(struct call *c, const spw_item *items, size_t count) {
  c->count = count;
  for (size_t i = 0; i < count && i < BATCH; i++) {
    CHECK(items[i].len == 2);
    memcpy(c->items[i], items[i].data, 2);
    c->items[i][2] = '\0';
  }
}

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  struct state *s = user_data;
  pthread_mutex_lock(&s->mu);
  int n = s->ncalls++;
  CHECK(n < MAX_CALLS);
  s->calls[n].attempt = info->attempt;
  copy_items(&s->calls[n], items, count);
  pthread_cond_broadcast(&s->changed);
  if (n == 0) {
    while (!s->released) pthread_cond_wait(&s->changed, &s->mu);
    /* The copy went on long ago; the original must still be alive. */
    copy_items(&s->first_at_return, items, count);
    s->first_returned = true;
  }
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static void wait_calls(struct state *s, int n) {
  pthread_mutex_lock(&s->mu);
  while (s->ncalls < n) pthread_cond_wait(&s->changed, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static void check_call(const struct call *c, uint32_t attempt, char batch) {
  CHECK(c->attempt == attempt);
  CHECK(c->count == BATCH);
  for (int i = 0; i < BATCH; i++) {
    CHECK(c->items[i][0] == batch);
    CHECK(c->items[i][1] == (char)('1' + i));
  }
}

int main(void) {
  struct state *s = calloc(1, sizeof *s);
  CHECK(s != NULL);
  CHECK(pthread_mutex_init(&s->mu, NULL) == 0);
  CHECK(pthread_cond_init(&s->changed, NULL) == 0);
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  static const char *const kv[][2] = {
      {"max_size", "3"}, {"workers", "1"}, {"flush_timeout", "300ms"}, {"max_retries", "3"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK_ST(spw_config_set(cfg, kv[i][0], kv[i][1]), SPW_OK);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, on_flush, s, &buf), SPW_OK);
  spw_config_free(cfg);

  CHECK_ST(spw_buffer_insert(buf, "a1", 2), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "a2", 2), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "a3", 2), SPW_OK);
  /* Call 0 blocks; at flush_timeout call 1 gets the copy. */
  wait_calls(s, 2);
  CHECK_ST(spw_buffer_insert(buf, "b1", 2), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "b2", 2), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "b3", 2), SPW_OK);
  wait_calls(s, 3);
  /* Counted once each call has returned and been settled. */
  spw_stats st;
  do {
    sched_yield();
    CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  } while (st.delivered < 6);
  CHECK(st.inserted == 6 && st.delivered == 6 && st.in_flight == 0 && st.dropped == 0);
  CHECK(st.flush_timeouts == 1 && st.failed_flushes == 1 && st.retries == 1);
  CHECK(st.abandoned == 1);

  CHECK_ST(spw_buffer_close(buf, 0), SPW_ERR_TIMEOUT);
  CHECK_ERR("0 items were still undelivered", "1 callbacks still running");
  pthread_mutex_lock(&s->mu);
  CHECK(s->ncalls == 3 && !s->first_returned);
  check_call(&s->calls[0], 0, 'a');
  check_call(&s->calls[1], 1, 'a');
  check_call(&s->calls[2], 0, 'b');
  s->released = true;
  pthread_cond_broadcast(&s->changed);
  pthread_mutex_unlock(&s->mu);
  spw_buffer_free(buf); /* waits for the stuck call */

  CHECK(s->first_returned);
  check_call(&s->first_at_return, 0, 'a');
  CHECK(s->ncalls == 3); /* its batch was discarded, not sent a third time */
  CHECK(pthread_cond_destroy(&s->changed) == 0);
  CHECK(pthread_mutex_destroy(&s->mu) == 0);
  free(s);
  printf("abandoned_copy: ok\n");
  return 0;
}
