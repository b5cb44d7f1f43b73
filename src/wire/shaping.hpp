#pragma once

// Per-route request shaping: what one route's request body gets that the others' do not.
// `params` merged in, `drop_params` removed, and the built-in rules of known model families
// (OpenAI's reasoning models take `max_completion_tokens` and no sampling fields). Applied to
// the encoded body of a shaped route only; other routes pay nothing.

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace failover::wire {

struct RequestShaping {
  bool max_tokens_as_max_completion_tokens = false;  // a model rule
  std::vector<std::string> drop;                     // the model rules' and the route's
  nlohmann::json params = nlohmann::json::object();  // merged last; null removes a member
};

/** Whether `model` is one of OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 and their dated
 *  names), matched after any `vendor/` prefix a relay puts in front. */
bool is_openai_reasoning_model(std::string_view model);

/** The shaping of a route serving `model`, or null when its body goes as the request made it.
 *  Throws std::invalid_argument naming `field` for params that are not a JSON object, or that
 *  set or drop `model`, `stream` or `messages`. */
std::shared_ptr<const RequestShaping> make_shaping(const std::string& model,
                                                   const std::string& params,
                                                   const std::vector<std::string>& drop_params,
                                                   bool model_rules, const std::string& field);

/** Applies `shaping` to an encoded request body (a JSON object). */
void shape(const RequestShaping& shaping, std::string& body);

/** Merges a route's `params` into a body as a JSON Merge Patch (RFC 7386): an object merges
 *  into the body's object of that name, member by member and at any depth; any other value
 *  replaces; a null removes the member. */
void merge_params(const nlohmann::json& params, nlohmann::json& body);

}  // namespace failover::wire
