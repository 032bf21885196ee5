# Lab 9 (reference solution): gdb is already attached to `popek run hello --gdb … --gdb-wait`
# with hello.elf's symbols (the grader does `file` and `target remote` before this script).
break kmain
continue
info registers esp
x/wx $esp
kill
