#pragma once

// What nearly every test includes, precompiled once for all of them (tests/CMakeLists.txt):
// GoogleTest, nlohmann/json, spdlog and the public API are the bulk of a test's compile time.

#include <failover/failover.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>
