/* spw_ring_*: the mutex-guarded ring of byte items. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static spw_ring *new_ring(size_t capacity) {
  spw_ring *r = NULL;
  CHECK_ST(spw_ring_new(capacity, &r), SPW_OK);
  CHECK(r != NULL);
  CHECK_NO_ERR();
  return r;
}

static void push_str(spw_ring *r, const char *s) {
  CHECK_ST(spw_ring_push(r, s, strlen(s), 0), SPW_OK);
  CHECK_NO_ERR();
}

/* Pops one item, checks it equals (want, want_len), frees it. */
static void pop_expect(spw_ring *r, const void *want, size_t want_len, uint64_t timeout_ms) {
  uint8_t *data = (uint8_t *)&data; /* sentinels: must be overwritten */
  size_t len = (size_t)-1;
  CHECK_ST(spw_ring_pop(r, &data, &len, timeout_ms), SPW_OK);
  CHECK_NO_ERR();
  CHECK(len == want_len);
  if (want_len == 0) {
    CHECK(data == NULL); /* an empty item comes back as (NULL, 0) */
  } else {
    CHECK(data != NULL);
    CHECK(memcmp(data, want, want_len) == 0);
  }
  spw_bytes_free(data, len);
  CHECK_NO_ERR();
}

static void new_and_free(void) {
  spw_ring *r = (spw_ring *)&r; /* sentinel: must stay untouched on failure */
  spw_ring *const sentinel = r;
  CHECK_ST(spw_ring_new(4, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_ring_new", "out", "NULL");
  CHECK_ST(spw_ring_new(0, &r), SPW_ERR_INVALID);
  CHECK_ERR("spw_ring_new", "capacity", "at least 1");
  CHECK(r == sentinel);

  /* A huge capacity is a bound, not an allocation. */
  r = new_ring(SIZE_MAX);
  push_str(r, "x");
  CHECK(spw_ring_len(r) == 1);
  spw_ring_free(r); /* frees the item still inside (valgrind checks) */
  CHECK_NO_ERR();

  spw_ring_new(0, &r); /* leave an error behind, then free(NULL) clears it */
  spw_ring_free(NULL);
  CHECK_NO_ERR();
}

static void fifo_contents_and_empty_items(void) {
  spw_ring *r = new_ring(8);
  static const uint8_t binary[] = {0, 1, 0, 255, 0};
  push_str(r, "alpha");
  CHECK_ST(spw_ring_push(r, NULL, 0, 0), SPW_OK);    /* empty item, NULL data */
  CHECK_ST(spw_ring_push(r, "zzz", 0, 0), SPW_OK);   /* empty item, real data */
  CHECK_ST(spw_ring_push(r, binary, sizeof binary, 0), SPW_OK);
  char big[4096];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
  CHECK_ST(spw_ring_push(r, big, sizeof big, 0), SPW_OK);
  big[0] = 'Q'; /* the ring copied the bytes: changing ours does not matter */
  CHECK(spw_ring_len(r) == 5);
  CHECK_NO_ERR();

  pop_expect(r, "alpha", 5, 0);
  pop_expect(r, NULL, 0, 0);
  pop_expect(r, NULL, 0, 0);
  pop_expect(r, binary, sizeof binary, 0);
  big[0] = 0;
  pop_expect(r, big, sizeof big, 0);
  CHECK(spw_ring_len(r) == 0);

  /* Wrap around the ring many times. */
  for (int round = 0; round < 100; round++) {
    char a[16], b[16];
    snprintf(a, sizeof a, "a%d", round);
    snprintf(b, sizeof b, "b%d", round);
    push_str(r, a);
    push_str(r, b);
    pop_expect(r, a, strlen(a), 0);
    pop_expect(r, b, strlen(b), 0);
  }
  spw_ring_free(r);
}

static void null_and_invalid_arguments(void) {
  spw_ring *r = new_ring(4);
  push_str(r, "keep");

  CHECK_ST(spw_ring_push(NULL, "x", 1, 0), SPW_ERR_NULL);
  CHECK_ERR("spw_ring_push", "r is NULL");
  CHECK_ST(spw_ring_push(r, NULL, 3, 0), SPW_ERR_NULL);
  CHECK_ERR("spw_ring_push", "data is NULL");
  CHECK_ST(spw_ring_push(r, "x", SIZE_MAX, 0), SPW_ERR_INVALID);
  CHECK_ERR("spw_ring_push", "data", "length");
  CHECK(spw_ring_len(r) == 1); /* none of those changed anything */

  uint8_t *data = (uint8_t *)&data;
  uint8_t *const data_sentinel = data;
  size_t len = 12345;
  CHECK_ST(spw_ring_pop(NULL, &data, &len, 0), SPW_ERR_NULL);
  CHECK_ERR("spw_ring_pop", "r is NULL");
  CHECK_ST(spw_ring_pop(r, NULL, &len, 0), SPW_ERR_NULL);
  CHECK_ERR("spw_ring_pop", "data is NULL");
  CHECK_ST(spw_ring_pop(r, &data, NULL, 0), SPW_ERR_NULL);
  CHECK_ERR("spw_ring_pop", "len is NULL");
  CHECK(data == data_sentinel && len == 12345);
  CHECK(spw_ring_len(r) == 1); /* the item was not lost */

  CHECK(spw_ring_len(NULL) == 0);
  CHECK_ERR("spw_ring_len", "r is NULL");
  spw_ring_close(NULL);
  CHECK_ERR("spw_ring_close", "r is NULL");

  pop_expect(r, "keep", 4, 0);
  spw_ring_free(r);
}

static void full_empty_and_timeouts(void) {
  spw_ring *r = new_ring(2);
  uint8_t *data = (uint8_t *)&data;
  uint8_t *const data_sentinel = data;
  size_t len = 777;

  CHECK_ST(spw_ring_pop(r, &data, &len, 0), SPW_ERR_EMPTY);
  CHECK_ERR("spw_ring_pop", "empty");
  uint64_t t0 = now_ms();
  CHECK_ST(spw_ring_pop(r, &data, &len, 30), SPW_ERR_TIMEOUT);
  CHECK(now_ms() - t0 >= 29); /* waited (ms rounding aside) */
  CHECK_ERR("spw_ring_pop", "empty", "30 ms");
  CHECK(data == data_sentinel && len == 777);

  push_str(r, "1");
  push_str(r, "2");
  CHECK_ST(spw_ring_push(r, "3", 1, 0), SPW_ERR_FULL);
  CHECK_ERR("spw_ring_push", "full", "capacity 2");
  t0 = now_ms();
  CHECK_ST(spw_ring_push(r, "3", 1, 30), SPW_ERR_TIMEOUT);
  CHECK(now_ms() - t0 >= 29);
  CHECK_ERR("spw_ring_push", "full", "30 ms");
  CHECK(spw_ring_len(r) == 2);

  /* A wait that does not need to wait succeeds at once. */
  pop_expect(r, "1", 1, 1000);
  CHECK_ST(spw_ring_push(r, "3", 1, 1000), SPW_OK);
  pop_expect(r, "2", 1, UINT64_MAX);
  pop_expect(r, "3", 1, UINT64_MAX);
  spw_ring_free(r);
}

static void close_drains_then_refuses(void) {
  spw_ring *r = new_ring(4);
  push_str(r, "a");
  push_str(r, "b");
  spw_ring_close(r);
  CHECK_NO_ERR();
  spw_ring_close(r); /* idempotent */
  CHECK_NO_ERR();

  CHECK_ST(spw_ring_push(r, "c", 1, 0), SPW_ERR_CLOSED);
  CHECK_ERR("spw_ring_push", "closed");
  CHECK_ST(spw_ring_push(r, "c", 1, UINT64_MAX), SPW_ERR_CLOSED);
  CHECK_ST(spw_ring_push(r, "c", 1, 50), SPW_ERR_CLOSED);
  CHECK(spw_ring_len(r) == 2);

  pop_expect(r, "a", 1, 0);
  pop_expect(r, "b", 1, UINT64_MAX);
  uint8_t *data = NULL;
  size_t len = 0;
  CHECK_ST(spw_ring_pop(r, &data, &len, 0), SPW_ERR_CLOSED);
  CHECK_ERR("spw_ring_pop", "closed");
  CHECK_ST(spw_ring_pop(r, &data, &len, 50), SPW_ERR_CLOSED);
  CHECK_ST(spw_ring_pop(r, &data, &len, UINT64_MAX), SPW_ERR_CLOSED);
  spw_ring_free(r);

  /* Freeing a closed ring that still holds items frees them. */
  r = new_ring(4);
  push_str(r, "left behind");
  spw_ring_close(r);
  spw_ring_free(r);
}

/* ---- blocking calls across threads ---- */

struct waiter {
  spw_ring *r;
  spw_status status;
  uint8_t *data;
  size_t len;
};

static void *pop_forever(void *arg) {
  struct waiter *w = arg;
  w->status = spw_ring_pop(w->r, &w->data, &w->len, UINT64_MAX);
  return NULL;
}

static void *push_forever(void *arg) {
  struct waiter *w = arg;
  w->status = spw_ring_push(w->r, "late", 4, UINT64_MAX);
  return NULL;
}

static void blocking_calls_are_woken(void) {
  spw_ring *r = new_ring(1);
  pthread_t t;

  /* A pop waiting forever gets the item another thread pushes. */
  struct waiter w = {r, SPW_ERR_PANIC, NULL, 0};
  CHECK(pthread_create(&t, NULL, pop_forever, &w) == 0);
  push_str(r, "hello");
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_ST(w.status, SPW_OK);
  CHECK(w.len == 5 && memcmp(w.data, "hello", 5) == 0);
  spw_bytes_free(w.data, w.len);

  /* A push waiting forever on a full ring goes in once a slot frees up. */
  push_str(r, "first");
  struct waiter p = {r, SPW_ERR_PANIC, NULL, 0};
  CHECK(pthread_create(&t, NULL, push_forever, &p) == 0);
  pop_expect(r, "first", 5, UINT64_MAX);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_ST(p.status, SPW_OK);
  pop_expect(r, "late", 4, UINT64_MAX);

  /* Close wakes a pop that waits forever on an empty ring... */
  struct waiter c = {r, SPW_ERR_PANIC, NULL, 0};
  CHECK(pthread_create(&t, NULL, pop_forever, &c) == 0);
  spw_ring_close(r);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_ST(c.status, SPW_ERR_CLOSED);
  CHECK(c.data == NULL && c.len == 0); /* untouched */
  spw_ring_free(r);

  /* ...and a push that waits forever on a full ring. */
  r = new_ring(1);
  push_str(r, "full");
  struct waiter f = {r, SPW_ERR_PANIC, NULL, 0};
  CHECK(pthread_create(&t, NULL, push_forever, &f) == 0);
  spw_ring_close(r);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_ST(f.status, SPW_ERR_CLOSED);
  spw_ring_free(r);
}

/* ---- many producers, many consumers ---- */

enum { PRODUCERS = 3, CONSUMERS = 2, PER_PRODUCER = 3000 };

struct mpmc {
  spw_ring *r;
  int id;
  unsigned seen[PRODUCERS][PER_PRODUCER]; /* per consumer */
  long count;
};

static void *mpmc_producer(void *arg) {
  struct mpmc *m = arg;
  for (int i = 0; i < PER_PRODUCER; i++) {
    int item[2] = {m->id, i};
    CHECK_ST(spw_ring_push(m->r, item, sizeof item, UINT64_MAX), SPW_OK);
  }
  return NULL;
}

static void *mpmc_consumer(void *arg) {
  struct mpmc *m = arg;
  int last[PRODUCERS];
  for (int p = 0; p < PRODUCERS; p++) last[p] = -1;
  for (;;) {
    uint8_t *data;
    size_t len;
    spw_status st = spw_ring_pop(m->r, &data, &len, UINT64_MAX);
    if (st == SPW_ERR_CLOSED) break;
    CHECK_ST(st, SPW_OK);
    CHECK(len == 2 * sizeof(int));
    int item[2];
    memcpy(item, data, sizeof item);
    spw_bytes_free(data, len);
    CHECK(item[0] >= 0 && item[0] < PRODUCERS && item[1] >= 0 && item[1] < PER_PRODUCER);
    CHECK(item[1] > last[item[0]]); /* each producer's items arrive in order */
    last[item[0]] = item[1];
    m->seen[item[0]][item[1]]++;
    m->count++;
  }
  return NULL;
}

static void many_threads_each_item_once(void) {
  static struct mpmc prod[PRODUCERS], cons[CONSUMERS];
  spw_ring *r = new_ring(16);
  pthread_t pt[PRODUCERS], ct[CONSUMERS];
  for (int i = 0; i < CONSUMERS; i++) {
    cons[i].r = r;
    CHECK(pthread_create(&ct[i], NULL, mpmc_consumer, &cons[i]) == 0);
  }
  for (int i = 0; i < PRODUCERS; i++) {
    prod[i].r = r;
    prod[i].id = i;
    CHECK(pthread_create(&pt[i], NULL, mpmc_producer, &prod[i]) == 0);
  }
  for (int i = 0; i < PRODUCERS; i++) CHECK(pthread_join(pt[i], NULL) == 0);
  spw_ring_close(r); /* consumers drain, then see SPW_ERR_CLOSED */
  for (int i = 0; i < CONSUMERS; i++) CHECK(pthread_join(ct[i], NULL) == 0);

  long total = 0;
  for (int i = 0; i < CONSUMERS; i++) total += cons[i].count;
  CHECK(total == (long)PRODUCERS * PER_PRODUCER);
  for (int p = 0; p < PRODUCERS; p++)
    for (int i = 0; i < PER_PRODUCER; i++) {
      unsigned n = 0;
      for (int c = 0; c < CONSUMERS; c++) n += cons[c].seen[p][i];
      CHECK(n == 1);
    }
  CHECK(spw_ring_len(r) == 0);
  spw_ring_free(r);
}

int main(void) {
  new_and_free();
  fifo_contents_and_empty_items();
  null_and_invalid_arguments();
  full_empty_and_timeouts();
  close_drains_then_refuses();
  blocking_calls_are_woken();
  many_threads_each_item_once();
  return 0;
}
