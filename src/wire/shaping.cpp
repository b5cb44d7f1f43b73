#include "wire/shaping.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace failover::wire {

namespace {

// Fields a request must keep whatever a route says: the SDK writes them itself.
bool protected_field(const std::string& name) {
  return name == "model" || name == "stream" || name == "messages";
}

// Sampling fields OpenAI's reasoning models refuse (400 unsupported_parameter or
// unsupported_value): their reasoning guide lists them as not supported.
const std::vector<std::string>& reasoning_model_drops() {
  static const std::vector<std::string> fields = {
      "temperature", "top_p",        "presence_penalty", "frequency_penalty",
      "logprobs",    "top_logprobs", "logit_bias"};
  return fields;
}

}  // namespace

bool is_openai_reasoning_model(std::string_view model) {
  if (auto slash = model.rfind('/'); slash != std::string_view::npos) {
    model.remove_prefix(slash + 1);
  }
  // o1, o3, o4-mini, o1-2024-12-17, ...: "o", a digit, then the end or a '-'.
  if (model.size() >= 2 && model[0] == 'o' && std::isdigit(static_cast<unsigned char>(model[1]))) {
    return model.size() == 2 || model[2] == '-';
  }
  // gpt-5, gpt-5-mini, gpt-5.1, ... (gpt-5-chat-latest is the non-reasoning chat model).
  if (model.rfind("gpt-5", 0) == 0 && model.find("-chat") == std::string_view::npos) {
    return model.size() == 5 || model[5] == '-' || model[5] == '.';
  }
  return false;
}

std::shared_ptr<const RequestShaping> make_shaping(const std::string& model,
                                                   const std::string& params,
                                                   const std::vector<std::string>& drop_params,
                                                   bool model_rules, const std::string& field) {
  auto s = std::make_shared<RequestShaping>();
  if (model_rules && is_openai_reasoning_model(model)) {
    s->max_tokens_as_max_completion_tokens = true;
    s->drop = reasoning_model_drops();
  }
  for (const std::string& name : drop_params) {
    if (name.empty()) throw std::invalid_argument(field + ".drop_params holds an empty name");
    if (protected_field(name)) {
      throw std::invalid_argument(field + ".drop_params may not drop \"" + name + "\"");
    }
    if (std::find(s->drop.begin(), s->drop.end(), name) == s->drop.end()) s->drop.push_back(name);
  }
  if (!params.empty()) {
    nlohmann::json p = nlohmann::json::parse(params, nullptr, /*allow_exceptions=*/false);
    if (p.is_discarded() || !p.is_object()) {
      throw std::invalid_argument(field + ".params must be a JSON object");
    }
    for (const auto& [name, value] : p.items()) {
      if (protected_field(name)) {
        throw std::invalid_argument(field + ".params may not set \"" + name + "\"");
      }
    }
    s->params = std::move(p);
  }
  if (!s->max_tokens_as_max_completion_tokens && s->drop.empty() && s->params.empty()) {
    return nullptr;
  }
  return s;
}

void shape(const RequestShaping& s, std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body);  // our own encoding: always valid
  if (s.max_tokens_as_max_completion_tokens && j.contains("max_tokens")) {
    if (!j.contains("max_completion_tokens")) j["max_completion_tokens"] = j["max_tokens"];
    j.erase("max_tokens");
  }
  for (const std::string& name : s.drop) j.erase(name);
  merge_params(s.params, j);
  body = j.dump();
}

void merge_params(const nlohmann::json& params, nlohmann::json& body) { body.merge_patch(params); }

}  // namespace failover::wire
