// include/spillway.hpp: every type, its errors as spillway::Error (status and
// message), moves and destruction order, sinks that fail or throw (nothing may
// unwind into the library), two-thread runs of Spsc<T> and Ring, and the 0.2
// calls: Engine, insert_keyed, dump, observe.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "spillway.hpp"

using namespace std::chrono_literals;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

// Runs `body`, which must throw spillway::Error with `status` and a message
// containing every one of `parts`.
template <class Body>
static void expect_error(int line, spw_status status, std::initializer_list<const char *> parts,
                         Body body) {
  try {
    body();
  } catch (const spillway::Error &e) {
    if (e.status() != status) {
      std::fprintf(stderr, "line %d: threw %s (\"%s\"), expected %s\n", line, e.status_name(),
                   e.what(), spw_status_name(status));
      std::exit(1);
    }
    for (const char *part : parts) {
      if (std::string(e.what()).find(part) == std::string::npos) {
        std::fprintf(stderr, "line %d: \"%s\" does not mention \"%s\"\n", line, e.what(), part);
        std::exit(1);
      }
    }
    return;
  }
  std::fprintf(stderr, "line %d: no spillway::Error thrown, expected %s\n", line,
               spw_status_name(status));
  std::exit(1);
}
#define EXPECT_ERROR(status, parts, ...) expect_error(__LINE__, status, parts, __VA_ARGS__)
#define PARTS(...) std::initializer_list<const char *>({__VA_ARGS__})

// What a sink saw, shared with the flusher threads.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> items;
  std::vector<spw_flush_info> calls;

  void record(spillway::Batch batch, const spw_flush_info &info) {
    std::lock_guard<std::mutex> lock(mu);
    std::uint64_t bytes = 0;
    for (std::string_view item : batch) {
      items.emplace_back(item);
      bytes += item.size();
    }
    CHECK(bytes == info.batch_bytes);
    calls.push_back(info);
    cv.notify_all();
  }
  std::vector<std::string> snapshot() {
    std::lock_guard<std::mutex> lock(mu);
    return items;
  }
};

static spillway::Config quiet_config() {
  spillway::Config cfg;
  cfg.set("workers", "1").set("flush_interval", "1h").set("max_retries", "2");
  cfg.set("retry_backoff", "1ms").set("retry_backoff_max", "1ms");
  return cfg;
}

static void errors_carry_status_and_message() {
  CHECK(std::string(spillway::version()) == spw_version());
  spillway::Config cfg;
  EXPECT_ERROR(SPW_ERR_INVALID, PARTS("spw_config_set", "max_size"),
               [&] { cfg.set("max_size", "lots"); });
  EXPECT_ERROR(SPW_ERR_INVALID, PARTS("spw_config_set", "no_such_key"),
               [&] { cfg.set("no_such_key", "1"); });
  EXPECT_ERROR(SPW_ERR_IO, PARTS("spw_config_load_yaml", "/nonexistent/spillway.yaml"),
               [&] { cfg.load_yaml("/nonexistent/spillway.yaml"); });
  try {
    cfg.set("overflow", "sideways");
    CHECK(false);
  } catch (const std::runtime_error &e) {  // catchable as a standard exception
    auto &err = dynamic_cast<const spillway::Error &>(e);
    CHECK(std::string(err.status_name()) == "SPW_ERR_INVALID");
    CHECK(std::string(e.what()).find("overflow") != std::string::npos);
  }
  // A combination only spw_buffer_new checks.
  cfg.set("max_size", "100").set("capacity", "10");
  EXPECT_ERROR(SPW_ERR_INVALID, PARTS("spw_buffer_new", "capacity"),
               [&] { spillway::Buffer b(cfg, [](spillway::Batch) { return true; }); });
}

