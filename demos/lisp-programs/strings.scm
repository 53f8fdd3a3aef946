; String-heavy work: building, slicing, converting, comparing, interning.
(define (repeat-string s n)
  (let loop ((i 0) (acc ""))
    (if (= i n) acc (loop (+ i 1) (string-append acc s)))))

(define (number-list->string l)
  (if (null? l) ""
      (let loop ((l (cdr l)) (acc (number->string (car l))))
        (if (null? l) acc
            (loop (cdr l) (string-append acc "," (number->string (car l))))))))

(define (split s ch)
  (let loop ((i 0) (start 0) (parts '()))
    (cond ((= i (string-length s))
           (reverse (cons (substring s start i) parts)))
          ((char=? (string-ref s i) ch)
           (loop (+ i 1) (+ i 1) (cons (substring s start i) parts)))
          (else (loop (+ i 1) start parts)))))

(define (string-reverse s) (list->string (reverse (string->list s))))

(define (checksum s)
  (let loop ((i 0) (h 0))
    (if (= i (string-length s)) h
        (loop (+ i 1) (modulo (+ (* h 31) (char->integer (string-ref s i))) 1000003)))))

(define (range a b) (if (>= a b) '() (cons a (range (+ a 1) b))))

(define csv (number-list->string (map (lambda (i) (* i i)) (range 0 300))))
(display "csv length: ") (display (string-length csv)) (newline)
(display "csv head: ") (display (substring csv 0 40)) (newline)
(define fields (split csv #\,))
(display "fields: ") (display (length fields)) (newline)
(display "sum of fields: ")
(display (fold-left + 0 (map string->number fields))) (newline)

(define big (repeat-string "abc" 2000))
(display "big: ") (display (string-length big)) (display " ") (display (checksum big)) (newline)

; Many generations of short strings: most die young, a few are kept.
(define kept '())
(let loop ((i 0))
  (when (< i 20000)
    (let ((s (string-append "item-" (number->string i) "-" (string-reverse (number->string (* i 7))))))
      (when (= 0 (modulo i 1000)) (set! kept (cons s kept))))
    (loop (+ i 1))))
(display "kept: ") (display (reverse kept)) (newline)
(display "kept checksum: ") (display (checksum (apply string-append kept))) (newline)

; Symbols made from strings are interned.
(define syms (map (lambda (i) (string->symbol (string-append "sym" (number->string (modulo i 10))))) (range 0 50)))
(display "eq interned: ") (display (eq? (car syms) (list-ref syms 10))) (newline)
(display "upcase: ") (display (string-upcase (symbol->string (cadr syms)))) (newline)
(display "compare: ") (display (list (string<? "apple" "banana") (string=? "x" "x") (string>? "a" "b"))) (newline)
(display "floats: ") (display (list (/ 1.0 3) (sqrt 2) (* 1.5 4) (exact->inexact 3) (/ 6 3) (/ 7 2))) (newline)
