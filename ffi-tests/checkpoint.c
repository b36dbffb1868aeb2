/* spw_checkpoint_*: open (missing file, damaged file, bad arguments),
   persist/get/flush/shutdown, each (the walk over every entry), the YAML
   file itself, reopening, background writes, NULLs and free(NULL). */
#define _XOPEN_SOURCE 700
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "tmpdir.h"

enum { PATH_LEN = TMPDIR_LEN + 32, FILE_MAX = 4096 };

/* 2016-08-30T12:34:56.123Z and 1969-12-31T23:59:59Z, as unix milliseconds. */
static const int64_t T_2016 = 1472560496123;
static const int64_t T_1969 = -1000;

static void path_in(char path[PATH_LEN], const char *dir, const char *name) {
  int n = snprintf(path, PATH_LEN, "%s/%s", dir, name);
  CHECK(n > 0 && n < PATH_LEN);
}

/* The file's contents, NUL-terminated, in buf (FILE_MAX bytes); its length. */
static size_t read_file(const char *path, char *buf) {
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  size_t n = fread(buf, 1, FILE_MAX - 1, f);
  CHECK(ferror(f) == 0 && feof(f));
  CHECK(fclose(f) == 0);
  buf[n] = '\0';
  return n;
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  CHECK(fwrite(data, 1, len, f) == len);
  CHECK(fclose(f) == 0);
}

static bool file_contains(const char *path, const char *text) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return false;
  static char buf[FILE_MAX];
  size_t n = fread(buf, 1, FILE_MAX - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strstr(buf, text) != NULL;
}

static spw_checkpoint *open_cp(const char *path, uint32_t max_updates, uint64_t interval_ms) {
  spw_checkpoint *cp = NULL;
  CHECK_ST(spw_checkpoint_open(path, max_updates, interval_ms, &cp), SPW_OK);
  CHECK_NO_ERR();
  CHECK(cp != NULL);
  return cp;
}

static void get_expect(const spw_checkpoint *cp, const char *name, uint64_t number, int64_t ms) {
  uint64_t got_number = 0;
  int64_t got_ms = 0;
  CHECK_ST(spw_checkpoint_get(cp, name, &got_number, &got_ms), SPW_OK);
  CHECK_NO_ERR();
  CHECK(got_number == number);
  CHECK(got_ms == ms);
}

/* Waits up to 10 s for the file to contain text (the writer thread's work). */
static void wait_for_file(const char *path, const char *text) {
  struct timespec pause = {0, 5 * 1000 * 1000};
  for (int i = 0; i < 2000; i++) {
    if (file_contains(path, text)) return;
    nanosleep(&pause, NULL);
  }
  CHECK(!"the writer thread did not write in 10 s");
}

