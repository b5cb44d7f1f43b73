// Shadow comparisons and the report: pure functions and a locked accumulator.

#include <failover/traffic.hpp>

#include "util/ascii.hpp"
#include "util/format.hpp"
#include "util/percentile.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>
#include <unordered_map>

namespace failover {

namespace {

bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Letters, digits and every byte of a multi-byte UTF-8 sequence belong to words.
bool is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

std::unordered_map<std::string, int> word_counts(std::string_view text, std::size_t& total) {
  std::unordered_map<std::string, int> counts;
  std::string word;
  total = 0;
  auto flush = [&] {
    if (word.empty()) return;
    ++counts[word];
    ++total;
    word.clear();
  };
  for (unsigned char c : text) {
    if (is_word(c)) {
      word.push_back(detail::ascii_lower(static_cast<char>(c)));
    } else {
      flush();
    }
  }
  flush();
  return counts;
}

std::string last_user_message(const ChatRequest& request) {
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (it->role != "user") continue;
    if (it->content) return *it->content;
    std::string text;
    for (const ContentPart& p : it->parts) text += p.text;
    return text;
  }
  return {};
}

// What failed: the last attempt's error when the call gave up on its routes.
ErrorKind failure_kind(const Error& e) {
  if (e.kind() == ErrorKind::AllRoutesUnavailable && !e.attempts().empty() &&
      e.attempts().back().error) {
    return *e.attempts().back().error;
  }
  return e.kind();
}

std::vector<std::string> tool_names(const ChatResponse& r) {
  std::vector<std::string> names;
  for (const ToolCall& t : r.tool_calls()) names.push_back(t.name);
  return names;
}

LatencySummary summarize(const std::deque<Duration>& latencies) {
  LatencySummary s;
  s.count = latencies.size();
  if (latencies.empty()) return s;
  std::vector<Duration> sorted(latencies.begin(), latencies.end());
  std::sort(sorted.begin(), sorted.end());
  Duration total{};
  for (Duration d : sorted) total += d;
  s.mean = total / static_cast<Duration::rep>(sorted.size());
  s.p50 = detail::nearest_rank(sorted, 0.50);
  s.p95 = detail::nearest_rank(sorted, 0.95);
  s.p99 = detail::nearest_rank(sorted, 0.99);
  return s;
}

}  // namespace

std::string normalize_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (unsigned char c : text) {
    if (is_space(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(detail::ascii_lower(static_cast<char>(c)));
  }
  return out;
}

double token_similarity(std::string_view a, std::string_view b) {
  std::size_t total_a = 0;
  std::size_t total_b = 0;
  auto ca = word_counts(a, total_a);
  auto cb = word_counts(b, total_b);
  if (total_a + total_b == 0) return 1.0;
  std::size_t common = 0;
  for (const auto& [word, n] : ca) {
    auto it = cb.find(word);
    if (it != cb.end()) common += static_cast<std::size_t>(std::min(n, it->second));
  }
  return 2.0 * static_cast<double>(common) / static_cast<double>(total_a + total_b);
}

ShadowPair compare_results(const ChatRequest& request, const Result<ChatResponse>& primary,
                           Duration primary_latency, const Result<ChatResponse>& candidate,
                           Duration candidate_latency, const ShadowComparator& comparator) {
  ShadowPair p;
  p.prompt = last_user_message(request);
  p.primary_ok = primary.ok();
  p.candidate_ok = candidate.ok();
  if (!primary.ok()) p.primary_error = failure_kind(primary.error());
  if (!candidate.ok()) p.candidate_error = failure_kind(candidate.error());
  p.primary_latency = primary_latency;
  p.candidate_latency = candidate_latency;
  if (primary.ok()) {
    p.primary_text = primary.value().text();
    p.primary_finish_reason = primary.value().finish_reason();
  }
  if (candidate.ok()) {
    p.candidate_text = candidate.value().text();
    p.candidate_finish_reason = candidate.value().finish_reason();
    p.candidate_cost_usd = candidate.value().cost_usd;
  }
  if (!p.primary_ok || !p.candidate_ok) return p;
  const ChatResponse& a = primary.value();
  const ChatResponse& b = candidate.value();
  p.exact_match = normalize_text(a.text()) == normalize_text(b.text());
  double score = comparator ? comparator(request, a, b) : token_similarity(a.text(), b.text());
  p.similarity = std::isnan(score) ? 0.0 : std::clamp(score, 0.0, 1.0);
  p.finish_reason_match = a.finish_reason() == b.finish_reason();
  p.tool_names_match = tool_names(a) == tool_names(b);
  return p;
}

std::string_view to_string(ShadowVerdict verdict) noexcept {
  return verdict == ShadowVerdict::Ready ? "READY" : "NEEDS_TUNING";
}

struct ShadowAnalyzer::State {
  ShadowThresholds thresholds;
  std::size_t worst_pairs = 10;
  std::size_t max_latencies = 20000;
  mutable std::mutex mutex;
  std::uint64_t sampled = 0;
  std::uint64_t dropped = 0;
  std::uint64_t skipped = 0;
  std::uint64_t pairs = 0;
  std::uint64_t primary_ok = 0;
  std::uint64_t candidate_ok = 0;
  std::uint64_t both_ok = 0;
  std::uint64_t exact = 0;
  std::uint64_t finish_match = 0;
  std::uint64_t tools_match = 0;
  double similarity_sum = 0;
  Duration diff_sum{};
  double cost = 0;
  std::deque<Duration> primary_latencies;
  std::deque<Duration> candidate_latencies;
  std::vector<ShadowPair> worst;  // kept sorted, worst first

  static void push(std::deque<Duration>& q, Duration d, std::size_t cap) {
    if (cap == 0) return;
    if (q.size() == cap) q.pop_front();
    q.push_back(d);
  }
  // Worse first: a lone candidate failure after every answered pair, lower similarity first.
  static bool worse(const ShadowPair& a, const ShadowPair& b) {
    const bool fa = !a.candidate_ok;
    const bool fb = !b.candidate_ok;
    if (fa != fb) return !fa;
    return a.similarity < b.similarity;
  }
};

ShadowAnalyzer::ShadowAnalyzer(ShadowThresholds thresholds, std::size_t worst_pairs,
                               std::size_t max_latencies)
    : state_(std::make_unique<State>()) {
  state_->thresholds = thresholds;
  state_->worst_pairs = worst_pairs;
  state_->max_latencies = max_latencies;
}

ShadowAnalyzer::~ShadowAnalyzer() = default;

void ShadowAnalyzer::count_sampled() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  ++state_->sampled;
}

