# Warnings for the project's own targets (not for the third-party headers they include).
function(myotwin_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
endfunction()
