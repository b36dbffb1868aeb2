/*
 * spillway.hpp: a header-only C++17 wrapper over the C API of spillway.h.
 *
 * It adds ownership and conversion, nothing else: every type owns one C
 * object and frees it with that object's *_free when it goes out of scope;
 * every failing call throws spillway::Error, carrying the spw_status and the
 * message of spw_last_error(). Behaviour, threading rules and the meaning of
 * each status are those of the C function each method names, documented in
 * spillway.h:
 *
 *   spillway::Config       spw_config_*      any thread, several at once
 *   spillway::Engine       spw_engine_*      any thread, several at once
 *   spillway::Buffer       spw_buffer_*      any thread, several at once
 *   spillway::Producer     spw_producer_*    one thread at a time
 *   spillway::Spsc<T>      spw_spsc_*        one pushing thread, one popping thread
 *   spillway::Ring         spw_ring_*        any thread, several at once
 *   spillway::Spool        spw_spool_*       any thread, several at once
 *   spillway::Checkpoint   spw_checkpoint_*  any thread, several at once
 *   spillway::Bytes        bytes the library returns (spw_bytes_free)
 *
 * Destruction follows *_free: it must be the object's last use, with no
 * other thread still calling it. The types are move-only; a moved-from
 * object holds nothing, and its only valid uses are destruction and
 * assignment (calling a method on it throws Error(SPW_ERR_NULL)).
 *
 * Outcomes that a caller is expected to meet in normal running (a full or
 * empty ring, a deadline passing) come back as `false` or `std::nullopt`
 * from the methods whose names say so (try_*, and those taking a timeout);
 * everything else throws.
 *
 * A Buffer's sink is any callable `R sink(spillway::Batch, const spw_flush_info &)`
 * or `R sink(spillway::Batch)`, with R = bool (true accepts the batch) or void
 * (accepts unless it throws).
 * An exception leaving the sink never reaches the library: the trampoline
 * catches it and fails this attempt, which is retried like `false`.
 *
 * Buffer::observe takes any callable `void on_event(const spw_event &)`. It
 * runs on the thread where the event happens, must be quick and must not
 * call back into the same Buffer; an exception leaving it is caught and
 * dropped (telemetry never stops a flush). `event.message` is valid during
 * the call only.
 *
 * Checkpoint::each takes any callable `R visit(std::string_view name,
 * spillway::Position at)`, R = void (visit every entry) or bool (false stops
 * the walk). An exception leaving it stops the walk inside the library and
 * is rethrown from each() once the library has returned.
 *
 * Timeouts are std::chrono::milliseconds: spillway::no_wait (0) does not
 * wait, spillway::forever waits without limit, a negative value is no_wait.
 */
#ifndef SPILLWAY_HPP
#define SPILLWAY_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "spillway.h"

namespace spillway {

/* A failed spillway call: the status it returned and spw_last_error()'s
   message at that moment ("function: what went wrong"), which what() returns. */
class Error : public std::runtime_error {
 public:
  Error(spw_status status, const std::string &message)
      : std::runtime_error(message), status_(status) {}

  /* The status the C function returned. */
  spw_status status() const noexcept { return status_; }

  /* The status's name, e.g. "SPW_ERR_FULL" (static; never NULL). */
  const char *status_name() const noexcept { return spw_status_name(static_cast<int>(status_)); }

