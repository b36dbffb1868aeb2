/* spw_config_*: every key from text, refusals that name the key, YAML files
   (good, bad, missing), NULLs, and that spw_buffer_new sees what was set. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

/* Writes text to a new temporary file; its path goes to path (>= 32 bytes). */
static void write_temp(char *path, const char *text) {
  strcpy(path, "/tmp/spw_config_XXXXXX");
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  size_t len = strlen(text);
  CHECK(write(fd, text, len) == (ssize_t)len);
  CHECK(close(fd) == 0);
}

static atomic_ulong calls;
static atomic_ulong last_count;
static atomic_uint last_reason;

static int count_batches(void *user_data, const spw_item *items, size_t count,
                         const spw_flush_info *info) {
  (void)user_data;
  (void)items;
  atomic_fetch_add(&calls, 1);
  atomic_store(&last_count, count);
  atomic_store(&last_reason, info->reason);
  return 0;
}

/* Builds a buffer from cfg, expecting status want; frees it when built
   (so on failure spw_last_error() still describes it). */
static void check_builds(const spw_config *cfg, spw_status want) {
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, count_batches, NULL, &buf), want);
  CHECK((buf != NULL) == (want == SPW_OK));
  if (buf != NULL) spw_buffer_free(buf);
}

static void every_key_is_accepted_from_text(void) {
  static const char *const pairs[][2] = {
      {"name", "events"},          {"max_size", "500"},
      {"max_size_jitter", "10"},   {"max_bytes", "64KiB"},
      {"max_bytes", "0"},          {"flush_interval", "250ms"},
      {"flush_interval", "2s"},    {"flush_interval", "1500"},
      {"flush_jitter", "1m"},      {"flush_timeout", "2s"},
      {"flush_meta", "topic=a"},   {"partitions", "4"},
      {"capacity", "20000"},       {"capacity_bytes", "1MiB"},
      {"overflow", "block"},
      {"overflow", "drop_newest"}, {"overflow", "drop_oldest"},
      {"overflow", "reject"},      {"overflow", "spill"},
      {"block_timeout", "0"},      {"max_retries", "0"},
      {"retry_backoff", "10ms"},   {"retry_backoff_max", "1s"},
      {"spool_dir", "/tmp/spool"}, {"spool_max_bytes", "10MiB"},
      {"spool_max_bytes", "1GiB"}, {"spool_sync", "always"},
      {"spool_sync", "batch"},     {"spool_sync", "interval"},
      {"spool_sync", "never"},     {"spool_sync_interval", "1s"},
      {"workers", "3"},            {"overflow", "reject"},
  };
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  CHECK_NO_ERR();
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    spw_status st = spw_config_set(cfg, pairs[i][0], pairs[i][1]);
    if (st != SPW_OK) {
      fprintf(stderr, "set %s=%s: %s\n", pairs[i][0], pairs[i][1], spw_last_error());
    }
    CHECK_ST(st, SPW_OK);
    CHECK_NO_ERR();
  }
  check_builds(cfg, SPW_OK);
  spw_config_free(cfg);
}

static void bad_keys_and_values_name_the_key(void) {
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);

  CHECK_ST(spw_config_set(cfg, "max_sise", "10"), SPW_ERR_INVALID);
  CHECK_ERR("spw_config_set", "unknown key `max_sise`", "did you mean `max_size`?");

  static const char *const bad[][3] = {
      /* key, value, what the message also says */
      {"max_size", "abc", "a whole number >= 1"},
      {"max_size", "0", "a whole number >= 1"},
      {"max_size", "-5", "a whole number >= 1"},
      {"flush_interval", "5 parsecs", "a duration > 0"},
      {"flush_interval", "0", "a duration > 0"},
      {"max_bytes", "10 MiB", "a size"},
      {"overflow", "maybe", "block, drop_newest, drop_oldest, reject, spill"},
      {"spool_sync", "sometimes", "always, batch, interval, never"},
      {"partitions", "0", "partitions"},
      {"name", "", "non-empty"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_ST(spw_config_set(cfg, bad[i][0], bad[i][1]), SPW_ERR_INVALID);
    char key[64];
    snprintf(key, sizeof key, "`%s`", bad[i][0]);
    CHECK_ERR("spw_config_set: invalid value", key, bad[i][2]);
  }

  /* A refused value changes nothing: capacity 4 fits the batch of 4 set
     before, and the refused max_size of 0 never replaced it. */
  CHECK_ST(spw_config_set(cfg, "max_size", "4"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "capacity", "4"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "max_size", "nine"), SPW_ERR_INVALID);
  check_builds(cfg, SPW_OK);

  /* Cross-field problems are spw_buffer_new's to report. */
  CHECK_ST(spw_config_set(cfg, "max_size", "8"), SPW_OK);
  check_builds(cfg, SPW_ERR_INVALID);
  CHECK_ERR("spw_buffer_new", "`capacity` (4)", "`max_size` (8)");
  spw_config_free(cfg);
}