static void buffer_delivers_in_order() {
  Seen seen;
  spillway::Config cfg = quiet_config();
  cfg.set("max_size", "3");
  spillway::Buffer buf(cfg, [&seen](spillway::Batch batch, const spw_flush_info &info) {
    seen.record(batch, info);
    return true;
  });
  buf.insert("a");
  buf.insert(std::string("bb"));
  const char raw[] = {'c', '\0', 'c'};  // bytes, not a C string
  buf.insert(raw, sizeof raw);
  buf.insert(std::string_view());  // an empty item
  CHECK(buf.try_insert("e"));
  const spw_item batch[] = {{reinterpret_cast<const std::uint8_t *>("f"), 1},
                            {reinterpret_cast<const std::uint8_t *>("gg"), 2}};
  CHECK(buf.insert_batch(batch, 2) == 2);
  buf.sync_flush(10s);
  CHECK(buf.size() == 0);
  std::vector<std::string> want = {"a", "bb", std::string(raw, 3), "", "e", "f", "gg"};
  CHECK(seen.snapshot() == want);
  CHECK(seen.calls.front().reason == SPW_FLUSH_SIZE);

  spw_stats s = buf.stats();
  CHECK(s.inserted == 7 && s.delivered == 7 && s.dropped == 0 && s.batches == seen.calls.size());
  buf.close(10s);
  buf.close(10s);  // idempotent
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_buffer_insert", "closed"), [&] { buf.insert("x"); });
  // Closed is not "full": try_insert throws it too.
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("closed"), [&] { (void)buf.try_insert("x"); });
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_buffer_producer"), [&] { buf.producer(); });
  CHECK(buf.stats().inserted == 7);
}

// A sink that returns false, throws a std exception, throws anything else:
// each fails one attempt, which is retried; no exception reaches the library.
static void failing_and_throwing_sinks_are_retried() {
  Seen seen;
  std::atomic<int> attempt{0};
  spillway::Buffer buf(quiet_config(), [&](spillway::Batch batch, const spw_flush_info &info) {
    switch (attempt++) {
      case 0:
        CHECK(info.attempt == 0);
        return false;
      case 1:
        throw std::runtime_error("sink is down");
      case 2:
        throw 42;  // not even a std::exception
      default:
        seen.record(batch, info);
        return true;
    }
  });
  buf.insert("one");
  buf.insert("two");
  // max_retries is 2: three failed attempts give the batch up.
  EXPECT_ERROR(SPW_ERR_SINK, PARTS("spw_buffer_sync_flush", "given up"), [&] { buf.sync_flush(10s); });
  spw_stats s = buf.stats();
  CHECK(s.failed_flushes == 3 && s.retries == 2 && s.dropped == 2 && s.delivered == 0);

  buf.insert("three");
  buf.sync_flush(10s);
  CHECK(seen.snapshot() == std::vector<std::string>{"three"});
  CHECK(seen.calls.at(0).attempt == 0);
}

// A void sink accepts unless it throws; a sink may leave out the info.
static void void_and_one_argument_sinks() {
  std::atomic<int> calls{0};
  std::atomic<std::size_t> items{0};
  spillway::Buffer buf(quiet_config(), [&](spillway::Batch batch) {
    if (calls++ == 0) throw std::logic_error("first call fails");
    items += batch.size();
  });
  buf.insert("x");
  buf.insert("y");
  buf.sync_flush(10s);
  CHECK(calls == 2 && items == 2);
  CHECK(buf.stats().failed_flushes == 1 && buf.stats().delivered == 2);
}

// overflow = reject: a full partition is `false` from try_insert and
// Error(SPW_ERR_FULL) from insert, for the buffer and for a producer.
static void full_partition() {
  std::mutex mu;
  std::condition_variable cv;
  bool hold = true, inside = false;
  spillway::Config cfg = quiet_config();
  cfg.set("max_size", "2").set("capacity", "2").set("overflow", "reject");
  spillway::Buffer buf(cfg, [&](spillway::Batch) {
    std::unique_lock<std::mutex> lock(mu);
    inside = true;
    cv.notify_all();
    cv.wait(lock, [&] { return !hold; });
    return true;
  });
  buf.insert("1");
  buf.insert("2");  // a full batch: flushed, and held in flight by the sink
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return inside; });
  }
  CHECK(!buf.try_insert("3"));
  EXPECT_ERROR(SPW_ERR_FULL, PARTS("spw_buffer_insert", "full"), [&] { buf.insert("3"); });
  spillway::Producer p = buf.producer();
  // The producer's own ring takes items until the partition's count says no.
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; i++) refused = !p.try_insert("p");
  CHECK(refused);
  EXPECT_ERROR(SPW_ERR_FULL, PARTS("spw_producer_insert", "full"), [&] { p.insert("p"); });
  {
    std::lock_guard<std::mutex> lock(mu);
    hold = false;
    cv.notify_all();
  }
  buf.close(10s);
}