static void state_is_saved_and_loaded(void) {
  char dir[TMPDIR_LEN], path[PATH_LEN];
  make_dir(dir, "checkpoint");
  path_in(path, dir, "sub/cp.yaml"); /* the parent is created */

  /* A missing file is an empty state, and opening writes nothing. */
  spw_checkpoint *cp = open_cp(path, 1000, UINT64_MAX);
  uint64_t number = 77;
  int64_t ms = 88;
  CHECK_ST(spw_checkpoint_get(cp, "System", &number, &ms), SPW_ERR_EMPTY);
  CHECK_ERR("spw_checkpoint_get: no position is saved for \"System\"");
  CHECK(number == 77 && ms == 88);
  CHECK(fopen(path, "rb") == NULL);

  CHECK_ST(spw_checkpoint_persist(cp, "System", 41, 0), SPW_OK);
  CHECK_NO_ERR();
  CHECK_ST(spw_checkpoint_persist(cp, "System", 42, T_2016), SPW_OK); /* replaces */
  CHECK_ST(spw_checkpoint_persist(cp, "Application", 7, T_1969), SPW_OK);
  CHECK_ST(spw_checkpoint_persist(cp, "", 0, 0), SPW_OK); /* any name */
  get_expect(cp, "System", 42, T_2016);
  get_expect(cp, "Application", 7, T_1969);
  get_expect(cp, "", 0, 0);

  CHECK_ST(spw_checkpoint_flush(cp), SPW_OK);
  CHECK_NO_ERR();
  static char text[FILE_MAX];
  read_file(path, text);
  CHECK(strncmp(text, "update_time: ", 13) == 0);
  CHECK(strstr(text, "\nevent_logs:\n") != NULL);
  CHECK(strstr(text, "- name: System\n  record_number: 42\n"
                     "  timestamp: 2016-08-30T12:34:56.123000000Z\n") != NULL);
  CHECK(strstr(text, "- name: Application\n  record_number: 7\n"
                     "  timestamp: 1969-12-31T23:59:59.000000000Z\n") != NULL);
  CHECK(strstr(text, "\n# crc32c: ") != NULL);

  CHECK_ST(spw_checkpoint_shutdown(cp), SPW_OK);
  CHECK_NO_ERR();
  CHECK_ST(spw_checkpoint_shutdown(cp), SPW_OK); /* idempotent */
  CHECK_ST(spw_checkpoint_persist(cp, "System", 43, T_2016), SPW_ERR_CLOSED);
  CHECK_ERR("spw_checkpoint_persist: checkpoint is shut down");
  get_expect(cp, "System", 42, T_2016); /* unchanged, and get still answers */
  CHECK_ST(spw_checkpoint_flush(cp), SPW_OK);
  spw_checkpoint_free(cp);
  CHECK_NO_ERR();

  /* Reopened: the same state, exactly. */
  cp = open_cp(path, 1000, UINT64_MAX);
  get_expect(cp, "System", 42, T_2016);
  get_expect(cp, "Application", 7, T_1969);
  get_expect(cp, "", 0, 0);
  /* free shuts down, which writes what is unsaved. */
  CHECK_ST(spw_checkpoint_persist(cp, "Security", UINT64_MAX, INT64_C(253402300799999)), SPW_OK);
  spw_checkpoint_free(cp);
  CHECK_NO_ERR();

  cp = open_cp(path, 1000, UINT64_MAX);
  get_expect(cp, "Security", UINT64_MAX, INT64_C(253402300799999)); /* 9999-12-31T23:59:59.999Z */
  get_expect(cp, "System", 42, T_2016);
  spw_checkpoint_free(cp);
  remove_dir(dir);
}

/* What spw_checkpoint_each hands its callback, gathered by `collect`. */
enum { WALK_MAX = 8 };
typedef struct {
  char names[WALK_MAX][32];
  uint64_t numbers[WALK_MAX];
  int64_t ms[WALK_MAX];
  size_t count;
  size_t stop_after; /* 0: never stop */
} walk;

static int collect(void *user_data, const char *name, uint64_t record_number,
                   int64_t timestamp_ms) {
  walk *w = user_data;
  CHECK(w->count < WALK_MAX);
  CHECK(name != NULL && strlen(name) < sizeof w->names[0]);
  strcpy(w->names[w->count], name); /* the name is valid during the call only */
  w->numbers[w->count] = record_number;
  w->ms[w->count] = timestamp_ms;
  w->count++;
  return w->count == w->stop_after;
}

static int never_called(void *user_data, const char *name, uint64_t n, int64_t ms) {
  (void)user_data, (void)name, (void)n, (void)ms;
  CHECK(!"the callback ran for a checkpoint with no entries");
  return 1;
}

static void walk_expect(const walk *w, size_t i, const char *name, uint64_t number, int64_t ms) {
  CHECK(i < w->count);
  CHECK(strcmp(w->names[i], name) == 0);
  CHECK(w->numbers[i] == number);
  CHECK(w->ms[i] == ms);
}