static void nulls_and_non_utf8(void) {
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  CHECK_ST(spw_config_set(NULL, "max_size", "1"), SPW_ERR_NULL);
  CHECK_ERR("spw_config_set: cfg is NULL");
  CHECK_ST(spw_config_set(cfg, NULL, "1"), SPW_ERR_NULL);
  CHECK_ERR("spw_config_set: key is NULL");
  CHECK_ST(spw_config_set(cfg, "max_size", NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_config_set: value is NULL");
  CHECK_ST(spw_config_set(cfg, "max_\xffsize", "1"), SPW_ERR_INVALID);
  CHECK_ERR("spw_config_set: key is not valid UTF-8");
  CHECK_ST(spw_config_set(cfg, "name", "caf\xe9"), SPW_ERR_INVALID);
  CHECK_ERR("spw_config_set: value is not valid UTF-8");
  CHECK_ST(spw_config_set(cfg, "name", "caf\xc3\xa9"), SPW_OK); /* "café" in UTF-8 */

  CHECK_ST(spw_config_load_yaml(NULL, "/tmp/x.yaml"), SPW_ERR_NULL);
  CHECK_ERR("spw_config_load_yaml: cfg is NULL");
  CHECK_ST(spw_config_load_yaml(cfg, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_config_load_yaml: path is NULL");
  CHECK_ST(spw_config_load_yaml(cfg, "/tmp/\xff.yaml"), SPW_ERR_INVALID);
  CHECK_ERR("path is not valid UTF-8");

  spw_buffer *buf = (spw_buffer *)&buf; /* not written on failure */
  CHECK_ST(spw_buffer_new(NULL, count_batches, NULL, &buf), SPW_ERR_NULL);
  CHECK_ERR("spw_buffer_new: cfg is NULL");
  CHECK(buf == (spw_buffer *)&buf);

  spw_config_free(cfg);
  spw_config_free(NULL);
  CHECK_NO_ERR();
}

static void yaml_files(void) {
  char path[64];
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);

  /* A good file: its keys take effect, the others keep their values. */
  write_temp(path,
             "# a comment\n"
             "max_size: 3\n"
             "flush_interval: 1h\n"
             "overflow: \"drop_oldest\"\n"
             "spool_dir:\n");
  CHECK_ST(spw_config_set(cfg, "capacity", "6"), SPW_OK);
  CHECK_ST(spw_config_load_yaml(cfg, path), SPW_OK);
  CHECK_NO_ERR();
  CHECK(unlink(path) == 0);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, count_batches, NULL, &buf), SPW_OK);
  spw_config_free(cfg); /* the buffer holds its own copy */
  for (int i = 0; i < 3; i++) CHECK_ST(spw_buffer_insert(buf, "abc", 3), SPW_OK);
  CHECK_ST(spw_buffer_sync_flush(buf, 10000), SPW_OK);
  CHECK(atomic_load(&calls) == 1);
  CHECK(atomic_load(&last_count) == 3);             /* max_size 3 from the file */
  CHECK(atomic_load(&last_reason) == SPW_FLUSH_SIZE); /* not 1h: by size */
  spw_buffer_free(buf);

  cfg = spw_config_new();
  CHECK(cfg != NULL);
  CHECK_ST(spw_config_set(cfg, "capacity", "4"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "max_size", "4"), SPW_OK);

  /* A bad value: the message names the file and the key; nothing changes,
     not even the good keys before it (max_size 10 would not fit capacity 4). */
  write_temp(path, "max_size: 10\nflush_interval: soon\n");
  CHECK_ST(spw_config_load_yaml(cfg, path), SPW_ERR_INVALID);
  CHECK_ERR("spw_config_load_yaml", path, "`flush_interval`", "soon");
  CHECK(unlink(path) == 0);
  check_builds(cfg, SPW_OK);

  /* An unknown key. */
  write_temp(path, "max_size: 10\nmax_sise: 10\n");
  CHECK_ST(spw_config_load_yaml(cfg, path), SPW_ERR_INVALID);
  CHECK_ERR(path, "unknown key `max_sise`");
  CHECK(unlink(path) == 0);
  check_builds(cfg, SPW_OK);

  /* A value of the wrong shape. */
  write_temp(path, "max_size: [1, 2]\n");
  CHECK_ST(spw_config_load_yaml(cfg, path), SPW_ERR_INVALID);
  CHECK_ERR(path, "max_size");
  CHECK(unlink(path) == 0);

  /* Not YAML at all. */
  write_temp(path, "max_size: 1\n  : : [\n");
  CHECK_ST(spw_config_load_yaml(cfg, path), SPW_ERR_INVALID);
  CHECK_ERR("spw_config_load_yaml", path);
  CHECK(unlink(path) == 0);

  /* A file that is not there is the operating system's refusal. */
  CHECK_ST(spw_config_load_yaml(cfg, "/nonexistent/spillway/buffer.yaml"), SPW_ERR_IO);
  CHECK_ERR("cannot read /nonexistent/spillway/buffer.yaml");
  check_builds(cfg, SPW_OK);

  /* An empty file changes nothing. */
  write_temp(path, "");
  CHECK_ST(spw_config_load_yaml(cfg, path), SPW_OK);
  CHECK(unlink(path) == 0);
  check_builds(cfg, SPW_OK);
  spw_config_free(cfg);
}

/* capacity_bytes bounds a partition by the bytes of its items, and meets
   the overflow policy as capacity does. */
static void capacity_bytes_bounds_a_partition(void) {
  spw_config *cfg = spw_config_new();
  CHECK(cfg != NULL);
  CHECK_ST(spw_config_set(cfg, "capacity_bytes", "1KiB"), SPW_OK);
  /* Below max_bytes (1MiB by default) a partition could not hold a batch. */
  check_builds(cfg, SPW_ERR_INVALID);
  CHECK_ERR("spw_buffer_new", "`capacity_bytes` (1KiB)", "`max_bytes` (1MiB)");
  CHECK_ST(spw_config_set(cfg, "capacity_bytes", "64"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "max_bytes", "0"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "flush_interval", "1h"), SPW_OK);
  CHECK_ST(spw_config_set(cfg, "overflow", "reject"), SPW_OK);
  spw_buffer *buf = NULL;
  CHECK_ST(spw_buffer_new(cfg, count_batches, NULL, &buf), SPW_OK);
  spw_config_free(cfg);
  char item[16];
  memset(item, 'x', sizeof item);
  for (int i = 0; i < 4; i++) CHECK_ST(spw_buffer_insert(buf, item, sizeof item), SPW_OK);
  CHECK_ST(spw_buffer_insert(buf, item, sizeof item), SPW_ERR_FULL);
  CHECK_ERR("spw_buffer_insert", "capacity_bytes 64B");
  /* One byte more does not fit either; nothing was counted. */
  CHECK_ST(spw_buffer_insert(buf, "y", 1), SPW_ERR_FULL);
  spw_stats s;
  CHECK_ST(spw_buffer_stats(buf, &s), SPW_OK);
  CHECK(s.inserted == 4 && s.buffered == 4 && s.dropped == 0);
  CHECK_ST(spw_buffer_close(buf, 5000), SPW_OK);
  spw_buffer_free(buf);
}

int main(void) {
  every_key_is_accepted_from_text();
  bad_keys_and_values_name_the_key();
  nulls_and_non_utf8();
  yaml_files();
  capacity_bytes_bounds_a_partition();
  return 0;
}
