/* spw_buffer_* and spw_producer_*: every function, NULLs, invalid and closed
   paths, overflow policies, retries and give-ups seen through spw_stats and
   spw_flush_info, and the conservation of items. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

enum { MAX_CALLS = 64, MAX_ITEMS = 256, ITEM_MAX = 16 };

/* What the flush callback does and what it saw. Shared with the flusher
   threads, so everything is behind mu. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int fail_first;  /* fail this many calls, then accept */
  bool always_fail;
  bool hold;       /* calls wait inside the callback while set */
  int inside;      /* calls in the callback now */
  size_t calls;
  spw_flush_info info[MAX_CALLS];
  size_t count[MAX_CALLS];
  size_t n_items; /* items of accepted calls, in the order they came */
  char item[MAX_ITEMS][ITEM_MAX];
  size_t len[MAX_ITEMS];
  bool null_data[MAX_ITEMS];
} recorder;

static void rec_init(recorder *r) {
  memset(r, 0, sizeof *r);
  CHECK(pthread_mutex_init(&r->mu, NULL) == 0);
  CHECK(pthread_cond_init(&r->cv, NULL) == 0);
}

static void rec_destroy(recorder *r) {
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
}

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  recorder *r = user_data;
  pthread_mutex_lock(&r->mu);
  r->inside++;
  pthread_cond_broadcast(&r->cv);
  while (r->hold) pthread_cond_wait(&r->cv, &r->mu);
  CHECK(r->calls < MAX_CALLS);
  r->info[r->calls] = *info;
  r->count[r->calls] = count;
  r->calls++;
  uint64_t bytes = 0;
  for (size_t i = 0; i < count; i++) bytes += items[i].len;
  CHECK(bytes == info->batch_bytes);
  int rc = 0;
  if (r->always_fail || r->fail_first > 0) {
    if (r->fail_first > 0) r->fail_first--;
    rc = -7;
  } else {
    for (size_t i = 0; i < count; i++) {
      CHECK(r->n_items < MAX_ITEMS);
      CHECK(items[i].len < ITEM_MAX);
      CHECK((items[i].data == NULL) == (items[i].len == 0));
      size_t k = r->n_items++;
      if (items[i].len > 0) memcpy(r->item[k], items[i].data, items[i].len);
      r->item[k][items[i].len] = '\0';
      r->len[k] = items[i].len;
      r->null_data[k] = items[i].data == NULL;
    }
  }
  r->inside--;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return rc;
}

static void set_hold(recorder *r, bool hold) {
  pthread_mutex_lock(&r->mu);
  r->hold = hold;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Waits until a call is inside the callback (held there). */
static void wait_inside(recorder *r) {
  pthread_mutex_lock(&r->mu);
  while (r->inside == 0) pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

/* Waits (up to 10 s) until the callback has been called `calls` times. */
static void wait_calls(recorder *r, size_t calls) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&r->mu);
  while (r->calls < calls) {
    CHECK(pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0);
  }
  pthread_mutex_unlock(&r->mu);
}

/* Builds a buffer from key/value pairs (a NULL key ends them). */
static spw_buffer *new_buffer(const char *const kv[][2], recorder *r) {
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  CHECK_ST(spw_config_set(cfg, "workers", "1"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "flush_interval", "1h"), SPW_OK);
  for (size_t i = 0; kv[i][0] != NULL; i++) CHECK_ST(spw_config_set(cfg, kv[i][0], kv[i][1]), SPW_OK);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, on_flush, r, &buf), SPW_OK);
  CHECK(buf != NULL);
  spw_config_free(cfg);
  return buf;
}

static spw_stats stats_of(const spw_buffer *buf) {
  spw_stats s;
  memset(&s, 0xAB, sizeof s);
  CHECK_ST(spw_buffer_stats(buf, &s), SPW_OK);
  return s;
}

/* Nothing is moving: every item inserted is accounted for exactly once. */
static spw_stats check_conserved(const spw_buffer *buf) {
  spw_stats s = stats_of(buf);
  CHECK(s.inserted == s.delivered + s.dropped + s.dumped + s.buffered + s.in_flight + s.spooled);
  return s;
}

static void insert_str(spw_buffer *buf, const char *s) {
  CHECK_ST(spw_buffer_insert(buf, s, strlen(s)), SPW_OK);
}

