/* spw_buffer_observe and spw_event: flush start and end, retry, drop,
   overflow, spill, flush timeout and abandoned, their fields and messages,
   and replacing and removing the observer, also from inside its own
   callback. SPW_EVENT_SPOOL_ERROR needs a failing disk, which C cannot
   inject: the Rust tests (tests/buffer_spool_errors.rs) cover its source and
   src/ffi/event.rs its bridging. */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "tmpdir.h"

enum { MAX_EVENTS = 128, MSG_MAX = 96 };

typedef struct {
  spw_event ev; /* message points nowhere after the call: see msg */
  char msg[MSG_MAX];
} seen_event;

/* What an event callback saw, behind mu (events come from several threads). */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t n;
  seen_event e[MAX_EVENTS];
  spw_buffer *reenter; /* when set, the callback calls spw_buffer_observe on it once */
  int reenter_status;  /* what that call returned */
  char reenter_error[MSG_MAX];
} events;

static void ev_init(events *e) {
  memset(e, 0, sizeof *e);
  CHECK(pthread_mutex_init(&e->mu, NULL) == 0);
  CHECK(pthread_cond_init(&e->cv, NULL) == 0);
  e->reenter_status = -1;
}

static void ev_destroy(events *e) {
  pthread_cond_destroy(&e->cv);
  pthread_mutex_destroy(&e->mu);
}

static void on_event(void *user_data, const spw_event *event) {
  events *e = user_data;
  CHECK(event != NULL && event->message != NULL);
  pthread_mutex_lock(&e->mu);
  CHECK(e->n < MAX_EVENTS);
  seen_event *s = &e->e[e->n++];
  s->ev = *event;
  s->ev.message = NULL;
  snprintf(s->msg, MSG_MAX, "%s", event->message);
  spw_buffer *reenter = e->reenter;
  e->reenter = NULL;
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
  if (reenter != NULL) {
    int st = spw_buffer_observe(reenter, NULL, NULL);
    pthread_mutex_lock(&e->mu);
    e->reenter_status = st;
    snprintf(e->reenter_error, MSG_MAX, "%s", spw_last_error());
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
  }
}

static size_t count_kind(events *e, uint32_t kind) {
  size_t n = 0;
  for (size_t i = 0; i < e->n; i++) n += e->e[i].ev.kind == kind;
  return n;
}

/* Waits (up to 10 s) until `n` events of `kind` came; returns the last of them.
   Call with e->mu held. */
static const seen_event *wait_kind(events *e, uint32_t kind, size_t n) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  while (count_kind(e, kind) < n) {
    if (pthread_cond_timedwait(&e->cv, &e->mu, &until) != 0) {
      fprintf(stderr, "waited for %zu events of kind %u; saw %zu events:\n", n, kind, e->n);
      for (size_t i = 0; i < e->n; i++) fprintf(stderr, "  kind %u items %llu \"%s\"\n", e->e[i].ev.kind, (unsigned long long)e->e[i].ev.items, e->e[i].msg);
      exit(1);
    }
  }
  const seen_event *last = NULL;
  for (size_t i = 0; i < e->n; i++)
    if (e->e[i].ev.kind == kind) last = &e->e[i];
  return last;
}

