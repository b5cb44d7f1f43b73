# Per-target compiler settings; nothing here touches global flags.
function(failover_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${FAILOVER_WERROR}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
      -Wno-sign-conversion -Wno-missing-field-initializers -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual
      $<$<BOOL:${FAILOVER_WERROR}>:-Werror>)
  endif()
endfunction()

function(failover_set_sanitizers target)
  if(MSVC)
    return()
  endif()
  if(FAILOVER_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined
      -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  elseif(FAILOVER_SANITIZE_THREAD)
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PUBLIC -fsanitize=thread)
  elseif(FAILOVER_FUZZ)
    # Coverage for libFuzzer in the code under test; the fuzz targets link the fuzzer itself.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
      -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
endfunction()

# failover_optional_part(<option> <what> <package>): turns <option> off, saying so, when
# find_package(<package>) finds nothing, so a plain build needs only the library's packages.
macro(failover_optional_part option what package)
  if(${option})
    find_package(${package} QUIET)
    if(NOT ${package}_FOUND)
      message(STATUS "failover: ${what} (${option}) off: package ${package} not found")
      set(${option} OFF)
    endif()
  endif()
endmacro()
