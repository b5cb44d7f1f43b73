# cmake -DSRC=<src dir> [-DPLANT=<file>:<header>] -P check_layers.cmake
# The folders of src/ form layers: a file includes headers of its own folder and of the layers
# below it, never of its layer's other folders nor of a layer above, so the folders have no
# include cycle. The order, from the bottom ("." is src/ itself; docs/development.md,
# "Architecture", says what each layer holds):
set(layers
  "util"
  "."
  "wire"
  "policy"
  "observe traffic state engine"
  "options"
  "core config"
  "client")
# PLANT adds one include to one file (a path under src/), to show that the check catches it.

get_filename_component(SRC "${SRC}" ABSOLUTE)
set(rank 0)
foreach(layer IN LISTS layers)
  string(REPLACE " " ";" folders "${layer}")
  foreach(folder IN LISTS folders)
    set(rank_of_${folder} ${rank})
  endforeach()
  math(EXPR rank "${rank} + 1")
endforeach()

set(planted_file "")
if(PLANT)
  string(REPLACE ":" ";" plant "${PLANT}")
  list(GET plant 0 planted_file)
  list(GET plant 1 planted_header)
endif()

file(GLOB_RECURSE files RELATIVE "${SRC}" "${SRC}/*.hpp" "${SRC}/*.cpp")
set(violations "")
foreach(file IN LISTS files)
  if(file MATCHES "^([^/]+)/")
    set(folder "${CMAKE_MATCH_1}")
  else()
    set(folder ".")
  endif()
  if(NOT DEFINED rank_of_${folder})
    string(APPEND violations "\n  ${file}: folder ${folder} is in no layer")
    continue()
  endif()
  file(STRINGS "${SRC}/${file}" includes REGEX "^#include \"")
  if(file STREQUAL planted_file)
    list(APPEND includes "#include \"${planted_header}\"")
  endif()
  foreach(line IN LISTS includes)
    if(NOT line MATCHES "^#include \"([^/\"]+)/")
      continue()
    endif()
    set(target "${CMAKE_MATCH_1}")
    if(target STREQUAL folder)
      continue()
    endif()
    if(NOT DEFINED rank_of_${target})
      string(APPEND violations "\n  ${file}: ${line}: folder ${target} is in no layer")
    elseif(NOT rank_of_${target} LESS rank_of_${folder})
      string(APPEND violations "\n  ${file} (${folder}): ${line}: ${target} is not below it")
    endif()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "includes against the layer order of src/:${violations}")
endif()
list(LENGTH files count)
message(STATUS "${count} files of src/ include only their own folder and the layers below")