 private:
  spw_status status_;
};

/* Do not wait: the call returns at once. */
inline constexpr std::chrono::milliseconds no_wait{0};
/* Wait without limit (UINT64_MAX milliseconds in the C API). */
inline constexpr std::chrono::milliseconds forever = std::chrono::milliseconds::max();

/* The library's version, e.g. "0.1.0" (spw_version). */
inline const char *version() noexcept { return spw_version(); }

namespace detail {

/* Throws Error for any status but SPW_OK; the message is read right away,
   before any other spw_ call on this thread can replace it. */
inline void check(spw_status status) {
  if (status != SPW_OK) throw Error(status, spw_last_error());
}

/* `false` for the statuses in `expected` (the "would have to wait" ones);
   throws for any other failure. */
inline bool check_unless(spw_status status, spw_status expected_a, spw_status expected_b) {
  if (status == SPW_OK) return true;
  if (status == expected_a || status == expected_b) return false;
  throw Error(status, spw_last_error());
}

/* Throws for a count-returning call (spw_spsc_push_n/pop_n) that returned 0
   with a message: the C function gives no status, so it is told from what
   could have failed. `data` and `n` are the call's buffer and count. */
inline void check_count(const void *data, std::size_t n) {
  const char *msg = spw_last_error();
  if (msg[0] == '\0') return;
  spw_status status = SPW_ERR_CLOSED;
  if (data == nullptr && n > 0)
    status = SPW_ERR_NULL;
  else if (std::strstr(msg, ": internal panic: ") != nullptr)
    status = SPW_ERR_PANIC;
  throw Error(status, msg);
}

inline std::uint64_t timeout_ms(std::chrono::milliseconds timeout) noexcept {
  if (timeout == forever) return UINT64_MAX;
  if (timeout.count() <= 0) return 0;
  return static_cast<std::uint64_t>(timeout.count());
}

/* What a method of a moved-from object throws instead of passing NULL on. */
[[noreturn]] inline void moved_from(const char *type) {
  throw Error(SPW_ERR_NULL, std::string("spillway::") + type + ": the object was moved from");
}

/* Owns one C object, freed with Free; move-only. */
template <class T, void (*Free)(T *)>
class Handle {
 public:
  Handle() noexcept = default;
  explicit Handle(T *raw) noexcept : raw_(raw) {}
  Handle(Handle &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
  Handle &operator=(Handle &&other) noexcept {
    if (this != &other) reset(std::exchange(other.raw_, nullptr));
    return *this;
  }
  Handle(const Handle &) = delete;
  Handle &operator=(const Handle &) = delete;
  ~Handle() { reset(nullptr); }

  T *get() const noexcept { return raw_; }
  T *release() noexcept { return std::exchange(raw_, nullptr); }
  void reset(T *raw) noexcept {
    T *old = std::exchange(raw_, raw);
    if (old != nullptr) Free(old);
  }
  /* The raw pointer, or throws when the object was moved from. */
  T *live(const char *type) const {
    if (raw_ == nullptr) moved_from(type);
    return raw_;
  }

 private:
  T *raw_ = nullptr;
};

}  // namespace detail

/* Bytes the library handed over (Ring::pop, Spool::pop/peek): owned, freed
   with spw_bytes_free when destroyed. An empty item has data() == nullptr. */
class Bytes {
 public:
  Bytes() noexcept = default;
  /* Takes ownership of bytes the library returned. */
  Bytes(std::uint8_t *data, std::size_t size) noexcept : data_(data), size_(size) {}
  Bytes(Bytes &&other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Bytes &operator=(Bytes &&other) noexcept {
    if (this != &other) {
      spw_bytes_free(data_, size_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  Bytes(const Bytes &) = delete;
  Bytes &operator=(const Bytes &) = delete;
  ~Bytes() { spw_bytes_free(data_, size_); }

  const std::uint8_t *data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  /* A view of the bytes, valid while this object lives. */
  std::string_view view() const noexcept {
    return {reinterpret_cast<const char *>(data_), size_};
  }
  /* A copy of the bytes. */
  std::string str() const { return std::string(view()); }

 private:
  std::uint8_t *data_ = nullptr;
  std::size_t size_ = 0;
};

/* A buffer's configuration (spw_config): keys as in spillway.h and the
   README's table, set from text. Thread-safe, like spw_config_*. */
class Config {
 public:
  /* Every key at its default (spw_config_new). */
  Config() : h_(spw_config_new()) {
    if (h_.get() == nullptr) throw Error(SPW_ERR_PANIC, spw_last_error());
  }

  /* Sets one key (spw_config_set); throws Error(SPW_ERR_INVALID) naming the
     key and what it accepts. Returns *this, so calls chain. */
  Config &set(const std::string &key, const std::string &value) {
    detail::check(spw_config_set(raw(), key.c_str(), value.c_str()));
    return *this;
  }

  /* Applies a flat YAML file of keys (spw_config_load_yaml). */
  Config &load_yaml(const std::string &path) {
    detail::check(spw_config_load_yaml(raw(), path.c_str()));
    return *this;
  }

  /* The C object, still owned by this Config. */
  spw_config *get() const noexcept { return h_.get(); }

 private:
  spw_config *raw() const { return h_.live("Config"); }
  detail::Handle<spw_config, spw_config_free> h_;
};

/* The batch a sink is handed: a view of the C items, valid only during the
   sink call (copy what you keep). Each item is a std::string_view. */
class Batch {
 public:
  Batch(const spw_item *items, std::size_t count) noexcept : items_(items), count_(count) {}

  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  std::string_view operator[](std::size_t i) const noexcept { return view(items_[i]); }
  /* The C items themselves. */
  const spw_item *data() const noexcept { return items_; }

  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = std::string_view;

    iterator() noexcept = default;
    explicit iterator(const spw_item *at) noexcept : at_(at) {}
    std::string_view operator*() const noexcept { return view(*at_); }
    iterator &operator++() noexcept {
      ++at_;
      return *this;
    }
    iterator operator++(int) noexcept { return iterator(at_++); }
    bool operator==(const iterator &o) const noexcept { return at_ == o.at_; }
    bool operator!=(const iterator &o) const noexcept { return at_ != o.at_; }

   private:
    const spw_item *at_ = nullptr;
  };
  iterator begin() const noexcept { return iterator(items_); }
  iterator end() const noexcept { return iterator(items_ + count_); }

 private:
  static std::string_view view(const spw_item &item) noexcept {
    return {reinterpret_cast<const char *>(item.data), item.len};
  }
  const spw_item *items_;
  std::size_t count_;
};

namespace detail {

/* The C callback of a Buffer: calls the C++ sink and turns whatever it does
   into the int the library expects. No exception leaves it. */
template <class Sink>
struct SinkHolder {
  /* A sink may take the flush info or leave it out. */
  static constexpr bool takes_info = std::is_invocable_v<Sink &, Batch, const spw_flush_info &>;
  static_assert(takes_info || std::is_invocable_v<Sink &, Batch>,
                "a spillway sink is callable as sink(spillway::Batch, const spw_flush_info &) "
                "or sink(spillway::Batch)");

  static decltype(auto) invoke(Sink &sink, Batch batch, const spw_flush_info &info) {
    if constexpr (takes_info) {
      return sink(batch, info);
    } else {
      (void)info;
      return sink(batch);
    }
  }
  using Result = decltype(invoke(std::declval<Sink &>(), std::declval<Batch>(),
                                 std::declval<const spw_flush_info &>()));
  static_assert(std::is_same_v<Result, bool> || std::is_void_v<Result>,
                "a spillway sink returns bool (true accepts the batch) or void");

  Sink sink;

  static int call(void *user_data, const spw_item *items, std::size_t count,
                  const spw_flush_info *info) noexcept {
    try {
      Sink &sink = static_cast<SinkHolder *>(user_data)->sink;
      Batch batch(items, count);
      if constexpr (std::is_void_v<Result>) {
        invoke(sink, batch, *info);
        return 0;
      } else {
        return invoke(sink, batch, *info) ? 0 : 1;
      }
    } catch (...) {
      // Unwinding into the library is undefined behaviour; a throwing sink
      // fails this attempt instead, and the batch is retried.
      return 1;
    }
  }

  static void destroy(void *holder) noexcept { delete static_cast<SinkHolder *>(holder); }
};

/* The C callback of Buffer::observe: calls the C++ function; no exception
   leaves it. */
template <class OnEvent>
struct EventHolder {
  static_assert(std::is_invocable_v<OnEvent &, const spw_event &>,
                "a spillway event function is callable as on_event(const spw_event &)");
  OnEvent on_event;

  static void call(void *user_data, const spw_event *event) noexcept {
    try {
      static_cast<EventHolder *>(user_data)->on_event(*event);
    } catch (...) {
      // Unwinding into the library is undefined behaviour, and telemetry
      // must never stop a flush: the exception is dropped.
    }
  }

  static void destroy(void *holder) noexcept { delete static_cast<EventHolder *>(holder); }
};

/* Owns the items spw_buffer_dump returned until they are copied. */
struct DumpedItems {
  spw_item *items = nullptr;
  std::size_t count = 0;
  DumpedItems() = default;
  DumpedItems(const DumpedItems &) = delete;
  DumpedItems &operator=(const DumpedItems &) = delete;
  ~DumpedItems() { spw_items_free(items, count); }
};

}  // namespace detail

/* One timer thread and `workers` flusher threads shared by many Buffers
   (spw_engine). Destruction is spw_engine_free: it stops the engine first if
   still running, then waits for every callback still running on its
   threads (abandoned ones past flush_timeout included) and joins them.
   Destroy the engine's Buffers before it; a Buffer that outlives it stays
   valid but closed. */
class Engine {
 public:
  /* Starts the threads (spw_engine_new); throws SPW_ERR_INVALID for 0. */
  explicit Engine(std::uint32_t workers) {
    spw_engine *raw = nullptr;
    detail::check(spw_engine_new(workers, &raw));
    h_.reset(raw);
  }

  /* Closes every Buffer still open on it, waits for their sinks, and stops
     the threads (spw_engine_stop); throws SPW_ERR_TIMEOUT when a sink still
     ran or items were undelivered at the timeout. */
  void stop(std::chrono::milliseconds timeout) {
    detail::check(spw_engine_stop(raw(), detail::timeout_ms(timeout)));
  }

  /* The C object, still owned by this Engine. */
  spw_engine *get() const noexcept { return h_.get(); }

 private:
  friend class Buffer;
  spw_engine *raw() const { return h_.live("Engine"); }
  detail::Handle<spw_engine, spw_engine_free> h_;
};

class Producer;

/* A batching buffer of byte items (spw_buffer) with a C++ sink. Thread-safe,
   like spw_buffer_*; destruction is spw_buffer_free (it closes the buffer
   first if still open, and waits for the sink and the event function to
   return), after which both are destroyed. */
class Buffer {
 public:
  /* Builds a buffer (spw_buffer_new) whose flusher threads call `sink` (see
     the top of this file for its shape). The sink is moved into the buffer
     and may be called from several threads at once (one per partition). */
  template <class Sink>
  Buffer(const Config &config, Sink &&sink) {
    using Holder = detail::SinkHolder<std::decay_t<Sink>>;
    auto *holder = new Holder{std::forward<Sink>(sink)};
    sink_ = HolderPtr(holder, &Holder::destroy);
    spw_buffer *raw = nullptr;
    detail::check(spw_buffer_new(config.get(), &Holder::call, holder, &raw));
    h_.reset(raw);
  }

  /* As above, but the buffer flushes on `engine`'s threads
     (spw_engine_buffer_new); its name must be unique on the engine
     (SPW_ERR_INVALID otherwise). */
  template <class Sink>
  Buffer(Engine &engine, const Config &config, Sink &&sink) {
    using Holder = detail::SinkHolder<std::decay_t<Sink>>;
    auto *holder = new Holder{std::forward<Sink>(sink)};
    sink_ = HolderPtr(holder, &Holder::destroy);
    spw_buffer *raw = nullptr;
    detail::check(spw_engine_buffer_new(engine.raw(), config.get(), &Holder::call, holder, &raw));
    h_.reset(raw);
  }

  Buffer(Buffer &&) noexcept = default;
  Buffer &operator=(Buffer &&other) noexcept {
    if (this != &other) {
      h_ = std::move(other.h_);  // frees ours first, while our callbacks still live
      sink_ = std::move(other.sink_);
      observer_ = std::move(other.observer_);
    }
    return *this;
  }
  ~Buffer() { h_.reset(nullptr); }  // the buffer goes before the sink it calls

  /* Inserts a copy of the bytes (spw_buffer_insert); throws on any failure,
     SPW_ERR_FULL and SPW_ERR_TIMEOUT included. */
  void insert(const void *data, std::size_t size) {
    detail::check(spw_buffer_insert(raw(), data, size));
  }
  void insert(std::string_view bytes) { insert(bytes.data(), bytes.size()); }

  /* As insert, but a full partition (SPW_ERR_FULL, SPW_ERR_TIMEOUT) returns false. */
  [[nodiscard]] bool try_insert(const void *data, std::size_t size) {
    return detail::check_unless(spw_buffer_insert(raw(), data, size), SPW_ERR_FULL,
                                SPW_ERR_TIMEOUT);
  }
  [[nodiscard]] bool try_insert(std::string_view bytes) { return try_insert(bytes.data(), bytes.size()); }

  /* Inserts a copy of `bytes` into the partition `key` maps to, so items
     with the same key keep their order (spw_buffer_insert_keyed); throws on
     any failure. */
  void insert_keyed(std::string_view key, std::string_view bytes) {
    detail::check(spw_buffer_insert_keyed(raw(), key.data(), key.size(), bytes.data(), bytes.size()));
  }

  /* Takes every buffered item out without flushing it (spw_buffer_dump),
     partition 0 first, oldest first; counted in stats().dumped. */
  std::vector<std::string> dump() {
    detail::DumpedItems d;
    detail::check(spw_buffer_dump(raw(), &d.items, &d.count));
    std::vector<std::string> out;
    out.reserve(d.count);
    for (std::size_t i = 0; i < d.count; i++)
      out.emplace_back(reinterpret_cast<const char *>(d.items[i].data), d.items[i].len);
    return out;
  }

  /* Sends the buffer's telemetry events to `on_event` (spw_buffer_observe),
     replacing the previous function, which is destroyed once no call of it
     runs. See the top of this file for its shape. */
  template <class OnEvent>
  void observe(OnEvent &&on_event) {
    using Holder = detail::EventHolder<std::decay_t<OnEvent>>;
    HolderPtr next(new Holder{std::forward<OnEvent>(on_event)}, &Holder::destroy);
    detail::check(spw_buffer_observe(raw(), &Holder::call, next.get()));
    observer_ = std::move(next);  // the old function is no longer called
  }

  /* Removes the event function (spw_buffer_observe with NULL). */
  void unobserve() {
    detail::check(spw_buffer_observe(raw(), nullptr, nullptr));
    observer_.reset();
  }

  /* Inserts items[0..count] in order (spw_buffer_insert_batch) and returns how
     many went in: all of them, or fewer when a partition was full
     (SPW_ERR_FULL, SPW_ERR_TIMEOUT). Any other failure throws. */
  [[nodiscard]] std::size_t insert_batch(const spw_item *items, std::size_t count) {
    std::size_t inserted = 0;
    spw_status st = spw_buffer_insert_batch(raw(), items, count, &inserted);
    detail::check_unless(st, SPW_ERR_FULL, SPW_ERR_TIMEOUT);
    return inserted;
  }

  /* Asks for a flush and returns at once (spw_buffer_flush). */
  void flush() { detail::check(spw_buffer_flush(raw())); }

  /* Waits until what is buffered now reached the sink (spw_buffer_sync_flush);
     throws SPW_ERR_SINK when some was given up, SPW_ERR_TIMEOUT. */
  void sync_flush(std::chrono::milliseconds timeout) {
    detail::check(spw_buffer_sync_flush(raw(), detail::timeout_ms(timeout)));
  }

  /* Items buffered or in flight now (spw_buffer_len). */
  std::size_t size() const {
    std::size_t n = 0;
    detail::check(spw_buffer_len(raw(), &n));
    return n;
  }

  /* The counters and gauges (spw_buffer_stats). */
  spw_stats stats() const {
    spw_stats s{};
    detail::check(spw_buffer_stats(raw(), &s));
    return s;
  }

  /* Stops accepting, flushes, and stops the threads (spw_buffer_close). The
     buffer is closed whatever happens; throws when not everything reached
     the sink (SPW_ERR_SINK, SPW_ERR_TIMEOUT). */
  void close(std::chrono::milliseconds timeout) {
    detail::check(spw_buffer_close(raw(), detail::timeout_ms(timeout)));
  }

  /* A lock-free handle for one thread (spw_buffer_producer). */
  Producer producer();

  /* The C object, still owned by this Buffer. */
  spw_buffer *get() const noexcept { return h_.get(); }

 private:
  using HolderPtr = std::unique_ptr<void, void (*)(void *)>;
  spw_buffer *raw() const { return h_.live("Buffer"); }
  static void no_holder(void *) noexcept {}

  HolderPtr sink_{nullptr, &no_holder};
  HolderPtr observer_{nullptr, &no_holder};
  detail::Handle<spw_buffer, spw_buffer_free> h_;
};

/* Inserts into a Buffer without a lock, from one thread at a time
   (spw_producer). It may outlive its Buffer: inserts then throw
   SPW_ERR_CLOSED. What it holds is still delivered after it is destroyed. */
class Producer {
 public:
  /* Takes ownership of a producer from spw_buffer_producer. */
  explicit Producer(spw_producer *raw) noexcept : h_(raw) {}

  /* Inserts a copy of the bytes (spw_producer_insert); throws on any failure. */
  void insert(const void *data, std::size_t size) {
    detail::check(spw_producer_insert(raw(), data, size));
  }
  void insert(std::string_view bytes) { insert(bytes.data(), bytes.size()); }

  /* As insert, but a full partition (SPW_ERR_FULL, SPW_ERR_TIMEOUT) returns false. */
  [[nodiscard]] bool try_insert(const void *data, std::size_t size) {
    return detail::check_unless(spw_producer_insert(raw(), data, size), SPW_ERR_FULL,
                                SPW_ERR_TIMEOUT);
  }
  [[nodiscard]] bool try_insert(std::string_view bytes) { return try_insert(bytes.data(), bytes.size()); }

  /* The C object, still owned by this Producer. */
  spw_producer *get() const noexcept { return h_.get(); }

 private:
  spw_producer *raw() const { return h_.live("Producer"); }
  detail::Handle<spw_producer, spw_producer_free> h_;
};

inline Producer Buffer::producer() {
  spw_producer *p = nullptr;
  detail::check(spw_buffer_producer(raw(), &p));
  return Producer(p);
}

/* A lock-free ring of T for one pushing and one popping thread (spw_spsc):
   elements are copied in and out byte for byte, so T must be trivially
   copyable. Once closed (close(), from any thread), pushes throw
   Error(SPW_ERR_CLOSED), and pops hand out what is left, then throw it. */
template <class T>
class Spsc {
  static_assert(std::is_trivially_copyable_v<T>,
                "Spsc<T> copies elements as bytes: T must be trivially copyable");

 public:
  /* A ring of `capacity` elements, all allocated now (spw_spsc_new). */
  explicit Spsc(std::size_t capacity) {
    spw_spsc *raw = nullptr;
    detail::check(spw_spsc_new(capacity, sizeof(T), &raw));
    h_.reset(raw);
  }

  /* Pushes one element without waiting; false when full (spw_spsc_push). */
  [[nodiscard]] bool try_push(const T &value) {
    return detail::check_unless(spw_spsc_push(raw(), &value), SPW_ERR_FULL, SPW_ERR_FULL);
  }
  /* Pushes one element, waiting up to `timeout` for room; false when none
     came (spw_spsc_push_timeout). */
  [[nodiscard]] bool push(const T &value, std::chrono::milliseconds timeout) {
    return detail::check_unless(
        spw_spsc_push_timeout(raw(), &value, detail::timeout_ms(timeout)), SPW_ERR_FULL,
        SPW_ERR_TIMEOUT);
  }
  /* Pushes as many of values[0..n] as fit now; returns how many (spw_spsc_push_n). */
  [[nodiscard]] std::size_t push_n(const T *values, std::size_t n) {
    std::size_t pushed = spw_spsc_push_n(raw(), values, n);
    if (pushed == 0) detail::check_count(values, n);
    return pushed;
  }

  /* Pops the oldest element without waiting; nullopt when empty (spw_spsc_pop). */
  [[nodiscard]] std::optional<T> try_pop() {
    Slot slot;
    if (!detail::check_unless(spw_spsc_pop(raw(), slot.bytes), SPW_ERR_EMPTY, SPW_ERR_EMPTY))
      return std::nullopt;
    return slot.value();
  }
  /* Pops the oldest element, waiting up to `timeout` for one; nullopt when
     none came (spw_spsc_pop_timeout). */
  [[nodiscard]] std::optional<T> pop(std::chrono::milliseconds timeout) {
    Slot slot;
    if (!detail::check_unless(spw_spsc_pop_timeout(raw(), slot.bytes, detail::timeout_ms(timeout)),
                              SPW_ERR_EMPTY, SPW_ERR_TIMEOUT))
      return std::nullopt;
    return slot.value();
  }
  /* Pops up to n of the oldest elements into out[0..]; returns how many (spw_spsc_pop_n). */
  [[nodiscard]] std::size_t pop_n(T *out, std::size_t n) {
    std::size_t popped = spw_spsc_pop_n(raw(), out, n);
    if (popped == 0) detail::check_count(out, n);
    return popped;
  }

  /* The number of elements now, from any thread (spw_spsc_len). */
  std::size_t size() const { return spw_spsc_len(raw()); }

  /* Closes the ring, from any thread, any number of times (spw_spsc_close):
     pushes throw SPW_ERR_CLOSED from now on, a waiting push or pop wakes
     up, and pops drain what is left and then throw SPW_ERR_CLOSED. This is
     how a producer says "no more". */
  void close() { detail::check(spw_spsc_close(raw())); }

  /* The C object, still owned by this Spsc. */
  spw_spsc *get() const noexcept { return h_.get(); }

 private:
  /* Room for one T that needs no default constructor: the library writes
     its bytes, and a trivially copyable T is then copied out of them. */
  struct Slot {
    alignas(T) unsigned char bytes[sizeof(T)];
    T value() const {
      return *std::launder(reinterpret_cast<const T *>(static_cast<const unsigned char *>(bytes)));
    }
  };

  spw_spsc *raw() const { return h_.live("Spsc"); }
  detail::Handle<spw_spsc, spw_spsc_free> h_;
};

/* A bounded ring of byte items for any number of threads (spw_ring).
   Destruction is spw_ring_free: close it and join the threads waiting on it
   first. */
class Ring {
 public:
  /* A ring of up to `capacity` items (spw_ring_new). */
  explicit Ring(std::size_t capacity) {
    spw_ring *raw = nullptr;
    detail::check(spw_ring_new(capacity, &raw));
    h_.reset(raw);
  }

  /* Appends a copy of the bytes, waiting up to `timeout` while full; false
     when still full (spw_ring_push). Throws SPW_ERR_CLOSED after close. */
  [[nodiscard]] bool push(const void *data, std::size_t size, std::chrono::milliseconds timeout = no_wait) {
    return detail::check_unless(spw_ring_push(raw(), data, size, detail::timeout_ms(timeout)),
                                SPW_ERR_FULL, SPW_ERR_TIMEOUT);
  }
  [[nodiscard]] bool push(std::string_view bytes, std::chrono::milliseconds timeout = no_wait) {
    return push(bytes.data(), bytes.size(), timeout);
  }

  /* Removes the oldest item, waiting up to `timeout` while empty; nullopt
     when still empty (spw_ring_pop). Throws SPW_ERR_CLOSED once closed and
     drained. */
  [[nodiscard]] std::optional<Bytes> pop(std::chrono::milliseconds timeout = no_wait) {
    std::uint8_t *data = nullptr;
    std::size_t len = 0;
    if (!detail::check_unless(spw_ring_pop(raw(), &data, &len, detail::timeout_ms(timeout)),
                              SPW_ERR_EMPTY, SPW_ERR_TIMEOUT))
      return std::nullopt;
    return Bytes(data, len);
  }

  /* The number of items now (spw_ring_len). */
  std::size_t size() const { return spw_ring_len(raw()); }

  /* Closes the ring and wakes its waiters (spw_ring_close). */
  void close() { spw_ring_close(raw()); }

  /* The C object, still owned by this Ring. */
  spw_ring *get() const noexcept { return h_.get(); }

 private:
  spw_ring *raw() const { return h_.live("Ring"); }
  detail::Handle<spw_ring, spw_ring_free> h_;
};

/* A durable FIFO of byte items in a directory (spw_spool). */
class Spool {
 public:
  /* Opens (or creates) the spool in `dir` with default settings (spw_spool_open). */
  explicit Spool(const std::string &dir) { open(dir, nullptr); }
  /* Opens it with the spool_* keys of `config`. */
  Spool(const std::string &dir, const Config &config) { open(dir, config.get()); }

  /* Appends a copy of the bytes (spw_spool_push); throws on any failure,
     SPW_ERR_FULL (spool_max_bytes reached) included. */
  void push(const void *data, std::size_t size) {
    detail::check(spw_spool_push(raw(), data, size));
  }
  void push(std::string_view bytes) { push(bytes.data(), bytes.size()); }

  /* As push, but a full spool (SPW_ERR_FULL) returns false. */
  [[nodiscard]] bool try_push(const void *data, std::size_t size) {
    return detail::check_unless(spw_spool_push(raw(), data, size), SPW_ERR_FULL, SPW_ERR_FULL);
  }
  [[nodiscard]] bool try_push(std::string_view bytes) { return try_push(bytes.data(), bytes.size()); }

  /* Removes the oldest item; nullopt when empty (spw_spool_pop). */
  [[nodiscard]] std::optional<Bytes> pop() { return take(&spw_spool_pop); }
  /* A copy of the oldest item, left in place; nullopt when empty (spw_spool_peek). */
  [[nodiscard]] std::optional<Bytes> peek() { return take(&spw_spool_peek); }
  /* Removes the newest item (pushed last); nullopt when empty (spw_spool_pop_newest). */
  [[nodiscard]] std::optional<Bytes> pop_newest() { return take(&spw_spool_pop_newest); }
  /* A copy of the newest item, left in place; nullopt when empty
     (spw_spool_peek_newest). */
  [[nodiscard]] std::optional<Bytes> peek_newest() { return take(&spw_spool_peek_newest); }

  /* Everything pushed so far is on disk and synced (spw_spool_flush). */
  void flush() { detail::check(spw_spool_flush(raw())); }

  /* The number of items held (spw_spool_len). */
  std::uint64_t size() const {
    std::uint64_t n = 0;
    detail::check(spw_spool_len(raw(), &n));
    return n;
  }

  /* Damaged stretches of the files skipped so far (spw_spool_skipped). */
  std::uint64_t skipped() const {
    std::uint64_t n = 0;
    detail::check(spw_spool_skipped(raw(), &n));
    return n;
  }

  /* Flushes and releases the directory (spw_spool_close); it must still be destroyed. */
  void close() { detail::check(spw_spool_close(raw())); }

  /* The C object, still owned by this Spool. */
  spw_spool *get() const noexcept { return h_.get(); }

 private:
  void open(const std::string &dir, const spw_config *config) {
    spw_spool *raw = nullptr;
    detail::check(spw_spool_open(dir.c_str(), config, &raw));
    h_.reset(raw);
  }
  std::optional<Bytes> take(spw_status (*fn)(spw_spool *, std::uint8_t **, std::size_t *)) {
    std::uint8_t *data = nullptr;
    std::size_t len = 0;
    if (!detail::check_unless(fn(raw(), &data, &len), SPW_ERR_EMPTY, SPW_ERR_EMPTY))
      return std::nullopt;
    return Bytes(data, len);
  }
  spw_spool *raw() const { return h_.live("Spool"); }
  detail::Handle<spw_spool, spw_spool_free> h_;
};

/* Where a source got to, as a Checkpoint stores it. */
struct Position {
  std::uint64_t record_number;
  std::int64_t timestamp_ms; /* unix milliseconds */
};

namespace detail {

/* The C callback of Checkpoint::each: calls the C++ visitor and turns what it
   does into the int the library expects. No exception leaves it: one is kept
   for each() to rethrow, and the walk stops. */
template <class Visit>
struct EachHolder {
  static_assert(std::is_invocable_v<Visit &, std::string_view, Position>,
                "a checkpoint visitor is callable as visit(std::string_view name, "
                "spillway::Position at)");
  using Result = std::invoke_result_t<Visit &, std::string_view, Position>;
  static_assert(std::is_same_v<Result, bool> || std::is_void_v<Result>,
                "a checkpoint visitor returns void or bool (false stops the walk)");

  Visit &visit;
  std::exception_ptr thrown;

  static int call(void *user_data, const char *name, std::uint64_t record_number,
                  std::int64_t timestamp_ms) noexcept {
    auto *holder = static_cast<EachHolder *>(user_data);
    try {
      Position at{record_number, timestamp_ms};
      if constexpr (std::is_void_v<Result>) {
        holder->visit(std::string_view(name), at);
        return 0;
      } else {
        return holder->visit(std::string_view(name), at) ? 0 : 1;
      }
    } catch (...) {
      // Unwinding into the library is undefined behaviour: stop the walk
      // and let each() rethrow once the library has returned.
      holder->thrown = std::current_exception();
      return 1;
    }
  }
};

}  // namespace detail

/* Named positions kept in a file, written in the background (spw_checkpoint). */
class Checkpoint {
 public:
  /* Loads (or starts) the file at `path` (spw_checkpoint_open): a writer
     thread saves it after `max_updates` persists or `interval`, whichever
     comes first (forever: never by time). Throws SPW_ERR_CORRUPT for a
     damaged file. */
  Checkpoint(const std::string &path, std::uint32_t max_updates,
             std::chrono::milliseconds interval) {
    spw_checkpoint *raw = nullptr;
    detail::check(
        spw_checkpoint_open(path.c_str(), max_updates, detail::timeout_ms(interval), &raw));
    h_.reset(raw);
  }

  /* Records the position of `name` (spw_checkpoint_persist). */
  void persist(const std::string &name, std::uint64_t record_number, std::int64_t timestamp_ms) {
    detail::check(spw_checkpoint_persist(raw(), name.c_str(), record_number, timestamp_ms));
  }
  void persist(const std::string &name, Position at) {
    persist(name, at.record_number, at.timestamp_ms);
  }

  /* The position of `name`; nullopt when it has none (spw_checkpoint_get). */
  [[nodiscard]] std::optional<Position> get(const std::string &name) const {
    Position at{};
    if (!detail::check_unless(
            spw_checkpoint_get(raw(), name.c_str(), &at.record_number, &at.timestamp_ms),
            SPW_ERR_EMPTY, SPW_ERR_EMPTY))
      return std::nullopt;
    return at;
  }

  /* Calls `visit(name, at)` for every entry, sorted by name, on this thread
     (spw_checkpoint_each); `name` is valid during the call only. A visitor
     returning bool stops the walk with false. An exception from `visit`
     stops the walk and is rethrown here. `visit` must not call into this
     Checkpoint. */
  template <class Visit>
  void each(Visit &&visit) const {
    using Holder = detail::EachHolder<std::remove_reference_t<Visit>>;
    Holder holder{visit, nullptr};
    detail::check(spw_checkpoint_each(raw(), &Holder::call, &holder));
    if (holder.thrown) std::rethrow_exception(holder.thrown);
  }

  /* Writes and syncs the file now (spw_checkpoint_flush). */
  void flush() { detail::check(spw_checkpoint_flush(raw())); }

  /* Flushes and stops the writer thread (spw_checkpoint_shutdown); later
     persists throw SPW_ERR_CLOSED. */
  void shutdown() { detail::check(spw_checkpoint_shutdown(raw())); }

  /* The C object, still owned by this Checkpoint. */
  spw_checkpoint *get() const noexcept { return h_.get(); }

 private:
  spw_checkpoint *raw() const { return h_.live("Checkpoint"); }
  detail::Handle<spw_checkpoint, spw_checkpoint_free> h_;
};
}  // namespace spillway

#endif /* SPILLWAY_HPP */
