/* The buffer calls of 0.2: spw_buffer_insert_keyed (same key, same
   partition, same order), spw_buffer_dump and spw_items_free (counted in
   spw_stats.dumped), and spw_flush_info's deadline_ms and meta. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

enum { MAX_SEEN = 512, KEYS = 5, PER_KEY = 40 };

/* Every item the callback accepted, with its partition and flush info. */
typedef struct {
  pthread_mutex_t mu;
  size_t n;
  char item[MAX_SEEN][16];
  uint32_t partition[MAX_SEEN];
  spw_flush_info last_info;
  char last_meta[32];
  bool meta_null;
} seen;

static int on_flush(void *user_data, const spw_item *items, size_t count,
                    const spw_flush_info *info) {
  seen *s = user_data;
  pthread_mutex_lock(&s->mu);
  s->last_info = *info;
  s->meta_null = info->meta == NULL;
  if (info->meta != NULL) snprintf(s->last_meta, sizeof s->last_meta, "%s", info->meta);
  s->last_info.meta = NULL;
  for (size_t i = 0; i < count; i++) {
    CHECK(s->n < MAX_SEEN && items[i].len < 16);
    memcpy(s->item[s->n], items[i].data, items[i].len);
    s->item[s->n][items[i].len] = '\0';
    s->partition[s->n] = info->partition;
    s->n++;
  }
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static spw_buffer *new_buffer(seen *s, const char *partitions, const char *meta) {
  memset(s, 0, sizeof *s);
  CHECK(pthread_mutex_init(&s->mu, NULL) == 0);
  spw_config *cfg = spw_config_new();
  CHECK_ST(spw_config_set(cfg, "workers", "2"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "partitions", partitions), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "max_size", "7"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "flush_interval", "1h"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "flush_timeout", "30s"), SPW_OK);
  if (meta != NULL) CHECK_ST(spw_config_set(cfg, "flush_meta", meta), SPW_OK);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, on_flush, s, &buf), SPW_OK);
  spw_config_free(cfg);
  return buf;
}

