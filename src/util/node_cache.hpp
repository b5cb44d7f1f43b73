#pragma once

// Nodes of a node-based map kept for reuse. A busy engine inserts and erases an entry per call
// in several maps; with the erased nodes kept (up to a limit), an insert allocates nothing.

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace failover::detail {

/** Keeps up to `limit` erased nodes of a `Map` (std::map, std::multimap, std::unordered_map)
 *  and inserts through them. */
template <typename Map>
class NodeCache {
 public:
  explicit NodeCache(std::size_t limit) : limit_(limit) {}

  /** Inserts (`key`, `value`), into a kept node when there is one; returns the entry. For a
   *  unique-key map the key must not be present (the node would be dropped, not inserted). */
  template <typename K, typename V>
  typename Map::iterator insert(Map& map, K&& key, V&& value) {
    if (spare_.empty()) return place(map.emplace(std::forward<K>(key), std::forward<V>(value)));
    typename Map::node_type node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = std::forward<K>(key);
    node.mapped() = std::forward<V>(value);
    return place(map.insert(std::move(node)));
  }

  /** Inserts `key` with the mapped value its kept node still holds (see `erase`), or with a
   *  default-constructed one when no node is kept; returns the entry. For unique-key maps only,
   *  with `insert`'s precondition. */
  typename Map::iterator acquire(Map& map, const typename Map::key_type& key) {
    if (spare_.empty()) return place(map.try_emplace(key));
    typename Map::node_type node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = key;
    return place(map.insert(std::move(node)));
  }

  /** Drops every kept node (and what it holds). */
  void clear() { spare_.clear(); }

  /** Erases the entry at `it`, keeping its node with the mapped value still in it (reset the
   *  value first when it holds something that must be released now). */
  void erase(Map& map, typename Map::iterator it) {
    typename Map::node_type node = map.extract(it);
    if (spare_.size() < limit_) spare_.push_back(std::move(node));
  }

 private:
  // The entry an insert or emplace made: multimaps answer with it, the others with a pair or
  // an insert_return_type around it.
  template <typename R>
  static typename Map::iterator place(R&& r) {
    using T = std::decay_t<R>;
    if constexpr (std::is_same_v<T, typename Map::iterator>) {
      return r;
    } else if constexpr (std::is_same_v<T, std::pair<typename Map::iterator, bool>>) {
      return r.first;
    } else {
      return r.position;
    }
  }

  std::size_t limit_;
  std::vector<typename Map::node_type> spare_;
};

}  // namespace failover::detail
