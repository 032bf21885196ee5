/*
 * Lab 8: the Multiboot v1 header and the entry point. Complete as it is: the loader
 * (popek, QEMU, GRUB) finds the header in the first 8 KiB of the image, loads the
 * kernel at its physical addresses and jumps to _start in 32-bit protected mode with
 * paging off, EAX = 0x2BADB002 and EBX = the physical address of the Multiboot
 * information.
 */
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003       /* bit 0: page-align modules; bit 1: memory info */

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)    /* the three add up to 0 */

    .text
    .globl _start
_start:
    cli
    movl $stack_top, %esp
    pushl %ebx                      /* kmain's second argument: the information */
    pushl %eax                      /* its first: the magic */
    call kmain
1:  cli
    hlt
    jmp 1b

    .bss
    .balign 16
    .space 16384
stack_top:

    /* No executable stack wanted (GNU ld warns without this note). */
    .section .note.GNU-stack, "", @progbits
