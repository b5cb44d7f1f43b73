#pragma once

/**
 * @file chat.hpp  Chat Completions wire types, named after the OpenAI API description
 * (`CreateChatCompletionRequest`, `CreateChatCompletionResponse`).
 *
 * JSON that the SDK does not model travels as text: tool parameter schemas, JSON schemas and
 * the request's `extra_json` passthrough are JSON text validated before any traffic, and every
 * response keeps the body exactly as the server sent it in `ChatResponse::raw_json`.
 */

#include <failover/error.hpp>
#include <failover/export.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace failover {

/** One part of a multi-part message content. */
struct FAILOVER_EXPORT ContentPart {
  /** The kind of part. */
  enum class Type {
    Text,        ///< `{"type":"text","text":...}`
    ImageUrl,    ///< `{"type":"image_url","image_url":{"url":...,"detail":...}}`
    InputAudio,  ///< `{"type":"input_audio","input_audio":{"data":...,"format":...}}`
    Raw,         ///< `raw_json` is sent as the part object, unchanged.
  };
  Type type = Type::Text;  ///< Which fields below apply.
  std::string text;        ///< Text, for `Text`.
  std::string url;         ///< Image URL or `data:` URI, for `ImageUrl`.
  std::string detail;      ///< `auto`, `low` or `high` (optional), for `ImageUrl`.
  std::string data;        ///< Base64 audio, for `InputAudio`.
  std::string format;      ///< `wav` or `mp3`, for `InputAudio`.
  std::string raw_json;    ///< A JSON object, for `Raw`.

  /** A text part. */
  static ContentPart text_part(std::string text);
  /** An image part. */
  static ContentPart image(std::string url, std::string detail = {});
  /** An audio part. */
  static ContentPart audio(std::string base64_data, std::string format);
};

/** A function call requested by the model (`ChatCompletionMessageToolCall`). */
struct ToolCall {
  std::string id;                 ///< Call id, echoed back in the tool message.
  std::string type = "function";  ///< Always `function` today.
  std::string name;               ///< Function name.
  std::string arguments;          ///< Arguments as JSON text, exactly as the model produced them.
};

/** A citation the model attached to its answer (`annotations[]` of type `url_citation`). */
struct Annotation {
  std::string type = "url_citation";  ///< Always `url_citation` today.
  std::string url;                    ///< The cited web resource.
  std::string title;                  ///< Its title.
  std::int64_t start_index = 0;       ///< First character of the citation in the content.
  std::int64_t end_index = 0;         ///< One past its last character.
};

/** One chat message, any role. */
struct FAILOVER_EXPORT Message {
  std::string role;                    ///< `system`, `developer`, `user`, `assistant`, `tool`.
  std::optional<std::string> content;  ///< Plain text content (absent for tool-call turns).
  std::vector<ContentPart> parts;      ///< Multi-part content; used when non-empty.
  std::string name;                    ///< Optional participant name.
  std::vector<ToolCall> tool_calls;    ///< For assistant messages that called tools.
  std::string tool_call_id;            ///< For `tool` messages: the call answered.
  std::optional<std::string> refusal;  ///< For assistant messages: a refusal, if any.
  /** For assistant messages in responses: the model's reasoning, as DeepSeek, vLLM, xAI and
   *  Qwen send it (`reasoning_content`) or OpenRouter does (`reasoning`). Never sent in a
   *  request: providers refuse it in input messages. */
  std::optional<std::string> reasoning;
  /** For assistant messages in responses: URL citations (web search). Never sent. */
  std::vector<Annotation> annotations;

  /** A system message. */
  static Message system(std::string text);
  /** A developer message (the newer name of system for reasoning models). */
  static Message developer(std::string text);
  /** A user message with text. */
  static Message user(std::string text);
  /** A user message with several parts (text, images, audio). */
  static Message user(std::vector<ContentPart> parts);
  /** An assistant message with text. */
  static Message assistant(std::string text);
  /** An assistant message that called tools. */
  static Message assistant(std::vector<ToolCall> calls);
  /** A tool result answering `tool_call_id`. */
  static Message tool(std::string tool_call_id, std::string content);
};

/** A function the model may call (`ChatCompletionTool`). */
struct Tool {
  std::string name;             ///< Function name: a-z, A-Z, 0-9, `_` and `-`, up to 64.
  std::string description;      ///< What it does (optional).
  std::string parameters_json;  ///< JSON Schema object as text (optional; empty = none).
  std::optional<bool> strict;   ///< Strict schema adherence (optional).
};

/** `tool_choice`: a mode, or one named function. */
struct ToolChoice {
  std::string mode;      ///< `none`, `auto` or `required`; empty when `function` is set.
  std::string function;  ///< Forces this function when non-empty.

  /** `"none"`. */
  static ToolChoice none() { return {"none", {}}; }
  /** `"auto"`. */
  static ToolChoice automatic() { return {"auto", {}}; }
  /** `"required"`. */
  static ToolChoice required() { return {"required", {}}; }
  /** Forces the named function. */
  static ToolChoice named(std::string name) { return {{}, std::move(name)}; }
};

