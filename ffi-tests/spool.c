/* spw_spool_*: every function, NULLs, empty records, FIFO order, newest
   first (pop_newest/peek_newest), records kept across close and reopen, one
   open spool per directory, size limits from spw_config, damaged records
   skipped at open, and several threads. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "tmpdir.h"

static spw_spool *open_spool(const char *dir, const spw_config *cfg) {
  spw_spool *s = NULL;
  CHECK_ST(spw_spool_open(dir, cfg, &s), SPW_OK);
  CHECK_NO_ERR();
  CHECK(s != NULL);
  return s;
}

static uint64_t len_of(const spw_spool *s) {
  uint64_t n = 12345;
  CHECK_ST(spw_spool_len(s, &n), SPW_OK);
  CHECK_NO_ERR();
  return n;
}

static void push_str(spw_spool *s, const char *text) {
  CHECK_ST(spw_spool_push(s, text, strlen(text)), SPW_OK);
  CHECK_NO_ERR();
}

/* Pops the oldest record and checks it is `want` (NULL data when empty). */
static void pop_expect(spw_spool *s, const char *want) {
  uint8_t *data = (uint8_t *)"sentinel";
  size_t len = 999;
  CHECK_ST(spw_spool_pop(s, &data, &len), SPW_OK);
  CHECK_NO_ERR();
  CHECK(len == strlen(want));
  if (len == 0) {
    CHECK(data == NULL);
  } else {
    CHECK(data != NULL && memcmp(data, want, len) == 0);
  }
  spw_bytes_free(data, len);
  CHECK_NO_ERR();
}

static void peek_expect(spw_spool *s, const char *want) {
  uint8_t *data = NULL;
  size_t len = 999;
  CHECK_ST(spw_spool_peek(s, &data, &len), SPW_OK);
  CHECK(len == strlen(want));
  CHECK(len == 0 ? data == NULL : memcmp(data, want, len) == 0);
  spw_bytes_free(data, len);
}

/* Pops (pop_newest) or peeks (peek_newest) the newest record and checks it is
   `want` (NULL data when empty). */
static void newest_expect(spw_spool *s, bool pop, const char *want) {
  uint8_t *data = (uint8_t *)"sentinel";
  size_t len = 999;
  CHECK_ST(pop ? spw_spool_pop_newest(s, &data, &len) : spw_spool_peek_newest(s, &data, &len),
           SPW_OK);
  CHECK_NO_ERR();
  CHECK(len == strlen(want));
  if (len == 0) {
    CHECK(data == NULL);
  } else {
    CHECK(data != NULL && memcmp(data, want, len) == 0);
  }
  spw_bytes_free(data, len);
  CHECK_NO_ERR();
}

/* pop and peek on an empty spool: SPW_ERR_EMPTY, outputs untouched. */
static void expect_empty(spw_spool *s) {
  uint8_t sentinel = 0;
  uint8_t *data = &sentinel;
  size_t len = 77;
  CHECK_ST(spw_spool_pop(s, &data, &len), SPW_ERR_EMPTY);
  CHECK_ERR("spw_spool_pop: spool is empty");
  CHECK(data == &sentinel && len == 77);
  CHECK_ST(spw_spool_peek(s, &data, &len), SPW_ERR_EMPTY);
  CHECK_ERR("spw_spool_peek: spool is empty");
  CHECK(data == &sentinel && len == 77);
  CHECK_ST(spw_spool_pop_newest(s, &data, &len), SPW_ERR_EMPTY);
  CHECK_ERR("spw_spool_pop_newest: spool is empty");
  CHECK(data == &sentinel && len == 77);
  CHECK_ST(spw_spool_peek_newest(s, &data, &len), SPW_ERR_EMPTY);
  CHECK_ERR("spw_spool_peek_newest: spool is empty");
  CHECK(data == &sentinel && len == 77);
  CHECK(len_of(s) == 0);
}

