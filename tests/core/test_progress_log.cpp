#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "myotwin/core/log.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/core/timer.hpp"

using namespace myotwin;

TEST(Progress, ReporterCountsFromManyThreadsAndEndsAtTheTotal) {
  std::vector<ProgressEvent> events;
  std::mutex m;
  ProgressReporter p(
      [&](const ProgressEvent& e) {
        std::lock_guard<std::mutex> lock(m);
        events.push_back(e);
      },
      "fibres", 1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i)
        p.advance();
    });
  for (auto& t : threads)
    t.join();
  p.finish();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().done, 0u);
  EXPECT_EQ(events.back().done, 1000u);
  EXPECT_LE(events.size(), 102u); // at most once per percent, plus start and end
  for (std::size_t i = 1; i < events.size(); ++i)
    EXPECT_GE(events[i].done, events[i - 1].done);
}

TEST(Progress, PlainRendererWritesSparseLines) {
  std::ostringstream out;
  auto render = make_console_progress(out, false);
  ProgressReporter p(render, "electrodes", 200);
  for (int i = 0; i < 200; ++i)
    p.advance();
  p.finish();
  const std::string text = out.str();
  EXPECT_NE(text.find("electrodes: 0/200 (0%)"), std::string::npos);
  EXPECT_NE(text.find("electrodes: 200/200 (100%)"), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  const auto n_lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_EQ(n_lines, 11); // 0 %, 10 %, ..., 100 %
}

TEST(Progress, BarRendererRedrawsInPlace) {
  std::ostringstream out;
  auto render = make_console_progress(out, true);
  render({"mesh", 5, 10});
  render({"mesh", 10, 10});
  const std::string text = out.str();
  EXPECT_NE(text.find("\rmesh ["), std::string::npos);
  EXPECT_NE(text.find("100% (10/10)\n"), std::string::npos);
}

TEST(Log, LevelsFilterMessagesAndQuietKeepsWarnings) {
  std::ostringstream out;
  set_log_stream(out);
  set_log_level(LogLevel::warning);
  log_info("hidden");
  log_warning("seen ", 3);
  log_error("bad");
  set_log_level(LogLevel::debug);
  { ScopedTimer t("stage", LogLevel::debug); }
  set_log_level(LogLevel::info);
  set_log_stream(std::cerr);
  const std::string text = out.str();
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  EXPECT_NE(text.find("warning: seen 3\n"), std::string::npos);
  EXPECT_NE(text.find("error: bad\n"), std::string::npos);
  EXPECT_NE(text.find("stage: "), std::string::npos);
}