/** `response_format`. */
struct ResponseFormat {
  std::string type = "text";       ///< `text`, `json_object` or `json_schema`.
  std::string schema_name;         ///< For `json_schema`: the schema's name.
  std::string schema_description;  ///< For `json_schema`: optional description.
  std::string schema_json;         ///< For `json_schema`: the JSON Schema as text.
  std::optional<bool> strict;      ///< For `json_schema`: strict adherence.
};

/** `audio`: parameters of audio output (with `modalities` holding `audio`). */
struct AudioOutput {
  std::string voice;   ///< A built-in voice (`alloy`, `ash`, ...) or a custom voice id
                       ///< (`voice_...`, sent as `{"id": ...}`).
  std::string format;  ///< `wav`, `aac`, `mp3`, `flac`, `opus` or `pcm16`.
};

/**
 * A chat completion request. The model is not part of it: each route names its own model.
 * Use `CallOptions::models` to restrict a call to some models.
 */
struct ChatRequest {
  std::vector<Message> messages;                      ///< The conversation; must not be empty.
  std::vector<Tool> tools;                            ///< Tools the model may call.
  std::optional<ToolChoice> tool_choice;              ///< How tools may be chosen.
  std::optional<bool> parallel_tool_calls;            ///< Allow several tool calls in one turn.
  std::optional<ResponseFormat> response_format;      ///< Text, JSON object or JSON schema.
  std::optional<double> temperature;                  ///< 0 to 2.
  std::optional<double> top_p;                        ///< 0 to 1.
  std::optional<std::int64_t> max_tokens;             ///< Legacy output cap.
  std::optional<std::int64_t> max_completion_tokens;  ///< Output cap including reasoning.
  std::optional<double> presence_penalty;             ///< -2 to 2.
  std::optional<double> frequency_penalty;            ///< -2 to 2.
  std::vector<std::string> stop;                      ///< Up to 4 stop sequences.
  std::optional<std::int64_t> seed;                   ///< Best-effort determinism.
  std::optional<int> n;                               ///< Number of choices.
  std::string user;                                   ///< End-user id for abuse monitoring.
  std::optional<bool> include_usage;                  ///< `stream_options.include_usage` (streams).
  /** `reasoning_effort` of reasoning models: `none`, `minimal`, `low`, `medium`, `high`,
   *  `xhigh` or `max`; empty = not sent. */
  std::string reasoning_effort;
  std::string verbosity;            ///< `low`, `medium` or `high`; empty = not sent.
  std::optional<bool> logprobs;     ///< Return log probabilities of the output tokens.
  std::optional<int> top_logprobs;  ///< 0 to 20 most likely tokens per position (`logprobs`).
  /** Token id (as decimal text) to a bias from -100 to 100. */
  std::map<std::string, int> logit_bias;
  /** `service_tier`: `auto`, `default`, `flex`, `scale`, `priority` or `fast`; empty = not sent. */
  std::string service_tier;
  std::optional<bool> store;  ///< Store the completion (distillation, evals).
  /** Up to 16 pairs; keys up to 64 characters, values up to 512. */
  std::map<std::string, std::string> metadata;
  /** Predicted output (`prediction: {"type": "content", "content": ...}`). */
  std::optional<std::string> prediction;
  std::vector<std::string> modalities;  ///< Output types: `text`, `audio`.
  std::optional<AudioOutput> audio;     ///< Audio output parameters.
  /** `web_search_options` as a JSON object text (`search_context_size`, `user_location`). */
  std::string web_search_options_json;
  std::string prompt_cache_key;   ///< Groups requests for prompt caching.
  std::string safety_identifier;  ///< A stable, hashed end-user id for abuse detection.
  /**
   * A JSON object whose members are merged into the request body as they are, for fields the
   * SDK does not model (`metadata`, and provider extensions such as vLLM's `top_k` or
   * OpenRouter's `provider`). Its members override modelled fields of the same name. `model` and
   * `stream` may not be set here.
   */
  std::string extra_json;
};

/** Token accounting (`CompletionUsage`). */
struct Usage {
  std::int64_t prompt_tokens = 0;      ///< Input tokens.
  std::int64_t completion_tokens = 0;  ///< Output tokens.
  std::int64_t total_tokens = 0;       ///< Sum as reported.
  std::int64_t cached_tokens = 0;      ///< `prompt_tokens_details.cached_tokens`.
  /** Prompt tokens written to the provider's cache (Anthropic's `cache_creation_input_tokens`),
   *  part of `prompt_tokens`; `prompt_tokens_details.cache_write_tokens`. */
  std::int64_t cache_write_tokens = 0;
  std::int64_t prompt_audio_tokens = 0;         ///< `prompt_tokens_details.audio_tokens`.
  std::int64_t reasoning_tokens = 0;            ///< `completion_tokens_details.reasoning_tokens`.
  std::int64_t completion_audio_tokens = 0;     ///< `completion_tokens_details.audio_tokens`.
  std::int64_t accepted_prediction_tokens = 0;  ///< Predicted-output tokens accepted.
  std::int64_t rejected_prediction_tokens = 0;  ///< Predicted-output tokens rejected.
};