static void nulls_are_refused_and_change_nothing(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool");
  spw_spool *s = (spw_spool *)&dir; /* must stay as it is on failure */
  CHECK_ST(spw_spool_open(NULL, NULL, &s), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_open: dir is NULL");
  CHECK_ST(spw_spool_open(dir, NULL, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_open: out is NULL");
  CHECK_ST(spw_spool_open("", NULL, &s), SPW_ERR_INVALID);
  CHECK_ERR("spw_spool_open: dir is empty");
  CHECK_ST(spw_spool_open("/tmp/\xff", NULL, &s), SPW_ERR_INVALID);
  CHECK_ERR("dir is not valid UTF-8");
  CHECK(s == (spw_spool *)&dir);

  s = open_spool(dir, NULL);
  push_str(s, "kept");

  uint8_t *data = NULL;
  size_t len = 0;
  uint64_t n = 0;
  CHECK_ST(spw_spool_push(NULL, "x", 1), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_push: s is NULL");
  CHECK_ST(spw_spool_push(s, NULL, 3), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_push: data is NULL");
  CHECK_ST(spw_spool_pop(NULL, &data, &len), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_pop: s is NULL");
  CHECK_ST(spw_spool_pop(s, NULL, &len), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_pop: data is NULL");
  CHECK_ST(spw_spool_pop(s, &data, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_pop: len is NULL");
  CHECK_ST(spw_spool_peek(NULL, &data, &len), SPW_ERR_NULL);
  CHECK_ST(spw_spool_peek(s, NULL, &len), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_peek: data is NULL");
  CHECK_ST(spw_spool_peek(s, &data, NULL), SPW_ERR_NULL);
  CHECK_ST(spw_spool_pop_newest(NULL, &data, &len), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_pop_newest: s is NULL");
  CHECK_ST(spw_spool_pop_newest(s, NULL, &len), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_pop_newest: data is NULL");
  CHECK_ST(spw_spool_pop_newest(s, &data, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_pop_newest: len is NULL");
  CHECK_ST(spw_spool_peek_newest(NULL, &data, &len), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_peek_newest: s is NULL");
  CHECK_ST(spw_spool_peek_newest(s, NULL, &len), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_peek_newest: data is NULL");
  CHECK_ST(spw_spool_peek_newest(s, &data, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_peek_newest: len is NULL");
  CHECK_ST(spw_spool_flush(NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_flush: s is NULL");
  CHECK_ST(spw_spool_len(NULL, &n), SPW_ERR_NULL);
  CHECK_ST(spw_spool_len(s, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_len: out is NULL");
  CHECK_ST(spw_spool_skipped(NULL, &n), SPW_ERR_NULL);
  CHECK_ST(spw_spool_skipped(s, NULL), SPW_ERR_NULL);
  CHECK_ST(spw_spool_close(NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spool_close: s is NULL");
  CHECK(data == NULL && len == 0 && n == 0);

  /* None of the refused calls took the record out. */
  CHECK(len_of(s) == 1);
  pop_expect(s, "kept");
  spw_spool_free(s);
  CHECK_NO_ERR();
  spw_spool_free(NULL);
  CHECK_NO_ERR();
  remove_dir(dir);
}

static void records_come_out_oldest_first(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool");
  spw_spool *s = open_spool(dir, NULL);
  expect_empty(s);
  uint64_t skipped = 99;
  CHECK_ST(spw_spool_skipped(s, &skipped), SPW_OK);
  CHECK(skipped == 0);

  push_str(s, "one");
  CHECK_ST(spw_spool_push(s, NULL, 0), SPW_OK); /* an empty record */
  CHECK_ST(spw_spool_push(s, "ignored", 0), SPW_OK); /* also empty */
  push_str(s, "three");
  CHECK(len_of(s) == 4);
  peek_expect(s, "one");
  CHECK(len_of(s) == 4); /* peek leaves it */
  pop_expect(s, "one");
  peek_expect(s, "");
  pop_expect(s, "");
  pop_expect(s, "");
  CHECK(len_of(s) == 1);
  push_str(s, "four");
  pop_expect(s, "three");
  pop_expect(s, "four");
  expect_empty(s);

  /* Many records, through the disk: still in order. */
  char item[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(item, sizeof item, "record %d", i);
    push_str(s, item);
  }
  CHECK_ST(spw_spool_flush(s), SPW_OK);
  CHECK_NO_ERR();
  CHECK(len_of(s) == 1000);
  for (int i = 0; i < 1000; i++) {
    snprintf(item, sizeof item, "record %d", i);
    pop_expect(s, item);
  }
  expect_empty(s);
  CHECK_ST(spw_spool_close(s), SPW_OK);
  spw_spool_free(s);
  remove_dir(dir);
}

/* Newest first: the spool as a stack, mixed with oldest-first pops, in
   memory and on disk, and kept that way across close and reopen. */
static void newest_first_takes_from_the_other_end(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool");
  spw_spool *s = open_spool(dir, NULL);
  expect_empty(s);

  push_str(s, "one");
  CHECK_ST(spw_spool_push(s, NULL, 0), SPW_OK); /* an empty record */
  push_str(s, "three");
  newest_expect(s, false, "three");
  CHECK(len_of(s) == 3); /* peek leaves it */
  newest_expect(s, true, "three");
  newest_expect(s, false, "");
  newest_expect(s, true, "");
  push_str(s, "four");
  newest_expect(s, true, "four");
  newest_expect(s, true, "one"); /* the oldest is also the newest now */
  expect_empty(s);

  /* Many records, through the disk: newest first from one end, oldest
     first from the other, each record exactly once. */
  char item[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(item, sizeof item, "record %d", i);
    push_str(s, item);
  }
  CHECK_ST(spw_spool_flush(s), SPW_OK);
  for (int i = 999; i >= 600; i--) {
    snprintf(item, sizeof item, "record %d", i);
    newest_expect(s, i % 2 == 0, item);
    if (i % 2 != 0) newest_expect(s, true, item); /* a peek, then its pop */
  }
  for (int i = 0; i < 100; i++) {
    snprintf(item, sizeof item, "record %d", i);
    pop_expect(s, item);
  }
  CHECK(len_of(s) == 500);

  /* What newest-first took is gone after a flush, close and reopen. */
  CHECK_ST(spw_spool_flush(s), SPW_OK);
  CHECK_ST(spw_spool_close(s), SPW_OK);
  spw_spool_free(s);
  s = open_spool(dir, NULL);
  CHECK(len_of(s) == 500);
  newest_expect(s, false, "record 599");
  peek_expect(s, "record 100");
  push_str(s, "after reopen");
  newest_expect(s, true, "after reopen");
  for (int i = 599; i >= 100; i--) {
    snprintf(item, sizeof item, "record %d", i);
    newest_expect(s, true, item);
  }
  expect_empty(s);
  spw_spool_free(s);
  CHECK_NO_ERR();
  remove_dir(dir);
}

static void records_survive_close_and_reopen(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool");
  spw_spool *s = open_spool(dir, NULL);
  push_str(s, "a");
  push_str(s, "");
  push_str(s, "c");
  CHECK_ST(spw_spool_flush(s), SPW_OK);
  CHECK_ST(spw_spool_close(s), SPW_OK);
  CHECK_NO_ERR();
  CHECK_ST(spw_spool_close(s), SPW_OK); /* again: nothing to do */

  /* Closed: every call but close and free is refused, outputs untouched. */
  uint8_t *data = NULL;
  size_t len = 5;
  uint64_t n = 6;
  CHECK_ST(spw_spool_push(s, "x", 1), SPW_ERR_CLOSED);
  CHECK_ERR("spw_spool_push: spool is closed");
  CHECK_ST(spw_spool_pop(s, &data, &len), SPW_ERR_CLOSED);
  CHECK_ERR("spw_spool_pop: spool is closed");
  CHECK_ST(spw_spool_peek(s, &data, &len), SPW_ERR_CLOSED);
  CHECK_ST(spw_spool_pop_newest(s, &data, &len), SPW_ERR_CLOSED);
  CHECK_ERR("spw_spool_pop_newest: spool is closed");
  CHECK_ST(spw_spool_peek_newest(s, &data, &len), SPW_ERR_CLOSED);
  CHECK_ERR("spw_spool_peek_newest: spool is closed");
  CHECK_ST(spw_spool_flush(s), SPW_ERR_CLOSED);
  CHECK_ST(spw_spool_len(s, &n), SPW_ERR_CLOSED);
  CHECK_ST(spw_spool_skipped(s, &n), SPW_ERR_CLOSED);
  CHECK(data == NULL && len == 5 && n == 6);
  spw_spool_free(s);
  CHECK_NO_ERR();

  /* Reopened: all three, in order. A pop is kept by close. */
  s = open_spool(dir, NULL);
  CHECK(len_of(s) == 3);
  pop_expect(s, "a");
  CHECK_ST(spw_spool_close(s), SPW_OK);
  spw_spool_free(s);

  /* free closes (and so flushes) a spool still open. */
  s = open_spool(dir, NULL);
  CHECK(len_of(s) == 2);
  pop_expect(s, "");
  push_str(s, "d");
  spw_spool_free(s);
  CHECK_NO_ERR();

  s = open_spool(dir, NULL);
  CHECK(len_of(s) == 2);
  pop_expect(s, "c");
  pop_expect(s, "d");
  expect_empty(s);
  spw_spool_free(s);
  remove_dir(dir);
}

static void one_open_spool_per_directory(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool");
  spw_spool *first = open_spool(dir, NULL);
  push_str(first, "mine");
  spw_spool *second = NULL;
  CHECK_ST(spw_spool_open(dir, NULL, &second), SPW_ERR_IO);
  CHECK_ERR("spw_spool_open: another process (or another open spw_spool) holds the spool "
            "directory",
            dir, "lock");
  CHECK(second == NULL);
  /* The first one is unaffected. */
  push_str(first, "still mine");
  CHECK(len_of(first) == 2);

  /* Once it is closed, the directory is free again. */
  CHECK_ST(spw_spool_close(first), SPW_OK);
  second = open_spool(dir, NULL);
  CHECK(len_of(second) == 2);
  pop_expect(second, "mine");
  pop_expect(second, "still mine");
  spw_spool_free(second);
  spw_spool_free(first);
  remove_dir(dir);
}

static void the_config_sets_size_and_sync(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool");
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  /* Keys the spool does not use are ignored, spool_dir included. */
  CHECK_ST(spw_config_set(cfg, "spool_dir", "/nonexistent/elsewhere"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "max_size", "7"), SPW_OK);

  /* 1 KiB: records up to 512 bytes; each takes 16 more on disk. */
  CHECK_ST(spw_config_set(cfg, "spool_max_bytes", "1KiB"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "spool_sync", "always"), SPW_OK);
  spw_spool *s = open_spool(dir, cfg);
  static char big[513];
  memset(big, 'b', sizeof big);
  CHECK_ST(spw_spool_push(s, big, 513), SPW_ERR_INVALID);
  CHECK_ERR("spw_spool_push: record of 513 bytes is larger than max_record (512 bytes)");
  CHECK(len_of(s) == 0);
  CHECK_ST(spw_spool_push(s, big, 512), SPW_OK);
  /* 100-byte records: 116 bytes on disk, so 4 more fit after 528. */
  int pushed = 0;
  spw_status st;
  while ((st = spw_spool_push(s, big, 100)) == SPW_OK) pushed++;
  CHECK_ST(st, SPW_ERR_FULL);
  CHECK_ERR("spw_spool_push: spool is full", "100-byte record was not stored",
            "pop records to make room");
  CHECK(pushed == 4);
  CHECK(len_of(s) == 5);
  /* Popping makes room again. */
  uint8_t *data = NULL;
  size_t len = 0;
  CHECK_ST(spw_spool_pop(s, &data, &len), SPW_OK);
  CHECK(len == 512);
  spw_bytes_free(data, len);
  CHECK_ST(spw_spool_push(s, big, 100), SPW_OK);
  spw_spool_free(s);
  remove_dir(dir);

  /* Too small to make a spool: the message names the key. */
  make_dir(dir, "spool");
  CHECK_ST(spw_config_set(cfg, "spool_max_bytes", "13"), SPW_OK);
  s = NULL;
  CHECK_ST(spw_spool_open(dir, cfg, &s), SPW_ERR_INVALID);
  CHECK_ERR("spw_spool_open: spool_max_bytes (13 bytes) cannot make a spool");
  CHECK(s == NULL);

  /* Every sync mode opens and keeps its records. */
  const char *const modes[] = {"always", "batch", "interval", "never"};
  CHECK_ST(spw_config_set(cfg, "spool_max_bytes", "10MiB"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "spool_sync_interval", "10ms"), SPW_OK);
  for (int m = 0; m < 4; m++) {
    CHECK_ST(spw_config_set(cfg, "spool_sync", modes[m]), SPW_OK);
    s = open_spool(dir, cfg);
    push_str(s, modes[m]);
    CHECK_ST(spw_spool_close(s), SPW_OK);
    spw_spool_free(s);
  }
  spw_config_free(cfg); /* open copied what it needed */
  s = open_spool(dir, NULL);
  for (int m = 0; m < 4; m++) pop_expect(s, modes[m]);
  expect_empty(s);
  spw_spool_free(s);
  remove_dir(dir);
}

enum { PATH_MAX_LEN = 320 };

/* The one segment file in dir (written into path, PATH_MAX_LEN bytes). */
static void find_segment(const char *dir, char *path) {
  DIR *d = opendir(dir);
  CHECK(d != NULL);
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0) {
      int n_out = snprintf(path, PATH_MAX_LEN, "%s/%s", dir, e->d_name);
      CHECK(n_out > 0 && n_out < PATH_MAX_LEN);
      found++;
    }
  }
  closedir(d);
  CHECK(found == 1);
}

static void damaged_records_are_skipped_and_counted(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool");
  spw_spool *s = open_spool(dir, NULL);
  push_str(s, "first");
  push_str(s, "second");
  push_str(s, "third");
  spw_spool_free(s);

  /* Frames are 16 header bytes and the payload: flip a byte of "second". */
  char seg[PATH_MAX_LEN];
  find_segment(dir, seg);
  int fd = open(seg, O_RDWR);
  CHECK(fd >= 0);
  off_t at = 16 + 5 + 16 + 2;
  char c = 0;
  CHECK(pread(fd, &c, 1, at) == 1);
  CHECK(c == 'c');
  c = 'X';
  CHECK(pwrite(fd, &c, 1, at) == 1);
  CHECK(close(fd) == 0);

  s = open_spool(dir, NULL); /* not an error */
  uint64_t skipped = 0;
  CHECK_ST(spw_spool_skipped(s, &skipped), SPW_OK);
  CHECK_NO_ERR();
  CHECK(skipped == 1);
  CHECK(len_of(s) == 2);
  pop_expect(s, "first");
  pop_expect(s, "third");
  expect_empty(s);
  spw_spool_free(s);
  remove_dir(dir);
}

enum { THREADS = 4, PER_THREAD = 200 };

typedef struct {
  spw_spool *s;
  int id;
} pusher;

static void *push_many(void *arg) {
  pusher *p = arg;
  char item[16];
  for (int i = 0; i < PER_THREAD; i++) {
    int len = snprintf(item, sizeof item, "%d:%d", p->id, i);
    CHECK_ST(spw_spool_push(p->s, item, (size_t)len), SPW_OK);
  }
  return NULL;
}

static void threads_share_one_spool(void) {
  char dir[TMPDIR_LEN];
  make_dir(dir, "spool");
  spw_spool *s = open_spool(dir, NULL);
  pthread_t t[THREADS];
  pusher p[THREADS];
  for (int i = 0; i < THREADS; i++) {
    p[i] = (pusher){s, i};
    CHECK(pthread_create(&t[i], NULL, push_many, &p[i]) == 0);
  }
  for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
  CHECK(len_of(s) == THREADS * PER_THREAD);

  /* Each thread's records come out in the order it pushed them. */
  int next[THREADS] = {0};
  for (int k = 0; k < THREADS * PER_THREAD; k++) {
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_ST(spw_spool_pop(s, &data, &len), SPW_OK);
    char item[16] = {0};
    CHECK(len > 0 && len < sizeof item);
    memcpy(item, data, len);
    spw_bytes_free(data, len);
    int id = -1, i = -1;
    CHECK(sscanf(item, "%d:%d", &id, &i) == 2);
    CHECK(id >= 0 && id < THREADS && i == next[id]);
    next[id]++;
  }
  for (int i = 0; i < THREADS; i++) CHECK(next[i] == PER_THREAD);
  expect_empty(s);
  spw_spool_free(s);
  remove_dir(dir);
}

int main(void) {
  nulls_are_refused_and_change_nothing();
  records_come_out_oldest_first();
  newest_first_takes_from_the_other_end();
  records_survive_close_and_reopen();
  one_open_spool_per_directory();
  the_config_sets_size_and_sync();
  damaged_records_are_skipped_and_counted();
  threads_share_one_spool();
  return 0;
}
