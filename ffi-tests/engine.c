/* spw_engine_*: many buffers on one engine, unique names, stop and free,
   and a buffer freed after its engine (it stays valid, closed). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>

#include "check.h"

/* Counts the items each buffer's callback accepted, and checks their order. */
typedef struct {
  pthread_mutex_t mu;
  size_t delivered;
  long next; /* the value the next item must carry */
} counter;

static void counter_init(counter *c) {
  memset(c, 0, sizeof *c);
  CHECK(pthread_mutex_init(&c->mu, NULL) == 0);
}

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  counter *c = user_data;
  CHECK(info->partition == 0);
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < count; i++) {
    char text[24];
    CHECK(items[i].len < sizeof text);
    memcpy(text, items[i].data, items[i].len);
    text[items[i].len] = '\0';
    CHECK(strtol(text, NULL, 10) == c->next);
    c->next++;
  }
  c->delivered += count;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

static spw_config *config_named(const char *name) {
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  CHECK_ST(spw_config_set(cfg, "name", name), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "partitions", "1"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "max_size", "64"), SPW_OK);
  return cfg;
}

static void insert_numbers(spw_buffer *buf, long from, long to) {
  for (long i = from; i < to; i++) {
    char text[24];
    int n = snprintf(text, sizeof text, "%ld", i);
    CHECK_ST(spw_buffer_insert(buf, text, (size_t)n), SPW_OK);
  }
}

static void arguments_are_checked(void) {
  spw_engine *e = NULL;
  CHECK_ST(spw_engine_new(2, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_engine_new: out is NULL");
  CHECK_ST(spw_engine_new(0, &e), SPW_ERR_INVALID);
  CHECK_ERR("spw_engine_new: workers", "at least 1");
  CHECK(e == NULL);
  CHECK_ST(spw_engine_stop(NULL, 0), SPW_ERR_NULL);
  spw_engine_free(NULL);
  CHECK_NO_ERR();

  CHECK_ST(spw_engine_new(1, &e), SPW_OK);
  CHECK(e != NULL);
  spw_config *cfg = config_named("a");
  counter c;
  counter_init(&c);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_engine_buffer_new(NULL, cfg, on_flush, &c, &buf), SPW_ERR_NULL);
  CHECK_ERR("spw_engine_buffer_new: e is NULL");
  CHECK_ST(spw_engine_buffer_new(e, NULL, on_flush, &c, &buf), SPW_ERR_NULL);
  CHECK_ERR("spw_engine_buffer_new: cfg is NULL");
  CHECK_ST(spw_engine_buffer_new(e, cfg, NULL, &c, &buf), SPW_ERR_NULL);
  CHECK_ERR("spw_engine_buffer_new: on_flush is NULL");
  CHECK_ST(spw_engine_buffer_new(e, cfg, on_flush, &c, NULL), SPW_ERR_NULL);
  CHECK(buf == NULL);
  spw_config_free(cfg);
  CHECK_ST(spw_engine_stop(e, 1000), SPW_OK);
  CHECK_ST(spw_engine_stop(e, 1000), SPW_OK); /* idempotent */
  spw_engine_free(e);
  pthread_mutex_destroy(&c.mu);
}

static void buffers_share_an_engine_and_names_are_unique(void) {
  spw_engine *e = NULL;
  CHECK_ST(spw_engine_new(2, &e), SPW_OK);
  counter ca, cb;
  counter_init(&ca);
  counter_init(&cb);
  spw_config *cfg_a = config_named("a");
  spw_config *cfg_b = config_named("b");
  spw_buffer *a = NULL, *b = NULL, *dup = NULL;
  CHECK_ST(spw_engine_buffer_new(e, cfg_a, on_flush, &ca, &a), SPW_OK);
  CHECK_ST(spw_engine_buffer_new(e, cfg_b, on_flush, &cb, &b), SPW_OK);
  CHECK_ST(spw_engine_buffer_new(e, cfg_a, on_flush, &ca, &dup), SPW_ERR_INVALID);
  CHECK_ERR("spw_engine_buffer_new", "`a` is already registered");
  CHECK(dup == NULL);

  insert_numbers(a, 0, 1000);
  insert_numbers(b, 0, 300);
  CHECK_ST(spw_buffer_sync_flush(a, 10000), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(b, 10000), SPW_OK);
  CHECK(ca.delivered == 1000 && cb.delivered == 300);

  /* A name is free again once its buffer is freed. */
  CHECK_ST(spw_buffer_close(b, 10000), SPW_OK);
  spw_buffer_free(b);
  CHECK_ST(spw_engine_buffer_new(e, cfg_b, on_flush, &cb, &b), SPW_OK);
  insert_numbers(b, 300, 310);

  /* Stop closes every open buffer, delivering what it holds. */
  insert_numbers(a, 1000, 1010);
  CHECK_ST(spw_engine_stop(e, 10000), SPW_OK);
  CHECK_NO_ERR();
  CHECK(ca.delivered == 1010 && cb.delivered == 310);
  CHECK_ST(spw_buffer_insert(a, "x", 1), SPW_ERR_CLOSED);
  spw_buffer *late = NULL;
  spw_config *cfg_c = config_named("c");
  CHECK_ST(spw_engine_buffer_new(e, cfg_c, on_flush, &ca, &late), SPW_ERR_CLOSED);
  CHECK_ERR("spw_engine_buffer_new: the engine was stopped");
  CHECK(late == NULL);
  spw_config_free(cfg_c);

  spw_stats s;
  CHECK_ST(spw_buffer_stats(a, &s), SPW_OK);
  CHECK(s.inserted == 1010 && s.delivered == 1010 && s.buffered == 0 && s.in_flight == 0);
  spw_buffer_free(a);
  spw_buffer_free(b);
  spw_engine_free(e);
  spw_config_free(cfg_a);
  spw_config_free(cfg_b);
  pthread_mutex_destroy(&ca.mu);
  pthread_mutex_destroy(&cb.mu);
}

static void free_stops_and_a_buffer_may_outlive_its_engine(void) {
  spw_engine *e = NULL;
  CHECK_ST(spw_engine_new(1, &e), SPW_OK);
  counter c;
  counter_init(&c);
  spw_config *cfg = config_named("outlives");
  spw_buffer *buf = NULL;
  CHECK_ST(spw_engine_buffer_new(e, cfg, on_flush, &c, &buf), SPW_OK);
  spw_config_free(cfg);
  insert_numbers(buf, 0, 100);
  /* Not stopped: free stops it, which closes the buffer and delivers. */
  spw_engine_free(e);
  CHECK_NO_ERR();
  CHECK(c.delivered == 100);
  CHECK_ST(spw_buffer_insert(buf, "x", 1), SPW_ERR_CLOSED);
  spw_stats s;
  CHECK_ST(spw_buffer_stats(buf, &s), SPW_OK);
  CHECK(s.delivered == 100 && s.inserted == 100);
  spw_buffer_free(buf);
  CHECK_NO_ERR();
  pthread_mutex_destroy(&c.mu);
}

int main(void) {
  arguments_are_checked();
  buffers_share_an_engine_and_names_are_unique();
  free_stops_and_a_buffer_may_outlive_its_engine();
  puts("engine: ok");
  return 0;
}