static void producer_keeps_its_order_and_outlives_the_buffer() {
  Seen seen;
  std::optional<spillway::Producer> p;
  {
    spillway::Config cfg = quiet_config();
    cfg.set("max_size", "7");
    spillway::Buffer buf(cfg, [&seen](spillway::Batch b, const spw_flush_info &i) {
      seen.record(b, i);
      return true;
    });
    p.emplace(buf.producer());
    for (int i = 0; i < 100; i++) p->insert(std::to_string(i));
    buf.sync_flush(10s);
  }  // the buffer is freed; the producer lives on
  std::vector<std::string> got = seen.snapshot();
  CHECK(got.size() == 100);
  for (int i = 0; i < 100; i++) CHECK(got[static_cast<std::size_t>(i)] == std::to_string(i));
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_producer_insert"), [&] { p->insert("late"); });
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_producer_insert"), [&] { (void)p->try_insert("late"); });
}

// Moving hands the C object over; the moved-from object holds nothing; the
// sink lives until the buffer that calls it is freed.
static void moves_and_destruction_order() {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  spillway::Buffer a(quiet_config(), [token = std::move(token)](spillway::Batch b) {
    *token += static_cast<int>(b.size());
    return true;
  });
  spw_buffer *raw = a.get();
  spillway::Buffer b(std::move(a));
  CHECK(a.get() == nullptr && b.get() == raw);
  EXPECT_ERROR(SPW_ERR_NULL, PARTS("spillway::Buffer", "moved from"), [&] { a.insert("x"); });
  b.insert("x");
  spillway::Buffer c(quiet_config(), [](spillway::Batch) { return true; });
  c = std::move(b);  // c's own buffer is freed here, then its sink
  CHECK(c.get() == raw && !watch.expired());
  c.sync_flush(10s);
  CHECK(*watch.lock() == 1);
  { spillway::Buffer gone(std::move(c)); }
  CHECK(watch.expired());  // freed with the buffer, not before

  spillway::Config cfg;
  spillway::Config cfg2(std::move(cfg));
  CHECK(cfg.get() == nullptr && cfg2.get() != nullptr);
  EXPECT_ERROR(SPW_ERR_NULL, PARTS("spillway::Config"), [&] { cfg.set("max_size", "1"); });
  // A moved-from Config handed to a Buffer reaches C as NULL: SPW_ERR_NULL.
  EXPECT_ERROR(SPW_ERR_NULL, PARTS("spw_buffer_new", "cfg"),
               [&] { spillway::Buffer bad(cfg, [](spillway::Batch) { return true; }); });
}

struct Point {
  std::int32_t x;
  double y;
};

// Trivially copyable without a default constructor.
struct Tagged {
  explicit Tagged(std::uint32_t v) : value(v), check(v * 2654435761u) {}
  std::uint32_t value;
  std::uint32_t check;
};

