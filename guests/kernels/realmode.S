/*
 * realmode: down to real-address mode and back (SDM Vol. 3A 10.9.2 "Switching Back to
 * Real-Address Mode", 10.9.1 and 10.2 for the way back). The 16-bit code runs where the
 * kernel is loaded, just above 1 MiB, through CS = 0xFFFF (base 0xFFFF0): offsets are
 * `label - 0xFFFF0`, which fit in 16 bits while the text stays below 0x10FFF0 (the jump
 * into real mode goes through a far pointer at 0x6010, since a 16-bit field cannot hold
 * that difference as a relocation). Data lives in conventional memory at 0x6000
 * (DS = 0x0600), the real-mode stack below 0x7000.
 */
    .text

#define RM(label) (label - 0xffff0)
#define CS16 0x30   /* 16-bit code, base 0xFFFF0, limit 0xFFFF (set up by realmode.c) */
#define DS16 0x38   /* 16-bit data, base 0, limit 0xFFFF */

/* uint32_t real_mode_round_trip(void): runs the real-mode part, returns in protected
 * mode with everything as it was (IF stays 0 throughout). */
    .globl real_mode_round_trip
    .code32
real_mode_round_trip:
    pushal
    movl %esp, saved_esp
    sidt saved_idt
    movl $rm, %eax                 /* the far pointer 0xFFFF:RM(rm) at 0x6010 */
    subl $0xffff0, %eax
    movw %ax, 0x6010
    movw $0xffff, 0x6012
    lidt ivt_desc                  /* the real-mode vector table at 0 */
    ljmp $CS16, $RM(pm16)

    .code16
pm16:                              /* 16-bit protected mode: 64 KiB segments first */
    movw $DS16, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl %cr0, %eax
    andl $~1, %eax                 /* PE off: real-address mode */
    movl %eax, %cr0
    ljmp *(0x6010)                 /* CS = 0xFFFF */

rm:
    xorw %ax, %ax
    movw %ax, %ss
    movw $0x7000, %sp
    movw $0x0600, %ax
    movw %ax, %ds
    movw $0, (0)                   /* 0x6000: the handler's count */
    int $0x50                      /* through the vector table: 0x50 * 4 */
    int $0x50
    movw %cs, (2)                  /* 0x6002: CS as real mode shows it */
    movw %sp, (4)                  /* 0x6004: SP after two INT/IRET pairs */
    pushfw
    popw (6)                       /* 0x6006: FLAGS (IF clear) */
    movw $0x1234, %ax              /* segment arithmetic: 0x1234:0x0010 is linear 0x12350 */
    movw %ax, %es
    movw %es:(0x10), %ax
    movw %ax, (8)                  /* 0x6008: the word at 0x12350 */
    movl %cr0, %eax
    orl $1, %eax                   /* PE on */
    movl %eax, %cr0
    ljmpl $0x08, $pm32

    .code32
pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl saved_esp, %esp
    lidt saved_idt
    popal
    ret

    .code16
    .globl rm_int50
rm_int50:                          /* INT 0x50: count in DS:0 (DS = 0x0600 here) */
    incw (0)
    iret

    .code32
    .data
    .balign 4
saved_esp:
    .long 0
saved_idt:
    .word 0
    .long 0
ivt_desc:
    .word 0x3ff
    .long 0

    .section .note.GNU-stack, "", @progbits
