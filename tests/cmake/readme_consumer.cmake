# cmake -DREADME=... -DBIN=... -DPREFIX=... -P readme_consumer.cmake
# Builds the application of the README's "Using the installed package": its CMakeLists.txt
# and main.cpp exactly as the README shows them, against the installed package.
file(READ "${README}" readme)
string(FIND "${readme}" "\n## Using the installed package" start)
if(start EQUAL -1)
  message(FATAL_ERROR "README.md has no section \"Using the installed package\"")
endif()
string(SUBSTRING "${readme}" ${start} -1 section)
string(SUBSTRING "${section}" 1 -1 rest)
string(FIND "${rest}" "\n## " end)
if(NOT end EQUAL -1)
  string(SUBSTRING "${rest}" 0 ${end} section)
endif()

# The first block fenced as `lang`, without its fences.
function(fenced_block lang out)
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

fenced_block(cmake lists)
fenced_block(cpp source)
file(REMOVE_RECURSE "${BIN}")
file(WRITE "${BIN}/src/CMakeLists.txt" "${lists}")
file(WRITE "${BIN}/src/main.cpp" "${source}")
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