/* The flush callback: fails while `fail` is set, waits while `hold` is set. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool fail, hold;
  int inside;
  size_t delivered;
} sink;

static void sink_init(sink *s) {
  memset(s, 0, sizeof *s);
  CHECK(pthread_mutex_init(&s->mu, NULL) == 0);
  CHECK(pthread_cond_init(&s->cv, NULL) == 0);
}

static void sink_destroy(sink *s) {
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
}

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  (void)items;
  (void)info;
  sink *s = user_data;
  pthread_mutex_lock(&s->mu);
  s->inside++;
  pthread_cond_broadcast(&s->cv);
  while (s->hold) pthread_cond_wait(&s->cv, &s->mu);
  s->inside--;
  int rc = s->fail ? -1 : 0;
  if (rc == 0) s->delivered += count;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static void set_hold(sink *s, bool hold) {
  pthread_mutex_lock(&s->mu);
  s->hold = hold;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void wait_inside(sink *s) {
  pthread_mutex_lock(&s->mu);
  while (s->inside == 0) pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static spw_buffer *new_buffer(const char *const kv[][2], sink *s) {
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  CHECK_ST(spw_config_set(cfg, "workers", "1"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "partitions", "1"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "flush_interval", "1h"), SPW_OK);
  for (size_t i = 0; kv[i][0] != NULL; i++) CHECK_ST(spw_config_set(cfg, kv[i][0], kv[i][1]), SPW_OK);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, on_flush, s, &buf), SPW_OK);
  spw_config_free(cfg);
  return buf;
}

static void flush_start_and_end_describe_the_call(void) {
  sink s;
  sink_init(&s);
  events e;
  ev_init(&e);
  const char *const kv[][2] = {{"max_size", "100"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &s);
  CHECK_ST(spw_buffer_observe(NULL, on_event, &e), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_observe: buf is NULL");
  CHECK_ST(spw_buffer_observe(buf, on_event, &e), SPW_OK);
  CHECK_NO_ERR();
  for (int i = 0; i < 3; i++) CHECK_ST(spw_buffer_insert(buf, "abcd", 4), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);

  pthread_mutex_lock(&e.mu);
  const seen_event *end = wait_kind(&e, SPW_EVENT_FLUSH_END, 1);
  CHECK(e.n == 2);
  const spw_event *start = &e.e[0].ev;
  CHECK(start->kind == SPW_EVENT_FLUSH_START && start->partition == 0 && start->attempt == 0);
  CHECK(start->reason == SPW_FLUSH_MANUAL && start->items == 3 && start->status == SPW_OK);
  CHECK(strcmp(e.e[0].msg, "") == 0);
  CHECK(end == &e.e[1]);
  CHECK(end->ev.reason == SPW_FLUSH_MANUAL && end->ev.items == 3 && end->ev.attempt == 0);
  CHECK(end->ev.status == SPW_OK && strcmp(end->msg, "") == 0);
  pthread_mutex_unlock(&e.mu);

  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  spw_buffer_free(buf);
  ev_destroy(&e);
  sink_destroy(&s);
}

static void a_failing_callback_gives_end_retry_and_drop(void) {
  sink s;
  sink_init(&s);
  s.fail = true;
  events e;
  ev_init(&e);
  const char *const kv[][2] = {
      {"max_size", "100"}, {"max_retries", "1"}, {"retry_backoff", "1ms"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &s);
  CHECK_ST(spw_buffer_observe(buf, on_event, &e), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "a", 1), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "b", 1), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_ERR_SINK);

  pthread_mutex_lock(&e.mu);
  const seen_event *drop = wait_kind(&e, SPW_EVENT_DROP, 1);
  CHECK(count_kind(&e, SPW_EVENT_FLUSH_START) == 2);
  CHECK(count_kind(&e, SPW_EVENT_FLUSH_END) == 2);
  const seen_event *end = wait_kind(&e, SPW_EVENT_FLUSH_END, 2);
  CHECK(end->ev.status == SPW_ERR_SINK && end->ev.attempt == 1 && end->ev.items == 2);
  CHECK(strcmp(end->msg, "the flush callback returned -1") == 0);
  const seen_event *retry = wait_kind(&e, SPW_EVENT_RETRY, 1);
  CHECK(retry->ev.attempt == 1 && retry->ev.items == 2 && retry->ev.partition == 0);
  CHECK(drop->ev.items == 2 && drop->ev.status == SPW_ERR_SINK);
  CHECK(strcmp(drop->msg, "the callback failed after max_retries") == 0);
  /* The retry comes after the first failure and before the second start. */
  size_t i_retry = (size_t)(retry - e.e), i_drop = (size_t)(drop - e.e);
  CHECK(e.e[i_retry - 1].ev.kind == SPW_EVENT_FLUSH_END);
  CHECK(i_drop > i_retry);
  pthread_mutex_unlock(&e.mu);

  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.dropped == 2 && st.failed_flushes == 2 && st.retries == 1);
  CHECK(st.flush_timeouts == 0 && st.abandoned == 0 && st.dumped == 0 && st.spool_errors == 0);
  spw_buffer_free(buf);
  ev_destroy(&e);
  sink_destroy(&s);
}

