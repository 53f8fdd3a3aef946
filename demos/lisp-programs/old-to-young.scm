; Stores of young objects into old ones: the case a generational collector's write
; barrier exists for. (gc) makes everything old; then the loop keeps storing fresh
; objects into the old structures while allocating enough garbage to force many
; minor collections, and checks every stored object afterwards.
(define table (make-vector 64 '()))
(define chain (list 'head))
(define counter
  (let ((n 0) (last '()))
    (lambda (msg)
      (cond ((eq? msg 'bump) (set! n (+ n 1)) (set! last (list n (number->string n))) n)
            ((eq? msg 'last) last)
            (else n)))))
(define (garbage k) (if (= k 0) '() (cons (make-vector 3 k) (garbage (- k 1)))))
(gc)

(define (fill i)
  (when (< i 2000)
    ; young list into an old vector slot
    (vector-set! table (modulo i 64) (cons (list i (* i i)) (vector-ref table (modulo i 64))))
    ; young pair onto the tail of an old list
    (when (= 0 (modulo i 100)) (set-cdr! (last-pair chain) (list (string-append "s" (number->string i)))))
    ; young list into a variable captured by an old closure
    (counter 'bump)
    (garbage 20)
    (fill (+ i 1))))
(define (last-pair l) (if (pair? (cdr l)) (last-pair (cdr l)) l))
(fill 0)

(define (check-slot j)
  (let loop ((l (vector-ref table j)) (ok #t) (n 0))
    (if (null? l) (list ok n)
        (let ((e (car l)))
          (loop (cdr l) (and ok (= (modulo (car e) 64) j) (= (cadr e) (* (car e) (car e)))) (+ n 1))))))
(define results (map check-slot '(0 1 31 63)))
(display "slots: ") (display results) (newline)
(display "all slots ok: ")
(display (let loop ((j 0)) (or (= j 64) (and (car (check-slot j)) (loop (+ j 1)))))) (newline)
(display "chain: ") (display (length chain)) (display " ") (display (list-ref chain 20)) (newline)
(display "counter: ") (display (counter 'get)) (display " ") (display (counter 'last)) (newline)
(display "sum of firsts: ")
(display (let loop ((j 0) (s 0)) (if (= j 64) s (loop (+ j 1) (+ s (fold-left (lambda (a e) (+ a (car e))) 0 (vector-ref table j)))))))
(newline)
