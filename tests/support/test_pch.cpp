// The target the tests share their precompiled header with (tests/CMakeLists.txt).