static void a_full_partition_gives_overflow_and_drop(void) {
  sink s;
  sink_init(&s);
  events e;
  ev_init(&e);
  const char *const kv[][2] = {
      {"max_size", "2"}, {"capacity", "2"}, {"overflow", "drop_newest"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &s);
  CHECK_ST(spw_buffer_observe(buf, on_event, &e), SPW_OK);
  set_hold(&s, true);
  CHECK_ST(spw_buffer_insert(buf, "a", 1), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "b", 1), SPW_OK); /* a size flush, held in flight */
  wait_inside(&s);
  CHECK_ST(spw_buffer_insert(buf, "c", 1), SPW_ERR_FULL);

  pthread_mutex_lock(&e.mu);
  const seen_event *over = wait_kind(&e, SPW_EVENT_OVERFLOW, 1);
  CHECK(over->ev.status == SPW_ERR_FULL && strcmp(over->msg, "drop_newest") == 0);
  const seen_event *drop = wait_kind(&e, SPW_EVENT_DROP, 1);
  CHECK(drop->ev.items == 1 && drop->ev.status == SPW_ERR_FULL);
  CHECK(strcmp(drop->msg, "overflow drop_newest refused the item") == 0);
  CHECK(over < drop);
  pthread_mutex_unlock(&e.mu);

  set_hold(&s, false);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.inserted == 3 && st.delivered == 2 && st.dropped == 1);
  spw_buffer_free(buf);
  ev_destroy(&e);
  sink_destroy(&s);
}

