# arena-lisp on malformed and hostile input (issue 12), and its command line (issue 13).
# Every run has a timeout and must end with the exact exit status given: a crash
# (a signal) or a hang (the timeout) shows up as a different status. The big inputs
# are generated here, into the build tree, not committed.
#
# This file is both the ctest registration (included by tests/CMakeLists.txt) and,
# run as `cmake -DLISP=exe -DCASE=name -DWORK=dir -P lisp-malformed.cmake`, one case.
if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  file(MAKE_DIRECTORY ${WORK})

  # run(<input text> <stdin|file> <status> <stdout, exact> <stderr regex> [args...])
  # Feeds the text on a pipe (a REPL session) or as a program file.
  function(run text how rc want_out err_re)
    set(in ${WORK}/${CASE}.scm)
    file(WRITE ${in} "${text}")
    if(how STREQUAL "stdin")
      execute_process(COMMAND ${LISP} ${ARGN} INPUT_FILE ${in} TIMEOUT 120
                      OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE got)
    else()
      execute_process(COMMAND ${LISP} ${ARGN} ${in} TIMEOUT 120
                      OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE got)
    endif()
    check("${how}" "${rc}" "${got}" "${want_out}" "${out}" "${err_re}" "${err}")
  endfunction()

  function(check how rc got want_out out err_re err)
    # ASan warns when a longjmp leaves a deep stack (an error in deep recursion): not ours.
    string(REGEX REPLACE "==[0-9]+==WARNING: ASan is ignoring requested __asan_handle_no_return[^\n]*\n(False positive[^\n]*\n)?(For details see[^\n]*\n)?" "" err "${err}")
    string(SUBSTRING "${out}" 0 300 out_head)
    string(SUBSTRING "${err}" 0 600 err_head)
    if(NOT got STREQUAL rc)
      message(FATAL_ERROR "${CASE} (${how}): exit status '${got}', expected ${rc}\nstderr:\n${err_head}\nstdout:\n${out_head}")
    endif()
    if(NOT want_out STREQUAL "*" AND NOT out STREQUAL want_out)
      message(FATAL_ERROR "${CASE} (${how}): stdout\n${out_head}\nexpected\n${want_out}")
    endif()
    if(NOT err MATCHES "${err_re}")
      message(FATAL_ERROR "${CASE} (${how}): stderr\n${err_head}\ndoes not match\n${err_re}")
    endif()
  endfunction()

  set(deeper "input nested deeper than 100000")
  if(CASE STREQUAL "deep-recursion")
    # Non-tail recursion without end: an error, not a C stack overflow; the session
    # goes on, a program stops.
    set(text "(define (f n) (+ 1 (f (- n 1))))\n(f 10)\n(display \"after\")\n")
    run("${text}" stdin 1 "after" "^error: recursion deeper than 100000 calls\n$")
    run("${text}" file 1 "" "^error: recursion deeper than 100000 calls\n$")
    run("(define (g n) (if (= n 0) 0 (+ 1 (g (- n 1)))))\n(g 90000)\n" stdin 0 "90000\n" "^$")
    run("(fold-right + 0 (vector->list (make-vector 200000 1)))\n" stdin 1 "" "^error: recursion deeper")
  elseif(CASE STREQUAL "big-string")
    string(REPEAT "a" 1048576 mb)
    run("(define s \"${mb}\")\n(string-length s)\n(string-length (string-append s s))\n"
        stdin 0 "1048576\n2097152\n" "^$")
  elseif(CASE STREQUAL "big-line")
    # One 2 MiB line: a 1 MiB form of half a million numbers, then a 1 MiB symbol.
    string(REPEAT "1 " 524288 ones)
    string(REPEAT "x" 1048576 sym)
    set(text "(+ ${ones}) (string-length (symbol->string (quote ${sym})))\n")
    run("${text}" stdin 0 "524288\n1048576\n" "^$")
    run("${text}" file 0 "" "^$")
  elseif(CASE STREQUAL "unbalanced")
    # A stray closer at top level is skipped; inside a form the rest of the line is.
    set(text ")) (+ 1 2) ]\n(car (quote (1 2))) (1 . 2 3) 99\n4 (\n")
    run("${text}" stdin 1 "3\n1\n4\n"
        "^error: unbalanced '\\)'\nerror: unbalanced '\\)'\nerror: unbalanced ']'\nerror: expected '\\)' after the dotted tail\nerror: unexpected end of input\n$")
    run("${text}" file 1 "" "^error: unbalanced '\\)'\n$")
  elseif(CASE STREQUAL "deep-nesting")
    string(REPEAT "(" 1000000 open)
    string(REPEAT ")" 1000000 close)
    run("${open}${close}\n(+ 1 2)\n" stdin 1 "3\n" "^error: ${deeper}\n$")
    run("${open}${close}\n" file 1 "" "^error: ${deeper}\n$")
    run("${open}\n" stdin 1 "" "^error: ${deeper}\n$")
    string(REPEAT "#(" 200000 vecs)
    run("${vecs}\n" stdin 1 "" "^error: ${deeper}\n$")
    string(REPEAT "'" 1000000 quotes)
    run("${quotes}x\n" stdin 1 "" "^error: ${deeper}\n$")
  elseif(CASE STREQUAL "deep-data")
    # A list nested 200000 deep, built at run time: printing and equal? refuse it with one
    # message each, an error message shows its start, the session goes on.
    set(text "(define (nest n) (do ((i 0 (+ i 1)) (x '() (list x))) ((= i n) x)))\n"
             "(define d (nest 200000))\n(length d)\n(write d)\n(display d)\n"
             "(equal? d (nest 200000))\n(vector-ref d 0)\n\"end\"\n")
    string(CONCAT text ${text})
    run("${text}" stdin 1 "1\n\"end\"\n"
        "^error: write: cannot print a structure nested deeper than 100000\nerror: display: cannot print a structure nested deeper than 100000\nerror: equal\\?: structure nested deeper than 100000, or circular\nerror: vector-ref: vector expected, got \\(\\(\\(\\(\\(\\(\\(\\(\\(\\(\\(\\(\\(\\(\\(\\(")
    run("${text}" stdin 1 "1\n\"end\"\n" "^error: write" --gc=semispace)
  elseif(CASE STREQUAL "huge-objects")
    # Sizes that overflow a byte count (this one crashed) or exceed the object limit.
    set(big "is larger than the limit of 256 MiB")
    run("(make-vector (expt 2 61))\n(make-string (expt 2 40))\n(make-vector 300000000 0)\n(string-length (make-string 1000 #\\a))\n"
        stdin 1 "1000\n" "^error: make-vector: an object of [0-9]+ elements ${big}\nerror: make-string: an object of [0-9]+ elements ${big}\nerror: make-vector: an object of 300000000 elements ${big}\n$")
  elseif(CASE STREQUAL "eof")
    # The input ends inside a form: one message, on a pipe and in a file.
    foreach(cut "(define x (list 1 2" "\"abc" "#\\" "'" "(1 . " "#(1 2" "(a ; comment")
      run("${cut}" stdin 1 "" "^error: unexpected end of input\n$")
      run("${cut}" file 1 "" "^error: unexpected end of input\n$")
    endforeach()
  elseif(CASE STREQUAL "garbage")
    # Pseudo-random bytes (NULs included), then the same from an alphabet of the
    # reader's own syntax, written by arena-lisp itself: any status but a crash.
    set(gen "(define (bytes n alphabet) (let loop ((i 0) (x 12345)) (when (< i n) "
            "(let ((b (quotient (modulo x 65536) 256))) (display (if alphabet "
            "(string-ref alphabet (modulo b (string-length alphabet))) (integer->char b)))) "
            "(loop (+ i 1) (modulo (+ (* x 1103515245) 12345) 2147483648)))))\n")
    string(CONCAT gen ${gen})
    foreach(alphabet "#f" "\"()[]'`,#\\\\\\\". ;ab1+-e\\n\"")
      file(WRITE ${WORK}/garbage-gen.scm "${gen}(bytes 65536 ${alphabet})\n")
      execute_process(COMMAND ${LISP} ${WORK}/garbage-gen.scm OUTPUT_FILE ${WORK}/garbage.bin
                      RESULT_VARIABLE got TIMEOUT 120)
      file(SIZE ${WORK}/garbage.bin size)
      if(NOT got STREQUAL "0" OR NOT size EQUAL 65536)
        message(FATAL_ERROR "garbage generator: status ${got}, ${size} bytes")
      endif()
      foreach(how stdin file)
        if(how STREQUAL "stdin")
          execute_process(COMMAND ${LISP} INPUT_FILE ${WORK}/garbage.bin TIMEOUT 120
                          OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE got)
        else()
          execute_process(COMMAND ${LISP} ${WORK}/garbage.bin TIMEOUT 120
                          OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE got)
        endif()
        # Status 1 and at least one message: garbage has errors in it.
        check("${how} ${alphabet}" 1 "${got}" "*" "${out}" "^error: " "${err}")
      endforeach()
    endforeach()
  elseif(CASE STREQUAL "cli")
    # --help: usage on stdout, status 0. A bad command line: status 64 (2 means the
    # VMA budget refused the layout, project-wide).
    execute_process(COMMAND ${LISP} --help OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE got TIMEOUT 60)
    check("--help" 0 "${got}" "*" "${out}" "^$" "${err}")
    if(NOT out MATCHES "^usage: arena-lisp")
      message(FATAL_ERROR "--help: no usage on stdout:\n${out}")
    endif()
    foreach(bad "--bogus" "--heap|12Q" "--heap|0" "--gc=nonsense" "--gc=semispace|--generational" "--gc-stress=x" "--barrier=bricks"
             "--barrier|pages" "--generational|--barrier" "--heap" "--gc" "--tracker"
             "--generational|--tracker=sigsegv" "--generational|--barrier=cards|--tracker=uffd"
             "--generational|--barrier=pages|--tracker=bogus" "--gc-stress|x" "--gc-stress")
      string(REPLACE "|" ";" args "${bad}")
      execute_process(COMMAND ${LISP} ${args} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE got TIMEOUT 60)
      check("${bad}" 64 "${got}" "" "${out}" "^arena-lisp: .*see --help" "${err}")
    endforeach()
    # A value missing at the end of the line is named as such, not as an unknown option.
    execute_process(COMMAND ${LISP} --heap OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE got TIMEOUT 60)
    check("--heap at the end" 64 "${got}" "" "${out}" "^arena-lisp: --heap: missing value" "${err}")
    # --tracker takes its value either way, as --gc, --heap and --barrier do.
    foreach(ok "--tracker|sigsegv" "--tracker=auto")
      string(REPLACE "|" ";" args "${ok}")
      run("(+ 1 2)\n" stdin 0 "3\n" "^$" --generational --barrier=pages ${args})
    endforeach()
    # So does --gc-stress.
    foreach(ok "--gc-stress|3" "--gc-stress=3")
      string(REPLACE "|" ";" args "${ok}")
      run("(+ 1 2)\n" stdin 0 "3\n" "^$" ${args})
    endforeach()
    execute_process(COMMAND ${LISP} ${WORK}/no-such-file.scm OUTPUT_VARIABLE out ERROR_VARIABLE err
                    RESULT_VARIABLE got TIMEOUT 60)
    check("missing file" 1 "${got}" "" "${out}" "no-such-file.scm" "${err}")
    # The issue's example, and one message for one error.
    run("(+ 1 2)\n" stdin 0 "3\n" "^$")
    run("(car '())\n(+ 1 2)\n" stdin 1 "3\n" "^error: car: pair expected, got \\(\\)\n$")
  else()
    message(FATAL_ERROR "unknown case '${CASE}'")
  endif()
  return()
endif()

if(ARENA_BUILD_DEMOS AND TARGET arena-lisp)
  foreach(case deep-recursion big-string big-line unbalanced deep-nesting deep-data huge-objects eof garbage
               cli)
    add_test(NAME lisp_malformed_${case}
             COMMAND ${CMAKE_COMMAND} -DLISP=$<TARGET_FILE:arena-lisp> -DCASE=${case}
                     -DWORK=${CMAKE_CURRENT_BINARY_DIR}/lisp-malformed/${case} -P ${CMAKE_CURRENT_LIST_FILE})
    set_tests_properties(lisp_malformed_${case} PROPERTIES TIMEOUT 600 LABELS lisp)
  endforeach()
endif()
