/*
 * nanobench: the loops that store next to code or into it, each with its code alone in its
 * own page(s), so that what the stores hit is known exactly.
 */
    .section .text.nanobench, "ax"
    .balign 4096

/* uint32_t nb_datacode(uint32_t n): n times `incl counter ; addl counter, %eax`, where the
 * counter shares the 4 KiB page with the loop's code (as in a kernel linked with -N, or an
 * xv6 user program). Returns n(n+1)/2. */
    .globl nb_datacode
nb_datacode:
    movl 4(%esp), %ecx
    xorl %eax, %eax
    movl $0, nb_counter
1:  incl nb_counter
    addl nb_counter, %eax
    loop 1b
    ret
    .balign 64
nb_counter:
    .long 0

/* uint32_t nb_patch(uint32_t n): n times patch the imm32 of the ADD in nb_patched (in the
 * next page) with the loop count and call it. Returns n(n+1)/2. */
    .globl nb_patch
nb_patch:
    movl 4(%esp), %ecx
    xorl %eax, %eax
1:  movl %ecx, nb_patched_imm
    call nb_patched
    loop 1b
    ret

    .balign 4096
nb_patched:
    .byte 0x05              /* addl $imm32, %eax */
nb_patched_imm:
    .long 0
    ret
    .balign 4096

    .section .note.GNU-stack, "", @progbits