static void replacing_stops_the_old_function_and_reentry_is_refused(void) {
  sink s;
  sink_init(&s);
  events a, b;
  ev_init(&a);
  ev_init(&b);
  const char *const kv[][2] = {{"max_size", "100"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &s);
  CHECK_ST(spw_buffer_observe(buf, on_event, &a), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "1", 1), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  pthread_mutex_lock(&a.mu);
  wait_kind(&a, SPW_EVENT_FLUSH_END, 1);
  pthread_mutex_unlock(&a.mu);

  /* Once observe returns, a's function is never called again. */
  b.reenter = buf;
  CHECK_ST(spw_buffer_observe(buf, on_event, &b), SPW_OK);
  size_t a_seen = a.n;
  CHECK_ST(spw_buffer_insert(buf, "2", 1), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  pthread_mutex_lock(&b.mu);
  wait_kind(&b, SPW_EVENT_FLUSH_END, 1);
  /* b's first event tried to remove itself from inside: refused. */
  CHECK(b.reenter_status == SPW_ERR_INVALID);
  CHECK(strstr(b.reenter_error, "spw_buffer_observe: called from inside this buffer's own "
                                "event callback") != NULL);
  CHECK(b.n == 2);
  pthread_mutex_unlock(&b.mu);
  CHECK(a.n == a_seen);

  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  /* Observing a closed buffer is allowed (abandoned calls may still return). */
  CHECK_ST(spw_buffer_observe(buf, on_event, &a), SPW_OK);
  spw_buffer_free(buf);
  CHECK(a.n == a_seen);
  ev_destroy(&a);
  ev_destroy(&b);
  sink_destroy(&s);
}

static void a_stuck_callback_gives_flush_timeout_then_abandoned(void) {
  sink s;
  sink_init(&s);
  events e;
  ev_init(&e);
  const char *const kv[][2] = {{"max_size", "1"}, {"flush_timeout", "50ms"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &s);
  CHECK_ST(spw_buffer_observe(buf, on_event, &e), SPW_OK);
  set_hold(&s, true);
  CHECK_ST(spw_buffer_insert(buf, "abc", 3), SPW_OK); /* a size flush, held */
  wait_inside(&s);

  pthread_mutex_lock(&e.mu);
  const seen_event *t = wait_kind(&e, SPW_EVENT_FLUSH_TIMEOUT, 1);
  CHECK(t->ev.partition == 0 && t->ev.attempt == 0 && t->ev.items == 1);
  CHECK(t->ev.reason == SPW_FLUSH_SIZE && t->ev.status == SPW_ERR_TIMEOUT);
  CHECK(t->ev.duration_us >= 50000);
  CHECK(strcmp(t->msg, "the callback ran past flush_timeout and was abandoned") == 0);
  CHECK(count_kind(&e, SPW_EVENT_ABANDONED) == 0);
  pthread_mutex_unlock(&e.mu);

  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.flush_timeouts == 1 && st.abandoned == 1 && st.failed_flushes >= 1);

  set_hold(&s, false); /* the abandoned call returns 0, late */
  pthread_mutex_lock(&e.mu);
  const seen_event *a = wait_kind(&e, SPW_EVENT_ABANDONED, 1);
  CHECK(a->ev.partition == 0 && a->ev.attempt == 0 && a->ev.items == 1);
  CHECK(a->ev.status == SPW_OK && strcmp(a->msg, "") == 0);
  CHECK(a->ev.duration_us >= t->ev.duration_us);
  CHECK(t < a);
  pthread_mutex_unlock(&e.mu);

  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.abandoned == 0 && st.flush_timeouts == 1);
  CHECK(st.inserted == st.delivered + st.dropped + st.dumped + st.buffered + st.in_flight + st.spooled);
  /* At least once: the late return was ignored, and the batch went again. */
  pthread_mutex_lock(&s.mu);
  CHECK(s.delivered >= 1);
  pthread_mutex_unlock(&s.mu);
  spw_buffer_free(buf);
  ev_destroy(&e);
  sink_destroy(&s);
}

static void a_failing_callback_with_spill_gives_spill_events(void) {
  sink s;
  sink_init(&s);
  s.fail = true;
  events e;
  ev_init(&e);
  char dir[TMPDIR_LEN];
  make_dir(dir, "events");
  const char *const kv[][2] = {{"max_size", "100"},     {"overflow", "spill"},
                               {"spool_dir", dir},       {"max_retries", "0"},
                               {"retry_backoff", "1ms"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &s);
  CHECK_ST(spw_buffer_observe(buf, on_event, &e), SPW_OK);
  for (int i = 0; i < 3; i++) CHECK_ST(spw_buffer_insert(buf, "abcd", 4), SPW_OK);
  CHECK_ST(spw_buffer_flush(buf), SPW_OK);

  pthread_mutex_lock(&e.mu);
  const seen_event *sp = wait_kind(&e, SPW_EVENT_SPILL, 1);
  CHECK(sp->ev.partition == 0 && sp->ev.items == 3 && sp->ev.bytes >= 12);
  CHECK(sp->ev.status == SPW_OK);
  CHECK(strcmp(sp->msg, "the callback failed after max_retries") == 0);
  CHECK(count_kind(&e, SPW_EVENT_DROP) == 0);
  pthread_mutex_unlock(&e.mu);

  /* The sink recovers: what was spilled is delivered from the spool. */
  pthread_mutex_lock(&s.mu);
  s.fail = false;
  pthread_mutex_unlock(&s.mu);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.inserted == 3 && st.delivered == 3 && st.dropped == 0 && st.spooled == 0);
  CHECK(st.spool_errors == 0);
  spw_buffer_free(buf);
  remove_dir(dir);
  ev_destroy(&e);
  sink_destroy(&s);
}

int main(void) {
  CHECK(SPW_EVENT_FLUSH_START == 1 && SPW_EVENT_ABANDONED == 9);
  flush_start_and_end_describe_the_call();
  a_failing_callback_gives_end_retry_and_drop();
  a_full_partition_gives_overflow_and_drop();
  replacing_stops_the_old_function_and_reentry_is_refused();
  a_stuck_callback_gives_flush_timeout_then_abandoned();
  a_failing_callback_with_spill_gives_spill_events();
  puts("events: ok");
  return 0;
}
