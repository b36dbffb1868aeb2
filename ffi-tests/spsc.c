/* spw_spsc_* on one thread: every function, every error path. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A 3-byte element: an odd size, so elements straddle the ring's wrap. */
typedef struct { uint8_t b[3]; } elem3;

static elem3 e3(unsigned i) {
  elem3 e = {{(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i * 31u)}};
  return e;
}

static int eq3(elem3 a, elem3 b) { return memcmp(a.b, b.b, 3) == 0; }

static spw_spsc *new_spsc(size_t capacity, size_t elem_size) {
  spw_spsc *r = NULL;
  CHECK_ST(spw_spsc_new(capacity, elem_size, &r), SPW_OK);
  CHECK(r != NULL);
  CHECK_NO_ERR();
  return r;
}

static void new_and_free(void) {
  spw_spsc *r = (spw_spsc *)&r; /* sentinel: must stay untouched on failure */
  spw_spsc *const sentinel = r;
  CHECK_ST(spw_spsc_new(4, 8, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_new", "out is NULL");
  CHECK_ST(spw_spsc_new(0, 8, &r), SPW_ERR_INVALID);
  CHECK_ERR("spw_spsc_new", "capacity", "at least 1");
  CHECK_ST(spw_spsc_new(4, 0, &r), SPW_ERR_INVALID);
  CHECK_ERR("spw_spsc_new", "elem_size", "at least 1");
  CHECK_ST(spw_spsc_new(SIZE_MAX, 2, &r), SPW_ERR_INVALID);
  CHECK_ERR("spw_spsc_new", "capacity * elem_size");
  CHECK_ST(spw_spsc_new(SIZE_MAX / 2 + 1, 1, &r), SPW_ERR_INVALID); /* > PTRDIFF_MAX */
  CHECK_ERR("spw_spsc_new", "capacity * elem_size");
  /* Representable, but more than any address space: an error, not an abort. */
  CHECK_ST(spw_spsc_new(1, (size_t)PTRDIFF_MAX, &r), SPW_ERR_INVALID);
  CHECK_ERR("spw_spsc_new", "cannot be allocated");
  CHECK(r == sentinel);

  r = new_spsc(1, 1);
  CHECK(spw_spsc_len(r) == 0);
  spw_spsc_free(r);
  CHECK_NO_ERR();
  spw_spsc_free(NULL);
  CHECK_NO_ERR();

  /* Freeing a ring that still holds elements is fine. */
  r = new_spsc(8, 16);
  char x[16] = "still inside";
  CHECK_ST(spw_spsc_push(r, x), SPW_OK);
  spw_spsc_free(r);
}

static void push_pop_full_empty_timeouts(void) {
  spw_spsc *r = new_spsc(4, sizeof(elem3));
  elem3 got = e3(999), sentinel = e3(999);

  CHECK_ST(spw_spsc_pop(r, &got), SPW_ERR_EMPTY);
  CHECK_ERR("spw_spsc_pop", "empty");
  uint64_t t0 = now_ms();
  CHECK_ST(spw_spsc_pop_timeout(r, &got, 30), SPW_ERR_TIMEOUT);
  CHECK(now_ms() - t0 >= 29);
  CHECK_ERR("spw_spsc_pop_timeout", "empty", "30 ms");
  CHECK(eq3(got, sentinel)); /* out written only on success */

  for (unsigned i = 0; i < 4; i++) {
    elem3 e = e3(i);
    CHECK_ST(spw_spsc_push(r, &e), SPW_OK);
    CHECK_NO_ERR();
    CHECK(spw_spsc_len(r) == i + 1);
  }
  elem3 extra = e3(4);
  CHECK_ST(spw_spsc_push(r, &extra), SPW_ERR_FULL);
  CHECK_ERR("spw_spsc_push", "full", "capacity 4");
  t0 = now_ms();
  CHECK_ST(spw_spsc_push_timeout(r, &extra, 30), SPW_ERR_TIMEOUT);
  CHECK(now_ms() - t0 >= 29);
  CHECK_ERR("spw_spsc_push_timeout", "full", "30 ms");
  CHECK_ST(spw_spsc_push_timeout(r, &extra, 0), SPW_ERR_FULL);
  CHECK(spw_spsc_len(r) == 4);

  CHECK_ST(spw_spsc_pop(r, &got), SPW_OK);
  CHECK_NO_ERR();
  CHECK(eq3(got, e3(0)));
  CHECK_ST(spw_spsc_pop_timeout(r, &got, 1000), SPW_OK); /* no need to wait */
  CHECK(eq3(got, e3(1)));
  CHECK_ST(spw_spsc_push_timeout(r, &extra, 1000), SPW_OK);
  elem3 more = e3(5);
  CHECK_ST(spw_spsc_push_timeout(r, &more, UINT64_MAX), SPW_OK);
  for (unsigned want = 2; want <= 5; want++) {
    CHECK_ST(spw_spsc_pop_timeout(r, &got, UINT64_MAX), SPW_OK);
    CHECK(eq3(got, e3(want)));
  }
  CHECK(spw_spsc_len(r) == 0);
  spw_spsc_free(r);
}

static void batches_move_whole_elements(void) {
  spw_spsc *r = new_spsc(5, sizeof(elem3));
  elem3 in[8], out[10];
  for (unsigned i = 0; i < 8; i++) in[i] = e3(100 + i);

  CHECK(spw_spsc_push_n(r, in, 8) == 5); /* as many as fit */
  CHECK_NO_ERR();
  CHECK(spw_spsc_push_n(r, in, 8) == 0); /* full: nothing, and no error */
  CHECK_NO_ERR();
  CHECK(spw_spsc_len(r) == 5);

  CHECK(spw_spsc_pop_n(r, out, 2) == 2);
  CHECK(eq3(out[0], e3(100)) && eq3(out[1], e3(101)));
  CHECK(spw_spsc_push_n(r, in + 5, 3) == 2);
  CHECK(spw_spsc_pop_n(r, out, 10) == 5); /* as many as are there */
  CHECK_NO_ERR();
  for (unsigned i = 0; i < 5; i++) CHECK(eq3(out[i], e3(102 + i)));
  out[0] = e3(7);
  CHECK(spw_spsc_pop_n(r, out, 10) == 0); /* empty: nothing, and no error */
  CHECK_NO_ERR();
  CHECK(eq3(out[0], e3(7)));

  /* n == 0 needs no buffer. */
  CHECK(spw_spsc_push_n(r, NULL, 0) == 0);
  CHECK_NO_ERR();
  CHECK(spw_spsc_pop_n(r, NULL, 0) == 0);
  CHECK_NO_ERR();

  /* Many rounds, so elements wrap around the ring's end at every offset. */
  unsigned next_in = 0, next_out = 0;
  for (unsigned round = 0; round < 500; round++) {
    elem3 batch[4];
    unsigned want = 1 + round % 4;
    for (unsigned i = 0; i < want; i++) batch[i] = e3(next_in + i);
    size_t k = spw_spsc_push_n(r, batch, want);
    next_in += (unsigned)k;
    if (round % 3 == 0) {
      elem3 one = e3(next_in);
      if (spw_spsc_push(r, &one) == SPW_OK) next_in++;
    }
    size_t got = spw_spsc_pop_n(r, out, round % 5);
    for (size_t i = 0; i < got; i++) CHECK(eq3(out[i], e3(next_out++)));
    CHECK(spw_spsc_len(r) == next_in - next_out);
  }
  while (spw_spsc_pop(r, out) == SPW_OK) CHECK(eq3(out[0], e3(next_out++)));
  CHECK(next_out == next_in && next_in > 500);
  spw_spsc_free(r);
}

/* spw_spsc_close: pushes fail, pops drain and then say closed, at once. */
static void close_drains_then_says_closed(void) {
  spw_spsc *r = new_spsc(4, sizeof(elem3));
  elem3 in[3] = {e3(1), e3(2), e3(3)}, out[4], sentinel = e3(999);
  CHECK(spw_spsc_push_n(r, in, 3) == 3);
  CHECK_ST(spw_spsc_close(r), SPW_OK);
  CHECK_NO_ERR();
  CHECK_ST(spw_spsc_close(r), SPW_OK); /* again: nothing more */
  CHECK_NO_ERR();

  elem3 late = e3(4);
  CHECK_ST(spw_spsc_push(r, &late), SPW_ERR_CLOSED);
  CHECK_ERR("spw_spsc_push: ring is closed");
  CHECK_ST(spw_spsc_push_timeout(r, &late, 30), SPW_ERR_CLOSED);
  CHECK_ERR("spw_spsc_push_timeout: ring is closed");
  CHECK_ST(spw_spsc_push_timeout(r, &late, UINT64_MAX), SPW_ERR_CLOSED); /* no wait */
  CHECK(spw_spsc_push_n(r, &late, 1) == 0);
  CHECK_ERR("spw_spsc_push_n: ring is closed");
  CHECK(spw_spsc_len(r) == 3);

  /* What was inside comes out in order, by every kind of pop. */
  CHECK_ST(spw_spsc_pop(r, &out[0]), SPW_OK);
  CHECK_NO_ERR();
  CHECK(eq3(out[0], e3(1)));
  CHECK_ST(spw_spsc_pop_timeout(r, &out[0], UINT64_MAX), SPW_OK);
  CHECK(eq3(out[0], e3(2)));
  CHECK(spw_spsc_pop_n(r, out, 4) == 1);
  CHECK_NO_ERR();
  CHECK(eq3(out[0], e3(3)));

  /* Then closed (not empty), without waiting, and out untouched. */
  out[0] = sentinel;
  CHECK_ST(spw_spsc_pop(r, &out[0]), SPW_ERR_CLOSED);
  CHECK_ERR("spw_spsc_pop: ring is closed and empty");
  uint64_t t0 = now_ms();
  CHECK_ST(spw_spsc_pop_timeout(r, &out[0], UINT64_MAX), SPW_ERR_CLOSED);
  CHECK_ERR("spw_spsc_pop_timeout: ring is closed and empty");
  CHECK_ST(spw_spsc_pop_timeout(r, &out[0], 60000), SPW_ERR_CLOSED);
  CHECK(now_ms() - t0 < 30000); /* neither waited for its timeout */
  CHECK(spw_spsc_pop_n(r, out, 4) == 0);
  CHECK_ERR("spw_spsc_pop_n: ring is closed and empty");
  CHECK(eq3(out[0], sentinel));
  CHECK(spw_spsc_len(r) == 0);

  CHECK_ST(spw_spsc_close(NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_close: r is NULL");
  spw_spsc_free(r);
  CHECK_NO_ERR();

  /* Closing an empty ring, and freeing a closed one that still holds an
     element, are both fine. */
  r = new_spsc(2, 8);
  CHECK_ST(spw_spsc_close(r), SPW_OK);
  uint64_t v = 1;
  CHECK_ST(spw_spsc_pop(r, &v), SPW_ERR_CLOSED);
  spw_spsc_free(r);
  r = new_spsc(2, 8);
  CHECK_ST(spw_spsc_push(r, &v), SPW_OK);
  CHECK_ST(spw_spsc_close(r), SPW_OK);
  spw_spsc_free(r);
}

static void nulls(void) {
  spw_spsc *r = new_spsc(4, 8);
  uint64_t v = 42, out = 7;
  CHECK_ST(spw_spsc_push(r, &v), SPW_OK);

  CHECK_ST(spw_spsc_push(NULL, &v), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_push", "r is NULL");
  CHECK_ST(spw_spsc_push(r, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_push", "elem is NULL");
  CHECK_ST(spw_spsc_push_timeout(NULL, &v, 10), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_push_timeout", "r is NULL");
  CHECK_ST(spw_spsc_push_timeout(r, NULL, 10), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_push_timeout", "elem is NULL");
  CHECK(spw_spsc_push_n(NULL, &v, 1) == 0);
  CHECK_ERR("spw_spsc_push_n", "r is NULL");
  CHECK(spw_spsc_push_n(r, NULL, 2) == 0);
  CHECK_ERR("spw_spsc_push_n", "elems is NULL");
  CHECK(spw_spsc_len(r) == 1);

  CHECK_ST(spw_spsc_pop(NULL, &out), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_pop", "r is NULL");
  CHECK_ST(spw_spsc_pop(r, NULL), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_pop", "out is NULL");
  CHECK_ST(spw_spsc_pop_timeout(NULL, &out, 10), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_pop_timeout", "r is NULL");
  CHECK_ST(spw_spsc_pop_timeout(r, NULL, 10), SPW_ERR_NULL);
  CHECK_ERR("spw_spsc_pop_timeout", "out is NULL");
  CHECK(spw_spsc_pop_n(NULL, &out, 1) == 0);
  CHECK_ERR("spw_spsc_pop_n", "r is NULL");
  CHECK(spw_spsc_pop_n(r, NULL, 3) == 0);
  CHECK_ERR("spw_spsc_pop_n", "out is NULL");
  CHECK(spw_spsc_len(NULL) == 0);
  CHECK_ERR("spw_spsc_len", "r is NULL");
  CHECK(out == 7);
  CHECK(spw_spsc_len(r) == 1); /* nothing was lost */

  CHECK_ST(spw_spsc_pop(r, &out), SPW_OK);
  CHECK(out == 42);
  spw_spsc_free(r);
}

int main(void) {
  new_and_free();
  push_pop_full_empty_timeouts();
  batches_move_whole_elements();
  close_drains_then_says_closed();
  nulls();
  return 0;
}
