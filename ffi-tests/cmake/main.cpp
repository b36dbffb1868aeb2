// Batches words through spillway::Buffer and checks that each arrived once, in order.
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <spillway.hpp>

int main() {
  std::mutex mu;
  std::vector<std::string> got;
  try {
    spillway::Config cfg;
    cfg.set("max_size", "2").set("flush_interval", "100ms");
    spillway::Buffer buf(cfg, [&](spillway::Batch batch) {
      std::lock_guard<std::mutex> lock(mu);
      for (std::string_view word : batch) got.emplace_back(word);
      return true;
    });
    for (const char *word : {"one", "two", "three"}) buf.insert(word);
    buf.close(std::chrono::seconds(5));
  } catch (const spillway::Error &e) {
    std::fprintf(stderr, "spillway: %s (%s)\n", e.what(), e.status_name());
    return 1;
  }
  std::printf("spillway %s: %zu words\n", spillway::version(), got.size());
  return got == std::vector<std::string>{"one", "two", "three"} ? 0 : 1;
}