static void spsc_of_structs() {
  spillway::Spsc<Point> r(4);
  CHECK(r.size() == 0);
  CHECK(!r.try_pop().has_value());
  auto t0 = std::chrono::steady_clock::now();
  CHECK(!r.pop(20ms).has_value());
  CHECK(std::chrono::steady_clock::now() - t0 >= 19ms);
  for (int i = 0; i < 4; i++) CHECK(r.try_push(Point{i, i * 0.5}));
  CHECK(!r.try_push(Point{9, 9}));
  CHECK(!r.push(Point{9, 9}, 10ms));
  CHECK(r.size() == 4);
  std::optional<Point> p = r.try_pop();
  CHECK(p && p->x == 0 && p->y == 0.0);
  p = r.pop(spillway::forever);
  CHECK(p && p->x == 1 && p->y == 0.5);
  Point in[3] = {{10, 1}, {11, 2}, {12, 3}};
  CHECK(r.push_n(in, 3) == 2);  // as many as fit
  Point out[8];
  CHECK(r.pop_n(out, 8) == 4);
  CHECK(out[0].x == 2 && out[1].x == 3 && out[2].x == 10 && out[3].x == 11);
  EXPECT_ERROR(SPW_ERR_NULL, PARTS("spw_spsc_push_n", "elems"),
               [&] { (void)r.push_n(static_cast<const Point *>(nullptr), 1); });
  EXPECT_ERROR(SPW_ERR_INVALID, PARTS("spw_spsc_new", "capacity"), [] { spillway::Spsc<int> z(0); });

  // close: pushes throw, pops drain and then throw SPW_ERR_CLOSED.
  CHECK(r.try_push(Point{20, 0}));
  r.close();
  r.close();  // again: nothing more
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spsc_push", "closed"), [&] { (void)r.try_push(Point{}); });
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spsc_push_timeout"), [&] { (void)r.push(Point{}, 1s); });
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spsc_push_n", "closed"), [&] { (void)r.push_n(in, 1); });
  p = r.pop(spillway::forever);
  CHECK(p && p->x == 20);
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spsc_pop", "closed and empty"), [&] { (void)r.try_pop(); });
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spsc_pop_timeout"), [&] { (void)r.pop(spillway::forever); });
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spsc_pop_n", "closed and empty"), [&] { (void)r.pop_n(out, 8); });

  // Two threads, 200,000 elements, each once and in order; the producer
  // closes when done, and the consumer drains until SPW_ERR_CLOSED.
  constexpr std::uint32_t total = 200000;
  spillway::Spsc<Tagged> t(64);
  std::thread producer([&] {
    for (std::uint32_t i = 0; i < total; i++) CHECK(t.push(Tagged(i), spillway::forever));
    t.close();
  });
  std::uint32_t want = 0;
  try {
    for (;;) {
      std::optional<Tagged> got = t.pop(spillway::forever);
      CHECK(got && got->value == want && got->check == want * 2654435761u);
      want++;
    }
  } catch (const spillway::Error &err) {
    CHECK(err.status() == SPW_ERR_CLOSED);
  }
  producer.join();
  CHECK(want == total);
  CHECK(t.size() == 0);
}

static void ring_of_bytes() {
  spillway::Ring r(3);
  CHECK(r.push("alpha"));
  CHECK(r.push(std::string_view()));  // an empty item comes back as (NULL, 0)
  CHECK(r.push("g\0mma", 5));
  CHECK(!r.push("full"));
  CHECK(!r.push("full", 10ms));
  CHECK(r.size() == 3);
  std::optional<spillway::Bytes> a = r.pop();
  CHECK(a && a->str() == "alpha" && a->size() == 5);
  std::optional<spillway::Bytes> e = r.pop(1s);
  CHECK(e && e->empty() && e->data() == nullptr);
  spillway::Bytes g = std::move(*r.pop());
  CHECK(g.view() == std::string_view("g\0mma", 5));
  spillway::Bytes moved(std::move(g));
  CHECK(g.data() == nullptr && moved.size() == 5);
  CHECK(!r.pop().has_value());
  CHECK(!r.pop(10ms).has_value());

  // Two threads through a small ring, then close: the consumer drains, then
  // sees SPW_ERR_CLOSED.
  constexpr int total = 20000;
  std::thread producer([&] {
    for (int i = 0; i < total; i++) CHECK(r.push(std::to_string(i), spillway::forever));
    r.close();
  });
  int next = 0;
  try {
    for (;;) {
      std::optional<spillway::Bytes> item = r.pop(spillway::forever);
      CHECK(item && item->str() == std::to_string(next));
      next++;
    }
  } catch (const spillway::Error &err) {
    CHECK(err.status() == SPW_ERR_CLOSED);
  }
  producer.join();
  CHECK(next == total);
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_ring_push"), [&] { (void)r.push("late"); });
  EXPECT_ERROR(SPW_ERR_INVALID, PARTS("spw_ring_new"), [] { spillway::Ring z(0); });
}

#include <unistd.h>