static void same_key_same_partition_same_order(void) {
  seen s;
  spw_buffer *buf = new_buffer(&s, "4", NULL);
  CHECK_ST(spw_buffer_insert_keyed(NULL, "k", 1, "x", 1), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_insert_keyed: buf is NULL");
  CHECK_ST(spw_buffer_insert_keyed(buf, NULL, 1, "x", 1), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_insert_keyed: key is NULL");
  CHECK_ST(spw_buffer_insert_keyed(buf, "k", 1, NULL, 1), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_insert_keyed: data is NULL");

  /* Interleaved keys; each item is "<key>:<n>". */
  for (int i = 0; i < PER_KEY; i++) {
    for (int k = 0; k < KEYS; k++) {
      char key[8], item[16];
      int kl = snprintf(key, sizeof key, "key%d", k);
      int il = snprintf(item, sizeof item, "%d:%d", k, i);
      CHECK_ST(spw_buffer_insert_keyed(buf, key, (size_t)kl, item, (size_t)il), SPW_OK);
    }
  }
  /* The empty key (NULL, 0) is a key too. */
  CHECK_ST(spw_buffer_insert_keyed(buf, NULL, 0, "e:0", 3), SPW_OK);
  CHECK_ST(spw_buffer_insert_keyed(buf, NULL, 0, "e:1", 3), SPW_OK);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);

  CHECK(s.n == KEYS * PER_KEY + 2);
  for (int k = 0; k < KEYS; k++) {
    int next = 0;
    uint32_t part = UINT32_MAX;
    for (size_t j = 0; j < s.n; j++) {
      int key, n;
      if (s.item[j][0] == 'e') continue;
      CHECK(sscanf(s.item[j], "%d:%d", &key, &n) == 2);
      if (key != k) continue;
      CHECK(n == next); /* this key's order */
      next++;
      if (part == UINT32_MAX) part = s.partition[j];
      CHECK(s.partition[j] == part); /* one partition per key */
    }
    CHECK(next == PER_KEY);
  }
  size_t e0 = MAX_SEEN, e1 = MAX_SEEN;
  for (size_t j = 0; j < s.n; j++) {
    if (strcmp(s.item[j], "e:0") == 0) e0 = j;
    if (strcmp(s.item[j], "e:1") == 0) e1 = j;
  }
  CHECK(e0 < e1 && e1 < MAX_SEEN && s.partition[e0] == s.partition[e1]);
  /* Keys spread: not everything went to one partition (the hash is fixed). */
  bool spread = false;
  for (size_t j = 1; j < s.n; j++) spread = spread || s.partition[j] != s.partition[0];
  CHECK(spread);
  CHECK_ST(spw_buffer_insert_keyed(buf, "k", 1, "x", 1), SPW_ERR_CLOSED);
  spw_buffer_free(buf);
  pthread_mutex_destroy(&s.mu);
}

static void dump_takes_the_buffered_items_out(void) {
  seen s;
  spw_buffer *buf = new_buffer(&s, "1", NULL);
  spw_item *items = (spw_item *)&s; /* must stay untouched on failure */
  size_t count = 99;
  CHECK_ST(spw_buffer_dump(NULL, &items, &count), SPW_ERR_NULL);
  CHECK_ST(spw_buffer_dump(buf, NULL, &count), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_dump: items is NULL");
  CHECK_ST(spw_buffer_dump(buf, &items, NULL), SPW_ERR_NULL);
  CHECK(count == 99 && items == (spw_item *)&s);

  /* Nothing buffered: (NULL, 0). */
  CHECK_ST(spw_buffer_dump(buf, &items, &count), SPW_OK);
  CHECK(items == NULL && count == 0);
  spw_items_free(items, count);
  CHECK_NO_ERR();

  /* Fewer than max_size (7), so nothing flushes before the dump. */
  const char *in[5] = {"alpha", "", "gamma", "delta", "eps"};
  for (int i = 0; i < 5; i++) CHECK_ST(spw_buffer_insert(buf, in[i], strlen(in[i])), SPW_OK);
  CHECK_ST(spw_buffer_dump(buf, &items, &count), SPW_OK);
  CHECK_NO_ERR();
  CHECK(count == 5 && items != NULL);
  for (int i = 0; i < 5; i++) {
    CHECK(items[i].len == strlen(in[i]));
    CHECK((items[i].data == NULL) == (items[i].len == 0));
    if (items[i].len > 0) CHECK(memcmp(items[i].data, in[i], items[i].len) == 0);
  }
  spw_items_free(items, count);
  CHECK_NO_ERR();
  spw_items_free(NULL, 3);
  CHECK_ERR("spw_items_free: items (with count 3) is NULL");

  spw_stats st;
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.inserted == 5 && st.dumped == 5 && st.buffered == 0 && st.delivered == 0);
  CHECK(st.inserted == st.delivered + st.dropped + st.dumped + st.buffered + st.in_flight + st.spooled);
  CHECK_ST(spw_buffer_insert(buf, "after", 5), SPW_OK);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  CHECK(s.n == 1 && strcmp(s.item[0], "after") == 0); /* dumped items are never flushed */
  CHECK_ST(spw_buffer_stats(buf, &st), SPW_OK);
  CHECK(st.inserted == 6 && st.delivered == 1 && st.dumped == 5);
  /* After close it still works, and finds nothing. */
  CHECK_ST(spw_buffer_dump(buf, &items, &count), SPW_OK);
  CHECK(items == NULL && count == 0);
  spw_buffer_free(buf);
  pthread_mutex_destroy(&s.mu);
}

static void flush_info_carries_the_deadline_and_meta(void) {
  seen s;
  spw_buffer *buf = new_buffer(&s, "1", "topic=logs");
  CHECK_ST(spw_buffer_insert(buf, "a", 1), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  pthread_mutex_lock(&s.mu);
  CHECK(!s.meta_null && strcmp(s.last_meta, "topic=logs") == 0);
  /* flush_timeout is 30 s: some of it passed before the call, not most. */
  CHECK(s.last_info.deadline_ms > 20000 && s.last_info.deadline_ms <= 30000);
  pthread_mutex_unlock(&s.mu);
  CHECK_ST(spw_buffer_close(buf, 10000), SPW_OK);
  spw_buffer_free(buf);
  pthread_mutex_destroy(&s.mu);

  buf = new_buffer(&s, "1", NULL);
  CHECK_ST(spw_buffer_insert(buf, "a", 1), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  pthread_mutex_lock(&s.mu);
  CHECK(s.meta_null);
  pthread_mutex_unlock(&s.mu);
  spw_buffer_free(buf);
  pthread_mutex_destroy(&s.mu);
}

int main(void) {
  same_key_same_partition_same_order();
  dump_takes_the_buffered_items_out();
  flush_info_carries_the_deadline_and_meta();
  puts("buffer_v02: ok");
  return 0;
}
