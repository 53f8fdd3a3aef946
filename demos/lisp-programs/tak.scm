; Takeuchi function: deep non-tail recursion with tail calls at the top.
(define (tak x y z)
  (if (not (< y x))
      z
      (tak (tak (- x 1) y z)
           (tak (- y 1) z x)
           (tak (- z 1) x y))))

(display "tak(18,12,6) = ") (display (tak 18 12 6)) (newline)
(define (repeat n thunk) (if (> n 1) (begin (thunk) (repeat (- n 1) thunk)) (thunk)))
(display "tak(12,8,4) x 20 = ") (display (repeat 20 (lambda () (tak 12 8 4)))) (newline)