static std::string temp_dir() {
  char tmpl[] = "/tmp/spillway-hpp-XXXXXX";
  CHECK(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

static void spool_and_checkpoint() {
  std::string dir = temp_dir();
  {
    spillway::Spool s(dir + "/spool");
    CHECK(s.size() == 0 && !s.pop().has_value() && !s.peek().has_value());
    s.push("first");
    s.push(std::string_view());
    s.push("third");
    s.flush();
    CHECK(s.size() == 3);
    CHECK(s.peek()->str() == "first");
    CHECK(s.pop()->str() == "first");
    s.close();
  }
  {
    spillway::Spool s(dir + "/spool");  // reopened: the rest is still there
    CHECK(s.size() == 2 && s.skipped() == 0);
    EXPECT_ERROR(SPW_ERR_IO, PARTS("spw_spool_open"), [&] { spillway::Spool again(dir + "/spool"); });
    CHECK(s.pop()->empty());
    CHECK(s.pop()->str() == "third");
    CHECK(!s.pop().has_value());

    // Newest first: the other end.
    CHECK(!s.pop_newest().has_value() && !s.peek_newest().has_value());
    s.push("old");
    s.push(std::string_view());
    s.push("new");
    CHECK(s.peek_newest()->str() == "new");
    CHECK(s.pop_newest()->str() == "new");
    std::optional<spillway::Bytes> empty = s.pop_newest();
    CHECK(empty && empty->empty() && empty->data() == nullptr);
    CHECK(s.peek()->str() == "old" && s.peek_newest()->str() == "old");
    CHECK(s.pop_newest()->str() == "old");
    CHECK(s.size() == 0);
    s.close();
    EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spool_pop_newest"), [&] { (void)s.pop_newest(); });
    EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spool_peek_newest"), [&] { (void)s.peek_newest(); });
  }
  {
    // spool_max_bytes bounds the spool: try_push says false, push throws.
    spillway::Config cfg;
    cfg.set("spool_max_bytes", "256");
    spillway::Spool s(dir + "/small", cfg);
    const std::string record(40, 'r');
    int pushed = 0;
    while (pushed < 100 && s.try_push(record)) pushed++;
    CHECK(pushed > 0 && pushed < 100 && s.size() == static_cast<std::uint64_t>(pushed));
    EXPECT_ERROR(SPW_ERR_FULL, PARTS("spw_spool_push"), [&] { s.push(record); });
    CHECK(s.pop()->str() == record);
    CHECK(s.try_push(record));
    s.close();
    EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_spool_push"), [&] { s.push("late"); });
  }
  {
    spillway::Checkpoint cp(dir + "/checkpoint", 100, 1h);
    CHECK(!cp.get("stdin").has_value());
    cp.persist("stdin", 42, 1700000000123);
    cp.flush();
    std::optional<spillway::Position> at = cp.get("stdin");
    CHECK(at && at->record_number == 42 && at->timestamp_ms == 1700000000123);

    // each: every entry, sorted by name; bool visitors stop on false.
    cp.persist("auth", 7, -1000);
    cp.persist("kern", 9, 5);
    std::vector<std::string> names;
    std::vector<std::uint64_t> numbers;
    cp.each([&](std::string_view name, spillway::Position p) {
      names.emplace_back(name);
      numbers.push_back(p.record_number);
      if (name == "auth") CHECK(p.timestamp_ms == -1000);
    });
    CHECK((names == std::vector<std::string>{"auth", "kern", "stdin"}));
    CHECK((numbers == std::vector<std::uint64_t>{7, 9, 42}));
    int visited = 0;
    cp.each([&](std::string_view, spillway::Position) { return ++visited < 2; });
    CHECK(visited == 2);

    // An exception from the visitor stops the walk and comes out of each(),
    // never through the library.
    visited = 0;
    try {
      cp.each([&](std::string_view name, spillway::Position) {
        visited++;
        if (name == "kern") throw std::runtime_error("visitor failed at kern");
      });
      CHECK(!"each() did not rethrow");
    } catch (const std::runtime_error &e) {
      CHECK(std::string(e.what()) == "visitor failed at kern");
    }
    CHECK(visited == 2);
    cp.shutdown();
    EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_checkpoint_persist"), [&] { cp.persist("stdin", 43, 0); });
  }
  {
    spillway::Checkpoint cp(dir + "/checkpoint", 100, 1h);
    std::optional<spillway::Position> at = cp.get("stdin");
    CHECK(at && at->record_number == 42);
  }
  {
    // A damaged file is refused, not overwritten.
    FILE *f = std::fopen((dir + "/damaged").c_str(), "w");
    CHECK(f != nullptr && std::fputs("not a checkpoint\n", f) >= 0 && std::fclose(f) == 0);
    EXPECT_ERROR(SPW_ERR_CORRUPT, PARTS("spw_checkpoint_open", "damaged"),
                 [&] { spillway::Checkpoint bad(dir + "/damaged", 10, 1s); });
  }
  std::string rm = "rm -rf '" + dir + "'";
  CHECK(std::system(rm.c_str()) == 0);
}

// Engine: two buffers on one engine, a duplicate name refused, stop delivers
// what is left; insert_keyed keeps each key's order; dump takes the buffered
// items out; observe and unobserve, and a throwing event function.
static void engine_keyed_dump_and_events() {
  EXPECT_ERROR(SPW_ERR_INVALID, PARTS("spw_engine_new", "workers"), [] { spillway::Engine e(0); });
  spillway::Engine engine(2);
  Seen seen_a, seen_b;
  spillway::Config cfg_a = quiet_config();
  cfg_a.set("name", "a").set("partitions", "3").set("max_size", "1000");
  spillway::Config cfg_b = quiet_config();
  cfg_b.set("name", "b").set("partitions", "1").set("max_size", "1000");
  auto sink_of = [](Seen &seen) {
    return [&seen](spillway::Batch batch, const spw_flush_info &info) {
      seen.record(batch, info);
      return true;
    };
  };
  spillway::Buffer a(engine, cfg_a, sink_of(seen_a));
  spillway::Buffer b(engine, cfg_b, sink_of(seen_b));
  EXPECT_ERROR(SPW_ERR_INVALID, PARTS("spw_engine_buffer_new", "`a`"),
               [&] { spillway::Buffer dup(engine, cfg_a, sink_of(seen_a)); });

  // Events: the function sees the flush; a throwing one is harmless.
  std::mutex mu;
  std::vector<std::uint32_t> kinds;
  a.observe([&](const spw_event &e) {
    std::lock_guard<std::mutex> lock(mu);
    kinds.push_back(e.kind);
  });
  for (int i = 0; i < 30; i++) a.insert_keyed(i % 2 ? "odd" : "even", std::to_string(i));
  a.sync_flush(10s);
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(!kinds.empty() && kinds.front() == SPW_EVENT_FLUSH_START);
    CHECK(std::count(kinds.begin(), kinds.end(), SPW_EVENT_FLUSH_END) ==
          std::count(kinds.begin(), kinds.end(), SPW_EVENT_FLUSH_START));
  }
  std::vector<std::string> got = seen_a.snapshot();
  CHECK(got.size() == 30);
  for (int parity = 0; parity < 2; parity++) {
    int next = parity;
    for (const std::string &item : got) {
      int v = std::stoi(item);
      if (v % 2 != parity) continue;
      CHECK(v == next);
      next += 2;
    }
  }
  std::size_t seen_kinds = kinds.size();
  a.observe([](const spw_event &) { throw std::runtime_error("telemetry bug"); });
  a.insert("x");
  a.sync_flush(10s);  // the throwing function stopped nothing
  CHECK(seen_a.snapshot().size() == 31);
  a.unobserve();
  CHECK(kinds.size() == seen_kinds);  // replaced: the first function saw no more

  // Dump: buffered items come out, in order, and are never flushed.
  b.insert("one");
  b.insert(std::string_view());
  b.insert("three");
  std::vector<std::string> dumped = b.dump();
  CHECK((dumped == std::vector<std::string>{"one", "", "three"}));
  CHECK(b.dump().empty());
  spw_stats st = b.stats();
  CHECK(st.dumped == 3 && st.inserted == 3 && st.delivered == 0 && st.buffered == 0);
  b.insert("four");

  engine.stop(10s);
  CHECK((seen_b.snapshot() == std::vector<std::string>{"four"}));
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_buffer_insert"), [&] { b.insert("late"); });
  EXPECT_ERROR(SPW_ERR_CLOSED, PARTS("spw_engine_buffer_new", "stopped"),
               [&] { spillway::Buffer c(engine, quiet_config(), sink_of(seen_b)); });
}

int main() {
  errors_carry_status_and_message();
  buffer_delivers_in_order();
  failing_and_throwing_sinks_are_retried();
  void_and_one_argument_sinks();
  full_partition();
  producer_keeps_its_order_and_outlives_the_buffer();
  moves_and_destruction_order();
  spsc_of_structs();
  ring_of_bytes();
  spool_and_checkpoint();
  engine_keyed_dump_and_events();
  std::puts("spillway_hpp: every wrapper checked");
  return 0;
}
