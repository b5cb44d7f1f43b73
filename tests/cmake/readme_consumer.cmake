# cmake -DREADME=... -DBIN=... -DPREFIX=... -P readme_consumer.cmake
# Builds the application of the README's "Using the installed package": its CMakeLists.txt
# and main.cpp exactly as the README shows them, against the installed package.
file(READ "${README}" readme)

# The README's section under "## <title>", up to the next "## ".
function(section_of title out)
  string(FIND "${readme}" "\n## ${title}\n" start)
  if(start EQUAL -1)
    message(FATAL_ERROR "README.md has no section \"${title}\"")
  endif()
  string(SUBSTRING "${readme}" ${start} -1 section)
  string(SUBSTRING "${section}" 1 -1 rest)
  string(FIND "${rest}" "\n## " end)
  if(NOT end EQUAL -1)
    string(SUBSTRING "${rest}" 0 ${end} section)
  endif()
  set(${out} "${section}" PARENT_SCOPE)
endfunction()

# The first block of `section` fenced as `lang`, without its fences.
function(fenced_block section lang out)
  string(FIND "${section}" "```${lang}\n" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the section has no ```${lang} block")
  endif()
  string(LENGTH "```${lang}\n" fence)
  math(EXPR from "${at} + ${fence}")
  string(SUBSTRING "${section}" ${from} -1 tail)
  string(FIND "${tail}" "```" stop)
  string(SUBSTRING "${tail}" 0 ${stop} text)
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

section_of("Using the installed package" installed)
fenced_block("${installed}" cmake lists)
fenced_block("${installed}" cpp source)
section_of("Quick start" quick)
fenced_block("${quick}" cpp quickstart)
file(REMOVE_RECURSE "${BIN}")
# The quick start beside the application, held to -Wall -Wextra -Werror.
string(APPEND lists "
add_executable(quickstart quickstart.cpp)
target_link_libraries(quickstart PRIVATE failover::failover)
target_compile_options(quickstart PRIVATE -Wall -Wextra -Werror)
")
file(WRITE "${BIN}/src/CMakeLists.txt" "${lists}")
file(WRITE "${BIN}/src/main.cpp" "${source}")
file(WRITE "${BIN}/src/quickstart.cpp" "${quickstart}")
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${BIN}/src" -B "${BIN}/build"
                        -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${PREFIX}"
                RESULT_VARIABLE configured)
if(NOT configured EQUAL 0)
  message(FATAL_ERROR "configuring the README's application failed")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BIN}/build" RESULT_VARIABLE built)
if(NOT built EQUAL 0)
  message(FATAL_ERROR "building the README's application failed")
endif()
