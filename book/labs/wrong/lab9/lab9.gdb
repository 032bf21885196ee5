# Lab 9 (a wrong solution): stops at rt_main, not kmain.
break rt_main
continue
info registers esp
x/wx $esp
kill
