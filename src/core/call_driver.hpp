#pragma once

// A call driven on the calling thread: Client::chat and Client::chat_stream.

#include <failover/client.hpp>

namespace failover::detail {

class ClientCore;

/** Runs one call to its end on this thread, with a transport session from the core's pool:
 *  the call machine's steps are carried out here, and its result is handed to the core's
 *  after-call work (shadow traffic) before it is returned. */
Result<ChatResponse> run_call(ClientCore& core, const ChatRequest& request,
                              const CallOptions& options, StreamHandler handler);

}  // namespace failover::detail