static void each_walks_every_entry_sorted_by_name(void) {
  char dir[TMPDIR_LEN], path[PATH_LEN];
  make_dir(dir, "checkpoint");
  path_in(path, dir, "cp.yaml");
  spw_checkpoint *cp = open_cp(path, 1000, UINT64_MAX);

  /* Empty: SPW_OK, and the callback is not called. */
  CHECK_ST(spw_checkpoint_each(cp, never_called, NULL), SPW_OK);
  CHECK_NO_ERR();

  CHECK_ST(spw_checkpoint_persist(cp, "System", 42, T_2016), SPW_OK);
  CHECK_ST(spw_checkpoint_persist(cp, "Application", 7, T_1969), SPW_OK);
  CHECK_ST(spw_checkpoint_persist(cp, "Security", 1, 0), SPW_OK);
  CHECK_ST(spw_checkpoint_persist(cp, "", 0, 5), SPW_OK);

  walk w = {.count = 0};
  CHECK_ST(spw_checkpoint_each(cp, collect, &w), SPW_OK);
  CHECK_NO_ERR();
  CHECK(w.count == 4);
  walk_expect(&w, 0, "", 0, 5);
  walk_expect(&w, 1, "Application", 7, T_1969);
  walk_expect(&w, 2, "Security", 1, 0);
  walk_expect(&w, 3, "System", 42, T_2016);

  /* A non-zero return stops the walk; still SPW_OK. */
  walk first_two = {.stop_after = 2};
  CHECK_ST(spw_checkpoint_each(cp, collect, &first_two), SPW_OK);
  CHECK_NO_ERR();
  CHECK(first_two.count == 2);
  walk_expect(&first_two, 1, "Application", 7, T_1969);

  /* NULLs are refused, and the callback does not run. */
  walk none = {.count = 0};
  CHECK_ST(spw_checkpoint_each(NULL, collect, &none), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_each: cp is NULL");
  CHECK_ST(spw_checkpoint_each(cp, NULL, &none), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_each: fn is NULL");
  CHECK(none.count == 0);

  /* Loaded entries are walked too, and after shutdown as well. */
  spw_checkpoint_free(cp);
  cp = open_cp(path, 1000, UINT64_MAX);
  CHECK_ST(spw_checkpoint_shutdown(cp), SPW_OK);
  walk loaded = {.count = 0};
  CHECK_ST(spw_checkpoint_each(cp, collect, &loaded), SPW_OK);
  CHECK(loaded.count == 4);
  walk_expect(&loaded, 3, "System", 42, T_2016);
  spw_checkpoint_free(cp);
  remove_dir(dir);
}

static void the_writer_thread_saves_on_its_own(void) {
  char dir[TMPDIR_LEN], path[PATH_LEN];
  make_dir(dir, "checkpoint");

  /* After max_updates updates. */
  path_in(path, dir, "by-count.yaml");
  spw_checkpoint *cp = open_cp(path, 2, UINT64_MAX);
  CHECK_ST(spw_checkpoint_persist(cp, "a", 1, T_2016), SPW_OK);
  CHECK_ST(spw_checkpoint_persist(cp, "a", 2, T_2016), SPW_OK);
  wait_for_file(path, "record_number: 2\n");
  spw_checkpoint_free(cp);

  /* After the interval. */
  path_in(path, dir, "by-time.yaml");
  cp = open_cp(path, 1000, 20);
  CHECK_ST(spw_checkpoint_persist(cp, "b", 5, T_2016), SPW_OK);
  wait_for_file(path, "record_number: 5\n");
  spw_checkpoint_free(cp);
  remove_dir(dir);
}

/* Opening a damaged file fails, names it, and leaves it as it was. */
static void expect_corrupt(const char *path, const char *data, size_t len) {
  write_file(path, data, len);
  spw_checkpoint *cp = (spw_checkpoint *)&len;
  CHECK_ST(spw_checkpoint_open(path, 10, 1000, &cp), SPW_ERR_CORRUPT);
  CHECK_ERR("spw_checkpoint_open: checkpoint file", path, "is corrupt", "left untouched");
  CHECK(cp == (spw_checkpoint *)&len);
  static char after[FILE_MAX];
  CHECK(read_file(path, after) == len);
  CHECK(memcmp(after, data, len) == 0);
}

static void damaged_files_are_refused_and_kept(void) {
  char dir[TMPDIR_LEN], path[PATH_LEN];
  make_dir(dir, "checkpoint");
  path_in(path, dir, "cp.yaml");

  expect_corrupt(path, "not: [a checkpoint\n", 19);
  expect_corrupt(path, "", 0);
  const char *no_sum = "update_time: 2016-08-30T12:34:56Z\nevent_logs: []\n";
  expect_corrupt(path, no_sum, strlen(no_sum));

  /* A real file cut short, and one with a changed byte. */
  CHECK(remove(path) == 0);
  spw_checkpoint *cp = open_cp(path, 10, 1000);
  CHECK_ST(spw_checkpoint_persist(cp, "System", 42, T_2016), SPW_OK);
  spw_checkpoint_free(cp);
  static char good[FILE_MAX];
  size_t len = read_file(path, good);
  CHECK(len > 20);
  expect_corrupt(path, good, len - 3);
  static char changed[FILE_MAX];
  memcpy(changed, good, len);
  char *digit = strstr(changed, "record_number: 42");
  CHECK(digit != NULL);
  digit[strlen("record_number: ")] = '5';
  expect_corrupt(path, changed, len);

  /* Put back whole, it opens again. */
  write_file(path, good, len);
  cp = open_cp(path, 10, 1000);
  get_expect(cp, "System", 42, T_2016);
  spw_checkpoint_free(cp);
  remove_dir(dir);
}

static void bad_arguments_are_invalid(void) {
  char dir[TMPDIR_LEN], path[PATH_LEN];
  make_dir(dir, "checkpoint");
  path_in(path, dir, "cp.yaml");
  spw_checkpoint *cp = NULL;
  CHECK_ST(spw_checkpoint_open(path, 0, 1000, &cp), SPW_ERR_INVALID);
  CHECK_ERR("spw_checkpoint_open: invalid checkpoint argument: max_updates must be at least 1");
  CHECK_ST(spw_checkpoint_open(path, 10, 0, &cp), SPW_ERR_INVALID);
  CHECK_ERR("spw_checkpoint_open", "interval must be longer than zero");
  CHECK_ST(spw_checkpoint_open("", 10, 1000, &cp), SPW_ERR_INVALID);
  CHECK_ERR("has no file name");
  CHECK_ST(spw_checkpoint_open("/tmp/\xff.yaml", 10, 1000, &cp), SPW_ERR_INVALID);
  CHECK_ERR("path is not valid UTF-8");
  CHECK(cp == NULL);

  cp = open_cp(path, 10, 1000);
  /* Years 0000-9999 only; a refused update changes nothing. */
  CHECK_ST(spw_checkpoint_persist(cp, "s", 1, T_2016), SPW_OK);
  const int64_t bad_times[] = {INT64_C(253402300800000), INT64_C(-62167219200001), INT64_MAX,
                               INT64_MIN};
  for (int i = 0; i < 4; i++) {
    CHECK_ST(spw_checkpoint_persist(cp, "s", 2, bad_times[i]), SPW_ERR_INVALID);
    CHECK_ERR("spw_checkpoint_persist", "0000-9999");
  }
  CHECK_ST(spw_checkpoint_persist(cp, "s", 3, INT64_C(-62167219200000)), SPW_OK); /* 0000-01-01 */
  get_expect(cp, "s", 3, INT64_C(-62167219200000));
  CHECK_ST(spw_checkpoint_persist(cp, "bad\xff", 1, 0), SPW_ERR_INVALID);
  CHECK_ERR("name is not valid UTF-8");
  uint64_t number = 5;
  int64_t ms = 6;
  CHECK_ST(spw_checkpoint_get(cp, "bad\xff", &number, &ms), SPW_ERR_INVALID);
  CHECK(number == 5 && ms == 6);
  spw_checkpoint_free(cp);
  remove_dir(dir);
}

static void nulls_are_refused(void) {
  char dir[TMPDIR_LEN], path[PATH_LEN];
  make_dir(dir, "checkpoint");
  path_in(path, dir, "cp.yaml");
  spw_checkpoint *cp = NULL;
  CHECK_ST(spw_checkpoint_open(NULL, 10, 1000, &cp), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_open: path is NULL");
  CHECK_ST(spw_checkpoint_open(path, 10, 1000, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_open: out is NULL");
  CHECK(cp == NULL);

  cp = open_cp(path, 10, 1000);
  CHECK_ST(spw_checkpoint_persist(cp, "s", 9, 0), SPW_OK);
  uint64_t number = 1;
  int64_t ms = 2;
  CHECK_ST(spw_checkpoint_persist(NULL, "s", 1, 0), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_persist: cp is NULL");
  CHECK_ST(spw_checkpoint_persist(cp, NULL, 1, 0), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_persist: name is NULL");
  CHECK_ST(spw_checkpoint_get(NULL, "s", &number, &ms), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_get: cp is NULL");
  CHECK_ST(spw_checkpoint_get(cp, NULL, &number, &ms), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_get: name is NULL");
  CHECK_ST(spw_checkpoint_get(cp, "s", NULL, &ms), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_get: record_number is NULL");
  CHECK_ST(spw_checkpoint_get(cp, "s", &number, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_get: timestamp_ms is NULL");
  CHECK(number == 1 && ms == 2);
  CHECK_ST(spw_checkpoint_flush(NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_flush: cp is NULL");
  CHECK_ST(spw_checkpoint_shutdown(NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_checkpoint_shutdown: cp is NULL");
  get_expect(cp, "s", 9, 0); /* nothing changed */
  spw_checkpoint_free(cp);
  CHECK_NO_ERR();
  spw_checkpoint_free(NULL);
  CHECK_NO_ERR();
  remove_dir(dir);
}

int main(void) {
  state_is_saved_and_loaded();
  each_walks_every_entry_sorted_by_name();
  the_writer_thread_saves_on_its_own();
  damaged_files_are_refused_and_kept();
  bad_arguments_are_invalid();
  nulls_are_refused();
  return 0;
}