void ShadowAnalyzer::count_dropped() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  ++state_->dropped;
}

void ShadowAnalyzer::count_skipped() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  ++state_->skipped;
}

void ShadowAnalyzer::add(ShadowPair pair) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  ++s.pairs;
  if (pair.primary_ok) {
    ++s.primary_ok;
    State::push(s.primary_latencies, pair.primary_latency, s.max_latencies);
  }
  if (pair.candidate_ok) {
    ++s.candidate_ok;
    State::push(s.candidate_latencies, pair.candidate_latency, s.max_latencies);
    if (pair.candidate_cost_usd) s.cost += *pair.candidate_cost_usd;
  }
  if (pair.primary_ok && pair.candidate_ok) {
    ++s.both_ok;
    s.exact += pair.exact_match ? 1 : 0;
    s.finish_match += pair.finish_reason_match ? 1 : 0;
    s.tools_match += pair.tool_names_match ? 1 : 0;
    s.similarity_sum += pair.similarity;
    s.diff_sum += pair.candidate_latency - pair.primary_latency;
  }
  // Only pairs that say something about the candidate: both answered, or it alone failed.
  if (!pair.primary_ok || s.worst_pairs == 0) return;
  auto at = std::upper_bound(s.worst.begin(), s.worst.end(), pair, State::worse);
  if (s.worst.size() == s.worst_pairs && at == s.worst.end()) return;
  s.worst.insert(at, std::move(pair));
  if (s.worst.size() > s.worst_pairs) s.worst.pop_back();
}

ShadowReport ShadowAnalyzer::report() const {
  const State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  ShadowReport r;
  r.thresholds = s.thresholds;
  r.sampled = s.sampled;
  r.dropped = s.dropped;
  r.skipped = s.skipped;
  r.pairs = s.pairs;
  r.primary_ok = s.primary_ok;
  r.candidate_ok = s.candidate_ok;
  r.both_ok = s.both_ok;
  auto rate = [](std::uint64_t n, std::uint64_t d) {
    return d == 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(d);
  };
  r.primary_success_rate = rate(s.primary_ok, s.pairs);
  r.candidate_success_rate = rate(s.candidate_ok, s.pairs);
  r.primary_latency = summarize(s.primary_latencies);
  r.candidate_latency = summarize(s.candidate_latencies);
  if (s.both_ok > 0) {
    r.mean_latency_diff = s.diff_sum / static_cast<Duration::rep>(s.both_ok);
    r.mean_similarity = s.similarity_sum / static_cast<double>(s.both_ok);
  }
  r.exact_match_rate = rate(s.exact, s.both_ok);
  r.finish_reason_match_rate = rate(s.finish_match, s.both_ok);
  r.tool_names_match_rate = rate(s.tools_match, s.both_ok);
  r.candidate_cost_usd = s.cost;
  r.primary_latencies.assign(s.primary_latencies.begin(), s.primary_latencies.end());
  r.candidate_latencies.assign(s.candidate_latencies.begin(), s.candidate_latencies.end());
  r.worst = s.worst;

  const ShadowThresholds& t = s.thresholds;
  if (s.pairs < t.min_pairs) {
    r.reasons.push_back("only " + std::to_string(s.pairs) + " pairs compared; at least " +
                        std::to_string(t.min_pairs) + " are needed");
  }
  if (s.pairs > 0 && r.candidate_success_rate < t.min_success_rate) {
    r.reasons.push_back("candidate success rate " + detail::percent_text(r.candidate_success_rate) +
                        " is below " + detail::percent_text(t.min_success_rate));
  }
  if (s.both_ok > 0 && r.mean_similarity < t.min_similarity) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "mean similarity %.3f is below %.3f", r.mean_similarity,
                  t.min_similarity);
    r.reasons.emplace_back(buf);
  }
  if (s.pairs > 0 && s.both_ok == 0) {
    r.reasons.emplace_back("no pair where both sides answered: nothing to compare");
  }
  if (r.primary_latency.count > 0 && r.candidate_latency.count > 0 &&
      r.primary_latency.p95 > Duration::zero()) {
    double ratio = std::chrono::duration<double>(r.candidate_latency.p95).count() /
                   std::chrono::duration<double>(r.primary_latency.p95).count();
    if (ratio > t.max_p95_ratio) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " (%.2fx, limit %.2fx)", ratio, t.max_p95_ratio);
      r.reasons.push_back("candidate p95 " + detail::millis_text(r.candidate_latency.p95) +
                          " vs primary " + detail::millis_text(r.primary_latency.p95) + buf);
    }
  }
  r.recommendation = r.reasons.empty() ? ShadowVerdict::Ready : ShadowVerdict::NeedsTuning;
  return r;
}

}  // namespace failover