static void nulls_are_refused_and_change_nothing(void) {
  recorder r;
  rec_init(&r);
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  spw_buffer *buf = (spw_buffer *)&r; /* must stay untouched on failure */
  CHECK_ST(spw_buffer_new(NULL, on_flush, &r, &buf), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_new: cfg is NULL");
  CHECK_ST(spw_buffer_new(cfg, NULL, &r, &buf), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_new: on_flush is NULL");
  CHECK(buf == (spw_buffer *)&r);
  CHECK_ST(spw_buffer_new(cfg, on_flush, &r, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_new: out is NULL");
  spw_config_free(cfg);

  size_t n = 99;
  spw_stats s;
  spw_producer *p = NULL;
  spw_item one = {(const uint8_t *)"x", 1};
  CHECK_ST(spw_buffer_insert(NULL, "x", 1), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_insert: buf is NULL");
  CHECK_ST(spw_buffer_insert_batch(NULL, &one, 1, &n), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_insert_batch: buf is NULL");
  CHECK(n == 99);
  CHECK_ST(spw_buffer_flush(NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_flush: buf is NULL");
  CHECK_ST(spw_buffer_sync_flush(NULL, 10), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_sync_flush: buf is NULL");
  CHECK_ST(spw_buffer_len(NULL, &n), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_len: buf is NULL");
  CHECK_ST(spw_buffer_stats(NULL, &s), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_stats: buf is NULL");
  CHECK_ST(spw_buffer_close(NULL, 10), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_close: buf is NULL");
  CHECK_ST(spw_buffer_producer(NULL, &p), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_producer: buf is NULL");
  CHECK_ST(spw_producer_insert(NULL, "x", 1), SPW_ERR_NULL);
  CHECK_ERR("spw_producer_insert: p is NULL");
  CHECK(p == NULL && n == 99);
  spw_buffer_free(NULL);
  CHECK_NO_ERR();
  spw_producer_free(NULL);
  CHECK_NO_ERR();

  const char *const kv[][2] = {{"max_size", "100"}, {NULL, NULL}};
  buf = new_buffer(kv, &r);
  CHECK_ST(spw_buffer_insert(buf, NULL, 3), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_insert: data is NULL");
  CHECK_ST(spw_buffer_insert_batch(buf, NULL, 2, &n), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_insert_batch: items is NULL");
  spw_item items[3] = {{(const uint8_t *)"ab", 2}, {NULL, 3}, {NULL, 0}};
  CHECK_ST(spw_buffer_insert_batch(buf, items, 3, &n), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_insert_batch: items[1].data is NULL");
  CHECK(n == 99);
  CHECK_ST(spw_buffer_len(buf, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_len: out is NULL");
  CHECK_ST(spw_buffer_stats(buf, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_stats: out is NULL");
  CHECK_ST(spw_buffer_producer(buf, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_producer: out is NULL");
  s = stats_of(buf);
  CHECK(s.inserted == 0); /* item 0 of the refused batch did not go in */
  CHECK_ST(spw_buffer_len(buf, &n), SPW_OK);
  CHECK(n == 0);

  CHECK_ST(spw_buffer_producer(buf, &p), SPW_OK);
  CHECK_ST(spw_producer_insert(p, NULL, 1), SPW_ERR_NULL);
  CHECK_ERR("spw_producer_insert: data is NULL");
  CHECK_ST(spw_producer_insert(p, NULL, 0), SPW_OK); /* an empty item */
  spw_producer_free(p);

  /* Zero lengths need no pointer. */
  CHECK_ST(spw_buffer_insert(buf, NULL, 0), SPW_OK);
  CHECK_ST(spw_buffer_insert_batch(buf, NULL, 0, &n), SPW_OK);
  CHECK(n == 0);
  CHECK_ST(spw_buffer_insert_batch(buf, NULL, 0, NULL), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  CHECK(r.n_items == 2 && r.len[0] == 0 && r.null_data[0] && r.len[1] == 0);
  s = check_conserved(buf);
  CHECK(s.inserted == 2 && s.delivered == 2);
  spw_buffer_free(buf);
  rec_destroy(&r);
}

static void invalid_configurations_are_refused_by_new(void) {
  recorder r;
  rec_init(&r);
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_config_set(cfg, "max_size", "50"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "capacity", "10"), SPW_OK);
  CHECK_ST(spw_buffer_new(cfg, on_flush, &r, &buf), SPW_ERR_INVALID);
  CHECK_ERR("spw_buffer_new: invalid configuration", "`capacity` (10)", "`max_size` (50)");
  CHECK(buf == NULL);

  CHECK_ST(spw_config_set(cfg, "capacity", "100"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "overflow", "spill"), SPW_OK);
  CHECK_ST(spw_buffer_new(cfg, on_flush, &r, &buf), SPW_ERR_INVALID);
  CHECK_ERR("spw_buffer_new", "`spool_dir`");
  /* With a spool directory, byte items can spill. */
  char dir[] = "/tmp/spillway-ffi-spill-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  CHECK_ST(spw_config_set(cfg, "spool_dir", dir), SPW_OK);
  CHECK_ST(spw_buffer_new(cfg, on_flush, &r, &buf), SPW_OK);
  CHECK(buf != NULL);
  CHECK_ST(spw_buffer_insert(buf, "x", 1), SPW_OK);
  CHECK_ST(spw_buffer_close(buf, 5000), SPW_OK);
  spw_buffer_free(buf);
  spw_config_free(cfg);
  rec_destroy(&r);
}

static void batches_arrive_in_order_with_their_reasons(void) {
  recorder r;
  rec_init(&r);
  const char *const kv[][2] = {{"max_size", "4"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &r);

  /* 0..4 one by one, 5..8 as a batch (7 empty), 9 alone: batches of 4, 4, 2. */
  char names[10][16];
  for (int i = 0; i < 10; i++) snprintf(names[i], sizeof names[i], "i:%d", i);
  for (int i = 0; i < 5; i++) insert_str(buf, names[i]);
  spw_item batch[4];
  for (int i = 0; i < 4; i++) batch[i] = (spw_item){(const uint8_t *)names[5 + i], strlen(names[5 + i])};
  batch[2] = (spw_item){NULL, 0};
  size_t n = 0;
  CHECK_ST(spw_buffer_insert_batch(buf, batch, 4, &n), SPW_OK);
  CHECK_NO_ERR();
  CHECK(n == 4);
  insert_str(buf, names[9]);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  CHECK_NO_ERR();

  pthread_mutex_lock(&r.mu);
  CHECK(r.calls == 3);
  const size_t counts[3] = {4, 4, 2};
  const uint32_t reasons[3] = {SPW_FLUSH_SIZE, SPW_FLUSH_SIZE, SPW_FLUSH_MANUAL};
  for (int c = 0; c < 3; c++) {
    CHECK(r.count[c] == counts[c]);
    CHECK(r.info[c].reason == reasons[c]);
    CHECK(r.info[c].partition == 0 && r.info[c].attempt == 0);
  }
  CHECK(r.info[0].batch_bytes == 12); /* "i:0".."i:3" */
  CHECK(r.n_items == 10);
  for (int i = 0; i < 10; i++) CHECK(strcmp(r.item[i], i == 7 ? "" : names[i]) == 0);
  CHECK(r.null_data[7]);
  pthread_mutex_unlock(&r.mu);

  size_t len = 99;
  CHECK_ST(spw_buffer_len(buf, &len), SPW_OK);
  CHECK(len == 0);
  spw_stats s = check_conserved(buf);
  CHECK(s.inserted == 10 && s.delivered == 10 && s.dropped == 0);
  CHECK(s.buffered == 0 && s.in_flight == 0 && s.spooled == 0);
  CHECK(s.batches == 3 && s.failed_flushes == 0 && s.retries == 0);

  /* Close flushes what is left with SPW_FLUSH_CLOSE. */
  insert_str(buf, "last");
  CHECK_ST(spw_buffer_len(buf, &len), SPW_OK);
  CHECK(len == 1);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  CHECK_NO_ERR();
  CHECK(r.calls == 4 && r.info[3].reason == SPW_FLUSH_CLOSE && strcmp(r.item[10], "last") == 0);
  s = check_conserved(buf);
  CHECK(s.inserted == 11 && s.delivered == 11 && s.batches == 4);

  /* Idempotent close; everything but reads is refused afterwards. */
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  CHECK_ST(spw_buffer_close(buf, 0), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, "x", 1), SPW_ERR_CLOSED);
  CHECK_ERR("spw_buffer_insert: buffer is closed");
  n = 99;
  CHECK_ST(spw_buffer_insert_batch(buf, batch, 4, &n), SPW_ERR_CLOSED);
  CHECK(n == 0);
  CHECK_ST(spw_buffer_insert_batch(buf, NULL, 0, &n), SPW_ERR_CLOSED);
  CHECK_ST(spw_buffer_flush(buf), SPW_ERR_CLOSED);
  CHECK_ST(spw_buffer_sync_flush(buf, 100), SPW_ERR_CLOSED);
  CHECK_ERR("spw_buffer_sync_flush: buffer is closed");
  spw_producer *p = NULL;
  CHECK_ST(spw_buffer_producer(buf, &p), SPW_ERR_CLOSED);
  CHECK(p == NULL);
  CHECK_ST(spw_buffer_len(buf, &len), SPW_OK);
  CHECK(len == 0);
  s = check_conserved(buf);
  CHECK(s.inserted == 11);
  spw_buffer_free(buf);
  CHECK(r.calls == 4);
  rec_destroy(&r);
}

static void time_and_manual_flushes(void) {
  recorder r;
  rec_init(&r);
  const char *const timed[][2] = {{"flush_interval", "20ms"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(timed, &r);
  insert_str(buf, "t");
  wait_calls(&r, 1);
  CHECK(r.info[0].reason == SPW_FLUSH_TIME && r.count[0] == 1);
  spw_buffer_free(buf);

  const char *const manual[][2] = {{"max_size", "100"}, {NULL, NULL}};
  buf = new_buffer(manual, &r);
  insert_str(buf, "m");
  CHECK_ST(spw_buffer_flush(buf), SPW_OK);
  CHECK_NO_ERR();
  wait_calls(&r, 2);
  CHECK(r.info[1].reason == SPW_FLUSH_MANUAL && r.count[1] == 1);
  /* The callback has run, but its result may not be accounted yet. */
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 0), SPW_OK); /* nothing buffered: nothing to wait for */
  check_conserved(buf);
  spw_buffer_free(buf);
  rec_destroy(&r);
}

/* capacity 4 = max_size 4, and the callback held: the 4th insert fills the
   partition (its batch is in flight) and the 5th meets the overflow policy. */
static void overflow_policies(void) {
  recorder r;
  rec_init(&r);

  const char *const reject[][2] = {{"max_size", "4"}, {"capacity", "4"}, {"overflow", "reject"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(reject, &r);
  set_hold(&r, true);
  for (int i = 0; i < 4; i++) insert_str(buf, "a");
  CHECK_ST(spw_buffer_insert(buf, "b", 1), SPW_ERR_FULL);
  CHECK_ERR("spw_buffer_insert: buffer partition is full (capacity 4, overflow reject)");
  spw_item two[2] = {{(const uint8_t *)"c", 1}, {(const uint8_t *)"d", 1}};
  size_t n = 99;
  CHECK_ST(spw_buffer_insert_batch(buf, two, 2, &n), SPW_ERR_FULL);
  CHECK(n == 0);
  spw_stats s = stats_of(buf);
  CHECK(s.inserted == 4 && s.dropped == 0); /* reject: the caller keeps the item */
  CHECK_ST(spw_buffer_sync_flush(buf, 30), SPW_ERR_TIMEOUT);
  CHECK_ERR("spw_buffer_sync_flush: 4 items", "still undelivered after 30 ms");
  set_hold(&r, false);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  s = check_conserved(buf);
  CHECK(s.inserted == 4 && s.delivered == 4);

  /* A batch stops at the first refused item; inserted says how many went in. */
  set_hold(&r, true);
  spw_item six[6];
  for (int i = 0; i < 6; i++) six[i] = (spw_item){(const uint8_t *)"e", 1};
  CHECK_ST(spw_buffer_insert_batch(buf, six, 6, &n), SPW_ERR_FULL);
  CHECK(n == 4);
  CHECK_ST(spw_buffer_insert_batch(buf, six, 6, NULL), SPW_ERR_FULL);
  set_hold(&r, false);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  s = check_conserved(buf);
  CHECK(s.inserted == 8 && s.delivered == 8 && s.dropped == 0);
  spw_buffer_free(buf);

  const char *const newest[][2] = {{"max_size", "4"}, {"capacity", "4"}, {"overflow", "drop_newest"}, {NULL, NULL}};
  buf = new_buffer(newest, &r);
  set_hold(&r, true);
  for (int i = 0; i < 4; i++) insert_str(buf, "a");
  CHECK_ST(spw_buffer_insert(buf, "b", 1), SPW_ERR_FULL);
  CHECK_ERR("overflow drop_newest", "counted as inserted and dropped");
  s = stats_of(buf);
  CHECK(s.inserted == 5 && s.dropped == 1);
  set_hold(&r, false);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  s = check_conserved(buf);
  CHECK(s.inserted == 5 && s.delivered == 4 && s.dropped == 1);
  spw_buffer_free(buf);

  /* drop_oldest evicts the oldest item not yet in flight: 2 are in flight
     (held), "o2" and "o3" wait, "o4" evicts "o2". */
  const char *const oldest[][2] = {{"max_size", "2"}, {"capacity", "4"}, {"overflow", "drop_oldest"}, {NULL, NULL}};
  r.n_items = 0;
  buf = new_buffer(oldest, &r);
  set_hold(&r, true);
  insert_str(buf, "o0");
  insert_str(buf, "o1");
  wait_inside(&r);
  insert_str(buf, "o2");
  insert_str(buf, "o3");
  insert_str(buf, "o4");
  CHECK_NO_ERR();
  s = stats_of(buf);
  CHECK(s.inserted == 5 && s.dropped == 1);
  set_hold(&r, false);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  s = check_conserved(buf);
  CHECK(s.delivered == 4 && s.dropped == 1);
  CHECK(r.n_items == 4);
  CHECK(strcmp(r.item[0], "o0") == 0 && strcmp(r.item[1], "o1") == 0);
  CHECK(strcmp(r.item[2], "o3") == 0 && strcmp(r.item[3], "o4") == 0);
  spw_buffer_free(buf);

  const char *const block[][2] = {{"max_size", "4"}, {"capacity", "4"}, {"block_timeout", "20ms"}, {NULL, NULL}};
  buf = new_buffer(block, &r);
  set_hold(&r, true);
  for (int i = 0; i < 4; i++) insert_str(buf, "a");
  CHECK_ST(spw_buffer_insert(buf, "b", 1), SPW_ERR_TIMEOUT);
  CHECK_ERR("spw_buffer_insert: buffer partition stayed full for block_timeout (20 ms)");
  set_hold(&r, false);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  s = check_conserved(buf);
  CHECK(s.inserted == 4 && s.delivered == 4);
  spw_buffer_free(buf);
  rec_destroy(&r);
}

static void retries_then_success(void) {
  recorder r;
  rec_init(&r);
  r.fail_first = 2;
  const char *const kv[][2] = {{"max_size", "100"},      {"max_retries", "3"},
                               {"retry_backoff", "1ms"}, {"retry_backoff_max", "2ms"},
                               {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &r);
  for (int i = 0; i < 3; i++) insert_str(buf, "r");
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  CHECK(r.calls == 3);
  for (uint32_t a = 0; a < 3; a++) {
    CHECK(r.info[a].attempt == a);
    CHECK(r.info[a].reason == SPW_FLUSH_MANUAL && r.count[a] == 3);
  }
  CHECK(r.n_items == 3);
  spw_stats s = check_conserved(buf);
  CHECK(s.delivered == 3 && s.dropped == 0);
  CHECK(s.batches == 1 && s.failed_flushes == 2 && s.retries == 2);
  spw_buffer_free(buf);
  rec_destroy(&r);
}

static void a_callback_that_always_fails(void) {
  recorder r;
  rec_init(&r);
  r.always_fail = true;
  const char *const kv[][2] = {{"max_size", "100"},      {"max_retries", "2"},
                               {"retry_backoff", "1ms"}, {"retry_backoff_max", "1ms"},
                               {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &r);
  for (int i = 0; i < 3; i++) insert_str(buf, "f");
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_ERR_SINK);
  CHECK_ERR("spw_buffer_sync_flush: 3 of the 3 items buffered at the call were given up");
  CHECK(r.calls == 3 && r.info[2].attempt == 2);
  spw_stats s = check_conserved(buf);
  CHECK(s.inserted == 3 && s.delivered == 0 && s.dropped == 3);
  CHECK(s.batches == 0 && s.failed_flushes == 3 && s.retries == 2);

  insert_str(buf, "g");
  insert_str(buf, "h");
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_ERR_SINK);
  CHECK_ERR("spw_buffer_close: closed, but 2 items buffered at close were given up");
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_ERR_SINK); /* the first call's status again */
  CHECK_ST(spw_buffer_insert(buf, "x", 1), SPW_ERR_CLOSED);
  s = check_conserved(buf);
  CHECK(s.inserted == 5 && s.dropped == 5 && s.failed_flushes == 6);
  spw_buffer_free(buf);
  rec_destroy(&r);
}

static void partitions_are_numbered(void) {
  recorder r;
  rec_init(&r);
  const char *const kv[][2] = {{"max_size", "2"}, {"partitions", "3"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &r);
  /* By key: one thread's plain inserts all go to its home partition. Twelve
     keys hash (deterministically) onto all three partitions. */
  for (int i = 0; i < 12; i++)
    CHECK_ST(spw_buffer_insert_keyed(buf, &i, sizeof i, "p", 1), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  pthread_mutex_lock(&r.mu);
  bool seen[3] = {false, false, false};
  for (size_t c = 0; c < r.calls; c++) {
    CHECK(r.info[c].partition < 3);
    seen[r.info[c].partition] = true;
  }
  CHECK(seen[0] && seen[1] && seen[2] && r.n_items == 12);
  pthread_mutex_unlock(&r.mu);
  check_conserved(buf);
  spw_buffer_free(buf);
  rec_destroy(&r);
}

static void producers(void) {
  recorder r;
  rec_init(&r);
  const char *const kv[][2] = {{"max_size", "16"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &r);
  spw_producer *p = NULL;
  CHECK_ST(spw_buffer_producer(buf, &p), SPW_OK);
  CHECK_NO_ERR();
  char item[ITEM_MAX];
  for (int i = 0; i < 100; i++) {
    int len = snprintf(item, sizeof item, "p:%d", i);
    CHECK_ST(spw_producer_insert(p, item, (size_t)len), SPW_OK);
  }
  spw_producer_free(p); /* what it holds is still delivered */
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  CHECK(r.n_items == 100);
  for (int i = 0; i < 100; i++) {
    snprintf(item, sizeof item, "p:%d", i);
    CHECK(strcmp(r.item[i], item) == 0);
  }
  spw_stats s = check_conserved(buf);
  CHECK(s.inserted == 100 && s.delivered == 100);

  /* A producer of a closed buffer, and one that outlives its buffer. */
  spw_producer *p2 = NULL, *p3 = NULL;
  CHECK_ST(spw_buffer_producer(buf, &p2), SPW_OK);
  CHECK_ST(spw_buffer_producer(buf, &p3), SPW_OK);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  CHECK_ST(spw_producer_insert(p2, "x", 1), SPW_ERR_CLOSED);
  CHECK_ERR("spw_producer_insert: buffer is closed");
  spw_producer_free(p2);
  spw_buffer_free(buf);
  CHECK_ST(spw_producer_insert(p3, "y", 1), SPW_ERR_CLOSED);
  spw_producer_free(p3);
  CHECK(r.n_items == 100);
  rec_destroy(&r);
}

static void *release_later(void *arg) {
  recorder *r = arg;
  struct timespec pause = {0, 50 * 1000 * 1000};
  nanosleep(&pause, NULL); /* long enough for the main thread to be inside free */
  set_hold(r, false);
  return NULL;
}

/* close gives up waiting after its timeout; free waits for the callback, so
   once free returns, no call is running and user_data may go. */
static void free_waits_for_a_running_callback(void) {
  recorder r;
  rec_init(&r);
  const char *const kv[][2] = {{"max_size", "1"}, {NULL, NULL}};
  spw_buffer *buf = new_buffer(kv, &r);
  set_hold(&r, true);
  insert_str(buf, "slow");
  wait_inside(&r);
  CHECK_ST(spw_buffer_close(buf, 20), SPW_ERR_TIMEOUT);
  CHECK_ERR("spw_buffer_close: closed, but 1 items were still undelivered");
  pthread_t t;
  CHECK(pthread_create(&t, NULL, release_later, &r) == 0);
  spw_buffer_free(buf);
  pthread_mutex_lock(&r.mu);
  CHECK(r.inside == 0 && r.calls == 1 && r.n_items == 1);
  pthread_mutex_unlock(&r.mu);
  CHECK(pthread_join(t, NULL) == 0);
  rec_destroy(&r);
}

int main(void) {
  /* First: the flusher thread it leaves behind has the rest of the run to end. */
  free_waits_for_a_running_callback();
  nulls_are_refused_and_change_nothing();
  invalid_configurations_are_refused_by_new();
  batches_arrive_in_order_with_their_reasons();
  time_and_manual_flushes();
  overflow_policies();
  retries_then_success();
  a_callback_that_always_fails();
  partitions_are_numbered();
  producers();
  return 0;
}
