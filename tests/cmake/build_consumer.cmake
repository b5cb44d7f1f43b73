# cmake -DSRC=... -DBIN=... [-DAPP_SOURCE=...] [-DPREFIX=...] [-DFAILOVER_SOURCE_DIR=...]
#       [-DARGS=a|b|...] [-DNO_PKG_CONFIG=ON] [-DCONFIGURE_ONLY=ON] [-DINSTALL_PREFIX=...]
#       -P build_consumer.cmake
# Configures and builds one consumer project, failing loudly on any error. ARGS are more
# configure arguments, separated by |. NO_PKG_CONFIG hides every pkg-config module of the
# machine from the configure step; INSTALL_PREFIX installs the project there afterwards.
# No optimisation: these builds check packaging, not speed, and build the library faster so.
set(args -DCMAKE_BUILD_TYPE=)
foreach(var APP_SOURCE FAILOVER_SOURCE_DIR)
  if(${var})
    list(APPEND args "-D${var}=${${var}}")
  endif()
endforeach()
if(PREFIX)
  list(APPEND args "-DCMAKE_PREFIX_PATH=${PREFIX}")
endif()
if(ARGS)
  string(REPLACE "|" ";" more "${ARGS}")
  list(APPEND args ${more})
endif()
set(env)
if(NO_PKG_CONFIG)
  file(MAKE_DIRECTORY "${BIN}-empty")
  set(env ${CMAKE_COMMAND} -E env "PKG_CONFIG_LIBDIR=${BIN}-empty" --unset=PKG_CONFIG_PATH)
endif()
file(REMOVE_RECURSE "${BIN}")
execute_process(COMMAND ${env} "${CMAKE_COMMAND}" -S "${SRC}" -B "${BIN}" ${args}
                RESULT_VARIABLE configured)
if(NOT configured EQUAL 0)
  message(FATAL_ERROR "configuring ${SRC} failed")
endif()
if(CONFIGURE_ONLY)
  return()
endif()
cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BIN}" --parallel ${cores}
                RESULT_VARIABLE built)
if(NOT built EQUAL 0)
  message(FATAL_ERROR "building ${SRC} failed")
endif()
if(INSTALL_PREFIX)
  file(REMOVE_RECURSE "${INSTALL_PREFIX}")
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BIN}" --prefix "${INSTALL_PREFIX}"
                  RESULT_VARIABLE installed)
  if(NOT installed EQUAL 0)
    message(FATAL_ERROR "installing ${SRC} failed")
  endif()
endif()
