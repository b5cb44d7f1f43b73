# cmake -DSRC=... -DBIN=... -DREADME=... -P check_packager_configure.cmake
# Configures the tree as a packager may: shared, with absolute library and include
# directories. Then checks what the configure wrote: failover.pc points at those directories,
# the installed tool's RUNPATH leads from its directory to the library's, and the options are
# exactly the ones README.md's "Build and install" table lists.
set(prefix "/usr")  # configured only: nothing is written there
set(libdir "/opt/failover/lib64")
set(includedir "/opt/failover/include")
file(REMOVE_RECURSE "${BIN}")
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SRC}" -B "${BIN}" -DBUILD_SHARED_LIBS=ON
                        "-DCMAKE_INSTALL_PREFIX=${prefix}" "-DCMAKE_INSTALL_LIBDIR=${libdir}"
                        "-DCMAKE_INSTALL_INCLUDEDIR=${includedir}" -DFAILOVER_BUILD_TESTS=OFF
                        -DFAILOVER_BUILD_BENCH=OFF -DFAILOVER_BUILD_EXAMPLES=OFF
                RESULT_VARIABLE configured OUTPUT_QUIET)
if(NOT configured EQUAL 0)
  message(FATAL_ERROR "configuring ${SRC} failed")
endif()

file(READ "${BIN}/failover.pc" pc)
foreach(line "libdir=${libdir}" "includedir=${includedir}")
  string(FIND "${pc}" "${line}\n" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "failover.pc lacks the line ${line}:\n${pc}")
  endif()
endforeach()

file(RELATIVE_PATH lib_from_bin "${prefix}/bin" "${libdir}")
file(READ "${BIN}/tools/failover/cmake_install.cmake" install_script)
string(FIND "${install_script}" "NEW_RPATH \"\\\$ORIGIN/${lib_from_bin}\"" at)  # \$ escaped
if(at EQUAL -1)
  message(FATAL_ERROR "the tool's install RUNPATH is not \$ORIGIN/${lib_from_bin}")
endif()

# The options: those the configure defined, and those the README's table lists.
function(option_names file regex out)
  file(STRINGS "${file}" lines REGEX "${regex}")
  set(names "")
  foreach(line IN LISTS lines)
    string(REGEX MATCH "FAILOVER_[A-Z_]+" name "${line}")
    list(APPEND names ${name})
  endforeach()
  set(${out} "${names}" PARENT_SCOPE)
endfunction()
option_names("${BIN}/CMakeCache.txt" "^FAILOVER_[A-Z_]+:BOOL=" defined)
option_names("${README}" "^\\| `FAILOVER_[A-Z_]+` \\|" documented)
list(SORT defined)
list(SORT documented)
if(NOT defined STREQUAL documented)
  message(FATAL_ERROR "options defined: ${defined}\nREADME lists: ${documented}")
endif()
list(LENGTH defined count)
message(STATUS "failover.pc, the tool's RUNPATH and ${count} documented options are right")
