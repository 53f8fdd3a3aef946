; Fed on a pipe with --generational and a collection at every allocation (--gc-stress=1):
; a young collection visits only the root stack entries that may have changed since the
; previous collection (lisp_each_young_root), which needs every cut of the root stack,
; the error handler's too, to lower the mark. The error below leaves the root stack
; thousands of entries deep at the last collection before it; the forms after it hold
; young objects in rooted locals only.
(define (deep n) (if (= n 0) (car '()) (+ 1 (deep (- n 1)))))
(deep 2000)
(define (build n) (let loop ((i 0) (acc '())) (if (= i n) acc (loop (+ i 1) (cons i acc)))))
(let ((l (build 500))) (list (length l) (apply + l)))
(define (unwind n) (if (= n 0) '() (let ((rest (unwind (- n 1)))) (cons (list n) rest))))
(let ((l (unwind 500))) (list (length l) (caar l) (car (list-ref l 499))))
