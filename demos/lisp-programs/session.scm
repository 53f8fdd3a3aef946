; Fed on a pipe, arena-lisp is a REPL session: each form's value is printed (not
; the unspecified value of define or display), an error is reported once and the
; session goes on; the exit status is 1 because a form failed.
(+ 1 2)
(define (square x) (* x x))
(square 12) (square 1.5)
"a string" #\a 'sym (list 1 "two" #\3 (vector 4.0))
(car '())
(display "output, then a value on a line of its own") 42
(undefined-procedure 1)
(string-append "a" 5)
(error "my error:" 'code 7)
)
(vector-ref (vector 1 2) 5)
(square 'x)
(define (loop n) (if (= n 0) 'done (loop (- n 1))))
(loop 100000)
(define (deep n) (+ 1 (deep (- n 1))))
(deep 0)
"still here"
