/* spw_engine_free and the threads its engine abandoned (issue 11 section 1):
   once it returns, no callback of its buffers runs and no library thread is
   left, abandoned ones included.

   One worker. The call of "a" blocks until released; at flush_timeout it is
   abandoned and its thread replaced. "b" waits in memory (max_size 2, a long
   flush_interval) until the buffer closes and flushes it with
   SPW_FLUSH_CLOSE on the replacement thread: that call releases "a", so "a"
   is released exactly when a free has begun, without the test guessing when.
   Once released, "a" lingers a little before returning and notes whether
   spw_engine_free had returned by then: the pause only gives a free that
   does not wait the time to return early; with a free that waits, the test
   passes whatever the timing. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

struct state {
  pthread_mutex_t mu;
  pthread_cond_t changed;
  bool a_entered, a_abandoned, released, a_returned;
  bool engine_freed;             /* spw_engine_free has returned */
  bool a_saw_engine_freed;       /* ... before "a" returned: the defect */
  int running;                   /* callbacks running now */
};

/* Threads of this process now. */
static size_t threads(void) {
  DIR *d = opendir("/proc/self/task");
  CHECK(d != NULL);
  size_t n = 0;
  for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
    if (e->d_name[0] != '.') n++;
  }
  CHECK(closedir(d) == 0);
  return n;
}

/* The thread count once it reaches `want`, or after 5 s. A joined thread
   has finished, but the kernel may list it in /proc/self/task for a moment
   after pthread_join returns, and nothing signals its release: so this
   polls, bounded (as tests/engine_threads.rs does). */
static size_t threads_settled_to(size_t want) {
  struct timespec start, now;
  CHECK(clock_gettime(CLOCK_MONOTONIC, &start) == 0);
  for (;;) {
    size_t n = threads();
    CHECK(clock_gettime(CLOCK_MONOTONIC, &now) == 0);
    if (n == want || now.tv_sec - start.tv_sec > 5) return n;
    sched_yield();
  }
}

/* Fails unless the thread count settles back to `before`. */
static void check_threads_back_to(size_t before) {
  size_t after = threads_settled_to(before);
  if (after != before) {
    fprintf(stderr, "threads: %zu before, %zu after spw_engine_free\n", before, after);
    exit(1);
  }
}

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  struct state *s = user_data;
  pthread_mutex_lock(&s->mu);
  s->running++;
  for (size_t i = 0; i < count; i++) {
    CHECK(items[i].len == 1);
    char c = (char)items[i].data[0];
    if (c == 'a' && info->attempt == 0) {
      s->a_entered = true;
      pthread_cond_broadcast(&s->changed);
      while (!s->released) pthread_cond_wait(&s->changed, &s->mu);
      pthread_mutex_unlock(&s->mu);
      struct timespec linger = {0, 200 * 1000 * 1000};
      nanosleep(&linger, NULL);
      pthread_mutex_lock(&s->mu);
      s->a_saw_engine_freed = s->engine_freed;
      s->a_returned = true;
    } else if (c == 'b') {
      CHECK(info->reason == SPW_FLUSH_CLOSE);
      s->released = true;
      pthread_cond_broadcast(&s->changed);
    }
  }
  s->running--;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static void on_event(void *user_data, const spw_event *event) {
  struct state *s = user_data;
  if (event->kind != SPW_EVENT_FLUSH_TIMEOUT) return;
  pthread_mutex_lock(&s->mu);
  s->a_abandoned = true;
  pthread_cond_broadcast(&s->changed);
  pthread_mutex_unlock(&s->mu);
}

static void wait_for(struct state *s, const bool *flag) {
  pthread_mutex_lock(&s->mu);
  while (!*flag) pthread_cond_wait(&s->changed, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static struct state *state_new(void) {
  struct state *s = calloc(1, sizeof *s);
  CHECK(s != NULL);
  CHECK(pthread_mutex_init(&s->mu, NULL) == 0);
  CHECK(pthread_cond_init(&s->changed, NULL) == 0);
  return s;
}

static void state_free(struct state *s) {
  CHECK(pthread_cond_destroy(&s->changed) == 0);
  CHECK(pthread_mutex_destroy(&s->mu) == 0);
  free(s);
}

/* Notes that spw_engine_free has returned; true when by then "a" had
   returned and no callback ran. (Checked by the caller, without the lock,
   so that a failure exits while "a" can still take it.) */
static bool engine_freed(struct state *s) {
  pthread_mutex_lock(&s->mu);
  s->engine_freed = true;
  bool done = s->a_returned && s->running == 0 && !s->a_saw_engine_freed;
  pthread_mutex_unlock(&s->mu);
  return done;
}

/* Makes *e, an engine of one worker, and a buffer on it whose call of "a"
   has been abandoned (its thread replaced), with "b" waiting in memory. */
static spw_buffer *stuck_buffer(spw_engine **e, struct state *s) {
  CHECK_ST(spw_engine_new(1, e), SPW_OK);
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  static const char *const kv[][2] = {
      {"name", "stuck"},        {"partitions", "1"},      {"max_size", "2"},
      {"flush_timeout", "50ms"}, {"flush_interval", "1h"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    CHECK_ST(spw_config_set(cfg, kv[i][0], kv[i][1]), SPW_OK);
  }
  spw_buffer *buf = NULL;
  CHECK_ST(spw_engine_buffer_new(*e, cfg, on_flush, s, &buf), SPW_OK);
  spw_config_free(cfg);
  CHECK_ST(spw_buffer_observe(buf, on_event, s), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "a", 1), SPW_OK);
  CHECK_ST(spw_buffer_flush(buf), SPW_OK);
  wait_for(s, &s->a_entered);
  wait_for(s, &s->a_abandoned);
  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.abandoned == 1 && st.flush_timeouts == 1);
  CHECK_ST(spw_buffer_insert(buf, "b", 1), SPW_OK);
  return buf;
}

/* The order the contract asks for: the buffer, then the engine. */
static void buffer_then_engine(void) {
  size_t before = threads();
  struct state *s = state_new();
  spw_engine *e = NULL;
  spw_buffer *buf = stuck_buffer(&e, s);
  CHECK(threads() == before + 3); /* the timer, the stuck worker, its replacement */
  spw_buffer_free(buf); /* its close releases "a"; it waits for "a" */
  pthread_mutex_lock(&s->mu);
  bool returned = s->a_returned && s->running == 0;
  pthread_mutex_unlock(&s->mu);
  CHECK(returned);
  spw_engine_free(e);
  CHECK(engine_freed(s));
  check_threads_back_to(before);
  state_free(s);
}

/* A buffer may outlive its engine: then the engine's free closes it, and
   the abandoned "a" still runs when that close ends. spw_engine_free waits
   for it and joins its thread. */
static void engine_before_buffer(void) {
  size_t before = threads();
  struct state *s = state_new();
  spw_engine *e = NULL;
  spw_buffer *buf = stuck_buffer(&e, s);
  spw_engine_free(e); /* its stop closes buf, which releases "a" */
  CHECK(engine_freed(s));
  check_threads_back_to(before);
  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.abandoned == 0);
  CHECK_ST(spw_buffer_insert(buf, "c", 1), SPW_ERR_CLOSED);
  spw_buffer_free(buf);
  state_free(s);
}

int main(void) {
  buffer_then_engine();
  engine_before_buffer();
  printf("engine_free_joins: ok\n");
  return 0;
}
