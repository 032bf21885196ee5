/*
 * smc: code that the smc guest rewrites while it runs. It lives in its own page so the
 * guest can map that page a second time (an alias) and patch or run it through either address.
 */
    .section .text.smc, "ax"
    .balign 4096
    .globl smc_page
smc_page:

/* uint32_t smc_imm(void): returns the patched immediate (B8 imm32 = MOV EAX, imm32). */
    .globl smc_imm, smc_imm_value
smc_imm:
    .byte 0xB8
smc_imm_value:
    .long 0x11111111
    ret

/* uint32_t smc_next(uint32_t v): the store patches the very next instruction. */
    .globl smc_next
smc_next:
    movl 4(%esp), %eax
    movl %eax, smc_next_imm
    .byte 0xB8
smc_next_imm:
    .long 0
    ret

/* uint32_t smc_stos(void): REP STOSB writes two NOPs over the JMP that follows it. */
    .globl smc_stos, smc_stos_patch
smc_stos:
    pushl %edi
    movl $smc_stos_patch, %edi
    movl $0x90, %eax
    movl $2, %ecx
    cld
    rep stosb
smc_stos_patch:
    .byte 0xEB, 1f - 2f         /* JMP short 1f */
2:  movl $0x600d, %eax
    popl %edi
    ret
1:  movl $0xbad, %eax
    popl %edi
    ret

/* uint32_t smc_movs(void): REP MOVSB copies "MOV EAX, 0x600d" over the instruction after it. */
    .globl smc_movs, smc_movs_dst
smc_movs:
    pushl %esi
    pushl %edi
    movl $smc_movs_src, %esi
    movl $smc_movs_dst, %edi
    movl $5, %ecx
    cld
    rep movsb
smc_movs_dst:
    movl $0xbad, %eax
    popl %edi
    popl %esi
    ret

/* uint32_t smc_sled(void): REP STOSB turns a 64-byte run of "INC EAX" into NOPs. */
    .globl smc_sled, smc_sled_start
smc_sled:
    pushl %edi
    movl $smc_sled_start, %edi
    movl $0x90, %eax
    movl $64, %ecx
    cld
    rep stosb
    xorl %eax, %eax
smc_sled_start:
    .rept 64
    incl %eax
    .endr
    popl %edi
    ret

    .balign 4096

    .section .rodata
    .globl smc_movs_src
smc_movs_src:
    .byte 0xB8
    .long 0x600d

    .section .note.GNU-stack, "", @progbits