/** One choice of a response. */
struct Choice {
  int index = 0;              ///< Position among the choices.
  Message message;            ///< The assistant message.
  std::string finish_reason;  ///< `stop`, `length`, `tool_calls`, `content_filter`, ...
  /** `logprobs` as JSON text (`{"content": [...], "refusal": [...]}`), empty when not sent. */
  std::string logprobs_json;
};

/** A chat completion response, plus where it came from and how. */
struct FAILOVER_EXPORT ChatResponse {
  std::string id;                  ///< Provider's completion id.
  std::string object;              ///< `chat.completion`.
  std::int64_t created = 0;        ///< Unix seconds.
  std::string model;               ///< Model that answered, as the provider reports it.
  std::string system_fingerprint;  ///< Backend configuration fingerprint, if sent.
  std::string service_tier;        ///< Service tier, if sent.
  std::vector<Choice> choices;     ///< The choices.
  std::optional<Usage> usage;      ///< Token usage, when the provider sent it.
  /** The body exactly as received (unknown fields included). A stream's, and an answer of a
   *  native dialect's, is the `chat.completion` object built from what arrived. */
  std::string raw_json;
  /** For a route of a native dialect (`Dialect::Anthropic`, `Dialect::Gemini`): the provider's
   *  body exactly as received (empty for streams and OpenAI-compatible routes). */
  std::string native_json;
  RouteRef served_by;  ///< The route that produced this response.
  /** Cost of this response from its usage and the model's price; empty without either. */
  std::optional<double> cost_usd;
  std::vector<Attempt> attempts;  ///< Every attempt of the call, the successful one last.
  /** Routes passed over before any traffic (cooling down, circuit open, at a rate limit, over
   *  budget), with why and until when. */
  std::vector<SkippedRoute> skipped;

  /** Content of the first choice's message, or empty. */
  const std::string& text() const;
  /** Tool calls of the first choice's message (empty when none). */
  const std::vector<ToolCall>& tool_calls() const;
  /** finish_reason of the first choice, or empty. */
  const std::string& finish_reason() const;
  /** Reasoning of the first choice's message, or empty. */
  const std::string& reasoning() const;
  /** Whether the provider's content filter cut or withheld an answer (some choice finished
   *  with `content_filter`). Such a response is returned as it is, not retried elsewhere. */
  bool content_filtered() const;
};

/** A piece of a tool call inside a stream chunk; arguments arrive in fragments. */
struct ToolCallDelta {
  /** Which tool call of the message this piece belongs to; when the provider sends no index
   *  (Mistral), the piece's position in the chunk's list. */
  int index = 0;
  std::string id;         ///< Set on the first piece of a call.
  std::string type;       ///< Set on the first piece of a call (`function`).
  std::string name;       ///< Set on the first piece of a call.
  std::string arguments;  ///< A fragment of the arguments' JSON text.
};

/** The change one stream chunk brings to one choice (`ChatCompletionStreamResponseDelta`). */
struct ChoiceDelta {
  int index = 0;                          ///< Which choice.
  std::string role;                       ///< Usually only on the first chunk.
  std::string content;                    ///< Text fragment (may be empty).
  std::string refusal;                    ///< Refusal fragment (may be empty).
  std::string reasoning;                  ///< Reasoning fragment (may be empty).
  std::vector<ToolCallDelta> tool_calls;  ///< Tool-call fragments.
  std::string finish_reason;              ///< Set on the choice's last chunk.
  std::string logprobs_json;              ///< This chunk's `logprobs` as JSON text, if any.
  std::vector<Annotation> annotations;    ///< URL citations this chunk adds.
};

/** One chunk of a streamed completion (`CreateChatCompletionStreamResponse`). */
struct FAILOVER_EXPORT ChatChunk {
  std::string id;                    ///< Completion id (the same on every chunk).
  std::string model;                 ///< Model as reported by the provider.
  std::int64_t created = 0;          ///< Unix seconds.
  std::string system_fingerprint;    ///< Backend fingerprint, if sent.
  std::string service_tier;          ///< Service tier, if sent.
  std::vector<ChoiceDelta> choices;  ///< Deltas; empty on the final usage chunk.
  std::optional<Usage> usage;        ///< With `include_usage`, on the last chunk.
  std::string raw_json;              ///< The chunk's `data:` payload as received.
  /** A restart notice (`StreamRecovery::Restart`), not a provider's chunk: the stream broke
   *  and the whole answer follows from another route, so discard everything this call has
   *  shown. Its other fields are empty. */
  bool restart = false;

  /** Text fragment of the first choice, or empty. */
  const std::string& content() const;
  /** Reasoning fragment of the first choice, or empty. */
  const std::string& reasoning() const;
};

}  // namespace failover
