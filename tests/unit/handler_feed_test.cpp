// What a stream call shows its handler: chunks held until the first content, a restart notice
// first when an attempt restarts the answer, and a handler that stops or throws.

#include "core/handler_feed.hpp"
#include "core/user_code.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace failover {
namespace {

using detail::AttemptStream;
using detail::HandlerFeed;

ChatChunk text(const std::string& t) {
  ChatChunk c;
  c.choices.emplace_back();
  c.choices[0].content = t;
  return c;
}
ChatChunk role() {
  ChatChunk c;
  c.choices.emplace_back();
  c.choices[0].role = "assistant";
  return c;
}

struct HandlerFeedTest : ::testing::Test {
  std::vector<std::string> seen;  // "restart", "role", or the text
  bool keep_going = true;
  HandlerFeed feed{[this](const ChatChunk& c) {
    if (c.restart) {
      seen.push_back("restart");
    } else if (!c.choices.empty() && !c.choices[0].role.empty()) {
      seen.push_back("role");
    } else {
      seen.push_back(c.choices.empty() ? "" : c.choices[0].content);
    }
    return keep_going;
  }};
  AttemptStream stream(bool restarts = false) {
    return AttemptStream(wire::api_of(Dialect::OpenAI), TimePoint{}, false, restarts);
  }
};

TEST_F(HandlerFeedTest, ChunksBeforeTheFirstContentAreHeldThenShownInOrder) {
  ASSERT_TRUE(static_cast<bool>(feed));
  AttemptStream s = stream();
  feed.show(s, role());
  EXPECT_TRUE(seen.empty());
  EXPECT_FALSE(feed.committed());
  feed.show(s, text("Hi"));
  EXPECT_TRUE(feed.committed());
  feed.show(s, text(" there"));
  EXPECT_EQ(seen, (std::vector<std::string>{"role", "Hi", " there"}));
  EXPECT_EQ(s.delivered_chunks, 3);
  EXPECT_EQ(s.delivered_chars, 8u);
}

TEST_F(HandlerFeedTest, ARestartedAnswerOpensWithTheNoticeOnce) {
  AttemptStream s = stream(/*restarts=*/true);
  feed.show(s, text("Again"));
  feed.show(s, text("!"));
  EXPECT_EQ(seen, (std::vector<std::string>{"restart", "Again", "!"}));
  EXPECT_EQ(s.delivered_chunks, 2);  // the notice is not the answer
  feed.uncommit();                   // it broke again: the next attempt is unseen at first
  AttemptStream next = stream();
  feed.show(next, role());
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(HandlerFeedTest, AnAnswerWithNoContentIsHandedOverAtItsEnd) {
  AttemptStream s = stream();
  feed.show(s, role());
  feed.commit(s);
  EXPECT_EQ(seen, (std::vector<std::string>{"role"}));
}

TEST_F(HandlerFeedTest, AHandlerThatAsksToStopIsShownNothingMore) {
  AttemptStream s = stream();
  keep_going = false;
  feed.show(s, text("a"));
  EXPECT_TRUE(feed.stopped());
  EXPECT_NO_THROW(feed.rethrow());
  feed.show(s, text("b"));
  EXPECT_EQ(seen, (std::vector<std::string>{"a"}));
}

TEST_F(HandlerFeedTest, AHandlerThatThrowsStopsAndItsErrorIsRaisedAfter) {
  HandlerFeed throwing([](const ChatChunk&) -> bool { throw std::runtime_error("boom"); });
  AttemptStream s = stream();
  EXPECT_NO_THROW(throwing.show(s, text("a")));
  EXPECT_TRUE(throwing.stopped());
  try {
    throwing.rethrow();
    ADD_FAILURE() << "no HookError";
  } catch (const detail::HookError& e) {
    EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace failover
