; Doubly recursive Fibonacci: calls, fixnum arithmetic, argument frames.
(define (fib n)
  (if (< n 2)
      n
      (+ (fib (- n 1)) (fib (- n 2)))))

(define (fib-iter n)
  (let loop ((i 0) (a 0) (b 1))
    (if (= i n) a (loop (+ i 1) b (+ a b)))))

(display "fib(22) = ") (display (fib 22)) (newline)
(display "fib-iter(80) = ") (display (fib-iter 80)) (newline)
(display "agree: ") (display (= (fib 20) (fib-iter 20))) (newline)
