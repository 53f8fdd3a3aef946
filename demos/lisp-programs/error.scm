; An error stops the program with exit status 1 after the output so far.
(display "before") (newline)
(car 42)
(display "never printed") (newline)
