/* One spw_buffer fed by 4 threads at once: 2 with spw_buffer_insert, 2 with
   their own spw_producer, 50,000 items "thread:seq" each, while the main
   thread reads stats and asks for flushes. The callback checks that every
   item arrives exactly once and each thread's items in order. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

enum { THREADS = 4, PER_THREAD = 50000 };

static spw_buffer *buf;
static pthread_barrier_t start;
static atomic_int running = THREADS;

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long next_seq[THREADS]; /* the next seq expected from each thread */
static unsigned long delivered;

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  (void)user_data;
  CHECK(info->partition == 0 && count > 0);
  uint64_t bytes = 0;
  pthread_mutex_lock(&seen_mu);
  for (size_t i = 0; i < count; i++) {
    char text[32];
    CHECK(items[i].len > 0 && items[i].len < sizeof text);
    memcpy(text, items[i].data, items[i].len);
    text[items[i].len] = '\0';
    int thread;
    unsigned long seq;
    char end;
    CHECK(sscanf(text, "%d:%lu%c", &thread, &seq, &end) == 2);
    CHECK(thread >= 0 && thread < THREADS);
    if (seq != next_seq[thread]) {
      fprintf(stderr, "thread %d: got seq %lu, expected %lu\n", thread, seq, next_seq[thread]);
      exit(1);
    }
    next_seq[thread]++;
    bytes += items[i].len;
  }
  delivered += count;
  pthread_mutex_unlock(&seen_mu);
  CHECK(bytes == info->batch_bytes);
  return 0;
}

static void *inserter(void *arg) {
  int id = (int)(intptr_t)arg;
  bool own_producer = id >= 2;
  spw_producer *p = NULL;
  if (own_producer) CHECK_ST(spw_buffer_producer(buf, &p), SPW_OK);
  pthread_barrier_wait(&start);
  char item[32];
  for (unsigned long seq = 0; seq < PER_THREAD; seq++) {
    int len = snprintf(item, sizeof item, "%d:%lu", id, seq);
    if (own_producer) {
      CHECK_ST(spw_producer_insert(p, item, (size_t)len), SPW_OK);
    } else {
      CHECK_ST(spw_buffer_insert(buf, item, (size_t)len), SPW_OK);
    }
  }
  spw_producer_free(p); /* what it holds is still delivered */
  atomic_fetch_sub(&running, 1);
  return NULL;
}

int main(void) {
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  static const char *const kv[][2] = {
      {"max_size", "1000"}, {"capacity", "8000"},     {"flush_interval", "20ms"},
      {"workers", "2"},     {"block_timeout", "60s"}, {"overflow", "block"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK_ST(spw_config_set(cfg, kv[i][0], kv[i][1]), SPW_OK);
  CHECK_ST(spw_buffer_new(cfg, on_flush, NULL, &buf), SPW_OK);
  spw_config_free(cfg);

  CHECK(pthread_barrier_init(&start, NULL, THREADS + 1) == 0);
  pthread_t threads[THREADS];
  for (int i = 0; i < THREADS; i++) {
    CHECK(pthread_create(&threads[i], NULL, inserter, (void *)(intptr_t)i) == 0);
  }
  pthread_barrier_wait(&start);

  /* Meanwhile: reads and flushes from another thread, on the same buffer. */
  uint64_t last_delivered = 0, last_inserted = 0;
  unsigned long samples = 0;
  while (atomic_load(&running) > 0) {
    spw_stats s;
    CHECK_ST(spw_buffer_stats(buf, &s), SPW_OK);
    CHECK(s.delivered >= last_delivered && s.inserted >= last_inserted);
    CHECK(s.delivered + s.dropped <= s.inserted);
    CHECK(s.dropped == 0 && s.failed_flushes == 0);
    last_delivered = s.delivered;
    last_inserted = s.inserted;
    size_t len;
    CHECK_ST(spw_buffer_len(buf, &len), SPW_OK);
    if (++samples % 64 == 0) CHECK_ST(spw_buffer_flush(buf), SPW_OK);
    sched_yield();
  }
  for (int i = 0; i < THREADS; i++) CHECK(pthread_join(threads[i], NULL) == 0);
  CHECK(pthread_barrier_destroy(&start) == 0);

  CHECK_ST(spw_buffer_close(buf, 60000), SPW_OK);
  CHECK_NO_ERR();
  spw_stats s;
  CHECK_ST(spw_buffer_stats(buf, &s), SPW_OK);
  CHECK(s.inserted == (uint64_t)THREADS * PER_THREAD);
  CHECK(s.inserted == s.delivered + s.dropped + s.buffered + s.in_flight + s.spooled);
  CHECK(s.delivered == s.inserted && s.dropped == 0 && s.failed_flushes == 0);
  size_t len = 1;
  CHECK_ST(spw_buffer_len(buf, &len), SPW_OK);
  CHECK(len == 0);
  spw_buffer_free(buf);

  CHECK(delivered == (unsigned long)THREADS * PER_THREAD);
  for (int i = 0; i < THREADS; i++) CHECK(next_seq[i] == PER_THREAD);
  printf("buffer_threads: %lu items, %lu stats samples\n", delivered, samples);
  return 0;
}
