#pragma once

// What a stream call shows its handler: an attempt's chunks are held until its first content
// (so that an attempt that fails before it fails over unseen), then handed over in order, a
// restart notice first when the attempt restarts a broken answer. The handler is application
// code: its throw stops the stream and is raised once the parser is done with the bytes.

#include "core/attempt_stream.hpp"

#include <failover/client.hpp>

#include <string>

namespace failover::detail {

class HandlerFeed {
 public:
  explicit HandlerFeed(StreamHandler handler) : handler_(std::move(handler)) {}

  /** Whether the call streams to a handler. */
  explicit operator bool() const { return handler_ != nullptr; }
  /** The handler was shown content of the current answer. */
  bool committed() const { return committed_; }
  /** The answer broke and is being recovered: the next attempt is unseen until its content. */
  void uncommit() { committed_ = false; }

  /** A chunk of attempt `s`: held before the first content, else shown (after the held ones). */
  void show(AttemptStream& s, ChatChunk chunk);
  /** The first content, or the answer's end: the restart notice if due, then the held chunks. */
  void commit(AttemptStream& s);
  /** Shows `chunk` (counted in `s`), unless the handler asked to stop. */
  void deliver(AttemptStream& s, const ChatChunk& chunk);

  /** The handler asked to stop (returned false) or threw. */
  bool stopped() const { return stopped_; }
  /** After it stopped: throws the HookError it raised, if it raised one. */
  void rethrow() const;

 private:
  StreamHandler handler_;
  bool committed_ = false;
  bool stopped_ = false;
  std::string error_;
};

}  // namespace failover::detail
