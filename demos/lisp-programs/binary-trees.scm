; The binary-trees GC benchmark: allocate and check many complete trees,
; while one long-lived tree stays reachable. Optional argument: the maximum depth
; (arena-lisp binary-trees.scm 14); the expected output is for the default, 10.
(define (make-tree d)
  (if (= d 0)
      (cons '() '())
      (cons (make-tree (- d 1)) (make-tree (- d 1)))))

(define (check-tree t)
  (if (null? (car t))
      1
      (+ 1 (check-tree (car t)) (check-tree (cdr t)))))

(define min-depth 4)
(define max-depth (if (pair? *args*) (string->number (car *args*)) 10))
(define stretch-depth (+ max-depth 1))

(display "stretch tree of depth ") (display stretch-depth)
(display "	 check: ") (display (check-tree (make-tree stretch-depth))) (newline)

(define long-lived (make-tree max-depth))

(define (loop-depths d)
  (if (<= d max-depth)
      (let* ((iterations (expt 2 (+ (- max-depth d) min-depth)))
             (check (let loop ((i 0) (sum 0))
                      (if (= i iterations) sum
                          (loop (+ i 1) (+ sum (check-tree (make-tree d))))))))
        (display iterations) (display "	 trees of depth ") (display d)
        (display "	 check: ") (display check) (newline)
        (loop-depths (+ d 2)))))
(loop-depths min-depth)

(display "long lived tree of depth ") (display max-depth)
(display "	 check: ") (display (check-tree long-lived)) (newline)
