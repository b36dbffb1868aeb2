/* spw_spsc across two threads: 1,000,000 16-byte elements, each arriving
   once and in order, while a third thread samples spw_spsc_len. Then the
   producer says "no more" with spw_spsc_close, and the consumer, which never
   knows the count, drains to SPW_ERR_CLOSED; and a third thread's close
   wakes a consumer that waits without a deadline. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

enum { TOTAL = 1000000, CAPACITY = 256, BATCH = 64 };

typedef struct {
  uint64_t seq;
  uint64_t check; /* derived from seq: catches torn or mixed-up elements */
} elem;

static uint64_t check_of(uint64_t seq) { return seq * 0x9E3779B97F4A7C15ull ^ 0xA5A5A5A5u; }

static spw_spsc *ring;
static atomic_bool consumer_done;

static void *producer(void *arg) {
  (void)arg;
  elem batch[BATCH];
  uint64_t next = 0;
  unsigned round = 0;
  while (next < TOTAL) {
    size_t want = 1 + round++ % BATCH; /* every batch size, 1..BATCH */
    if (want > TOTAL - next) want = (size_t)(TOTAL - next);
    for (size_t i = 0; i < want; i++) batch[i] = (elem){next + i, check_of(next + i)};
    size_t k = spw_spsc_push_n(ring, batch, want);
    CHECK(k <= want);
    next += k;
    if (k < want) {
      /* Full: wait for room for the first element that did not fit. */
      CHECK_ST(spw_spsc_push_timeout(ring, &batch[k], UINT64_MAX), SPW_OK);
      next++;
    } else if (round % 7 == 0 && next < TOTAL) {
      elem one = {next, check_of(next)};
      spw_status st = spw_spsc_push(ring, &one);
      CHECK(st == SPW_OK || st == SPW_ERR_FULL);
      if (st == SPW_OK) next++;
    }
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  elem batch[BATCH];
  uint64_t expect = 0;
  unsigned round = 0;
  while (expect < TOTAL) {
    size_t got = spw_spsc_pop_n(ring, batch, 1 + round++ % BATCH);
    if (got == 0) {
      /* Empty: wait for the next element. */
      CHECK_ST(spw_spsc_pop_timeout(ring, &batch[0], UINT64_MAX), SPW_OK);
      got = 1;
    }
    for (size_t i = 0; i < got; i++) {
      CHECK(batch[i].seq == expect);
      CHECK(batch[i].check == check_of(expect));
      expect++;
    }
  }
  elem none;
  CHECK_ST(spw_spsc_pop(ring, &none), SPW_ERR_EMPTY); /* nothing extra */
  atomic_store(&consumer_done, true);
  return NULL;
}

/* spw_spsc_len may be called from any thread. */
static void *observer(void *arg) {
  (void)arg;
  unsigned long samples = 0;
  while (!atomic_load(&consumer_done)) {
    CHECK(spw_spsc_len(ring) <= CAPACITY);
    CHECK_NO_ERR();
    samples++;
    sched_yield(); /* sample, do not hog a core */
  }
  return (void *)(uintptr_t)samples;
}

/* The producer pushes CLOSED_TOTAL elements, waiting for room as needed,
   then closes the ring: the end of the stream. */
enum { CLOSED_TOTAL = 100000 };

static void *producer_then_close(void *arg) {
  (void)arg;
  for (uint64_t i = 0; i < CLOSED_TOTAL; i++) {
    elem e = {i, check_of(i)};
    CHECK_ST(spw_spsc_push_timeout(ring, &e, UINT64_MAX), SPW_OK);
  }
  CHECK_ST(spw_spsc_close(ring), SPW_OK);
  elem late = {CLOSED_TOTAL, 0};
  CHECK_ST(spw_spsc_push(ring, &late), SPW_ERR_CLOSED);
  return NULL;
}

/* Pops until SPW_ERR_CLOSED, never knowing how many will come; returns the
   count through arg. */
static void *consumer_until_closed(void *arg) {
  uint64_t *count = arg;
  elem batch[BATCH];
  uint64_t expect = 0;
  unsigned round = 0;
  for (;;) {
    size_t got = spw_spsc_pop_n(ring, batch, 1 + round++ % BATCH);
    if (got == 0) {
      spw_status st = spw_spsc_pop_timeout(ring, &batch[0], UINT64_MAX);
      if (st == SPW_ERR_CLOSED) {
        CHECK_ERR("spw_spsc_pop_timeout: ring is closed and empty");
        break;
      }
      CHECK_ST(st, SPW_OK);
      got = 1;
    }
    for (size_t i = 0; i < got; i++) {
      CHECK(batch[i].seq == expect);
      CHECK(batch[i].check == check_of(expect));
      expect++;
    }
  }
  /* Closed and drained stays so. */
  CHECK(spw_spsc_pop_n(ring, batch, BATCH) == 0);
  CHECK_ERR("spw_spsc_pop_n: ring is closed and empty");
  *count = expect;
  return NULL;
}

static void producer_closes_consumer_drains(void) {
  CHECK_ST(spw_spsc_new(CAPACITY, sizeof(elem), &ring), SPW_OK);
  uint64_t count = 0;
  pthread_t p, c;
  CHECK(pthread_create(&c, NULL, consumer_until_closed, &count) == 0);
  CHECK(pthread_create(&p, NULL, producer_then_close, NULL) == 0);
  CHECK(pthread_join(p, NULL) == 0);
  CHECK(pthread_join(c, NULL) == 0);
  CHECK(count == CLOSED_TOTAL);
  CHECK(spw_spsc_len(ring) == 0);
  spw_spsc_free(ring);
}

static void *wait_forever(void *arg) {
  elem e;
  *(spw_status *)arg = spw_spsc_pop_timeout(ring, &e, UINT64_MAX);
  return NULL;
}

/* Neither producer nor consumer: a third thread ends the consumer's wait. */
static void another_thread_closes_a_waiting_consumer(void) {
  CHECK_ST(spw_spsc_new(4, sizeof(elem), &ring), SPW_OK);
  spw_status st = SPW_OK;
  pthread_t c;
  CHECK(pthread_create(&c, NULL, wait_forever, &st) == 0);
  CHECK_ST(spw_spsc_close(ring), SPW_OK); /* before or during its wait */
  CHECK(pthread_join(c, NULL) == 0);
  CHECK_ST(st, SPW_ERR_CLOSED);
  spw_spsc_free(ring);
}

int main(void) {
  producer_closes_consumer_drains();
  another_thread_closes_a_waiting_consumer();

  CHECK_ST(spw_spsc_new(CAPACITY, sizeof(elem), &ring), SPW_OK);
  pthread_t p, c, o;
  CHECK(pthread_create(&c, NULL, consumer, NULL) == 0);
  CHECK(pthread_create(&o, NULL, observer, NULL) == 0);
  CHECK(pthread_create(&p, NULL, producer, NULL) == 0);
  CHECK(pthread_join(p, NULL) == 0);
  CHECK(pthread_join(c, NULL) == 0);
  CHECK(pthread_join(o, NULL) == 0);
  CHECK(spw_spsc_len(ring) == 0);
  spw_spsc_free(ring);
  return 0;
}
