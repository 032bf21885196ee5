/*
 * popek guest runtime: Multiboot v1 header, entry stub, interrupt stubs and the
 * ring-3 entry/exit helpers. Every guest links this file first.
 */
#include "asm.h"

/* ---- Multiboot v1 header (must lie in the first 8 KiB of the image) ---- */
    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

/* ---- Entry: EAX = 0x2BADB002, EBX = physical address of the info block ---- */
    .text
    .globl _start
_start:
    cli
    cld
    movl %eax, %esi                 /* keep the magic across the BSS clear */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl
    movl $boot_stack_top, %esp
    xorl %ebp, %ebp
    pushl %ebx                      /* struct multiboot_info * */
    pushl %esi                      /* magic */
    call rt_main
1:  cli
    hlt
    jmp 1b

/* void gdt_load(const struct dt_ptr *p): LGDT, then reload every segment register. */
    .globl gdt_load
gdt_load:
    movl 4(%esp), %eax
    lgdt (%eax)
    movw $SEL_KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    ljmp $SEL_KCODE, $1f
1:  ret

/* ---- Interrupt stubs: vector and error code pushed, then the common path ---- */
.macro ISR_NOERR n
    .globl isr_\n
isr_\n:
    pushl $0
    pushl $\n
    jmp isr_common
.endm
.macro ISR_ERR n
    .globl isr_\n
isr_\n:
    pushl $\n
    jmp isr_common
.endm

ISR_NOERR 0
ISR_NOERR 1
ISR_NOERR 2
ISR_NOERR 3
ISR_NOERR 4
ISR_NOERR 5
ISR_NOERR 6
ISR_NOERR 7
ISR_ERR   8
ISR_NOERR 9
ISR_ERR   10
ISR_ERR   11
ISR_ERR   12
ISR_ERR   13
ISR_ERR   14
ISR_NOERR 15
ISR_NOERR 16
ISR_ERR   17
ISR_NOERR 18
ISR_NOERR 19
ISR_NOERR 20
ISR_ERR   21
ISR_NOERR 22
ISR_NOERR 23
ISR_NOERR 24
ISR_NOERR 25
ISR_NOERR 26
ISR_NOERR 27
ISR_NOERR 28
ISR_ERR   29
ISR_ERR   30
ISR_NOERR 31
ISR_NOERR 32
ISR_NOERR 33
ISR_NOERR 34
ISR_NOERR 35
ISR_NOERR 36
ISR_NOERR 37
ISR_NOERR 38
ISR_NOERR 39
ISR_NOERR 40
ISR_NOERR 41
ISR_NOERR 42
ISR_NOERR 43
ISR_NOERR 44
ISR_NOERR 45
ISR_NOERR 46
ISR_NOERR 47
ISR_NOERR 128
ISR_NOERR 129

/* Frame layout matches struct regs in rt.h. */
isr_common:
    pushal
    pushl %ds
    pushl %es
    pushl %fs
    pushl %gs
    movw $SEL_KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    pushl %esp                      /* struct regs * */
    call isr_dispatch
    addl $4, %esp
    popl %gs
    popl %fs
    popl %es
    popl %ds
    popal
    addl $8, %esp                   /* vector and error code */
    iret

/* Table of stub addresses for vectors 0..47; rt.c installs them. */
    .section .rodata
    .balign 4
    .globl isr_stub_table
isr_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .long isr_\n
    .endr

/*
 * uint32_t user_run(void (*fn)(void), uint32_t user_esp)
 * Enters ring 3 at fn with the given stack via IRET (IF=1, IOPL=0). Returns the value
 * passed to user_return(), which a ring-0 handler calls to abandon the ring-3 context.
 */
    .text
    .globl user_run
user_run:
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl %esp, user_saved_esp
    movl 20(%esp), %eax             /* fn */
    movl 24(%esp), %ecx             /* user stack */
    pushl $SEL_UDATA                /* SS */
    pushl %ecx                      /* ESP */
    pushfl
    andl $~0x3000, (%esp)           /* IOPL = 0 */
    orl $0x200, (%esp)              /* IF = 1 */
    pushl $SEL_UCODE                /* CS */
    pushl %eax                      /* EIP */
    movw $SEL_UDATA, %dx
    movw %dx, %ds
    movw %dx, %es
    movw %dx, %fs
    movw %dx, %gs
    iret

/* void user_return(uint32_t value): called in ring 0 (from a handler); never returns. */
    .globl user_return
user_return:
    movl 4(%esp), %eax
    movl user_saved_esp, %esp
    movw $SEL_KDATA, %dx
    movw %dx, %ds
    movw %dx, %es
    movw %dx, %fs
    movw %dx, %gs
    popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    ret

    .bss
    .balign 4096
    .globl boot_stack_bottom
boot_stack_bottom:
    .skip 32768
    .globl boot_stack_top
boot_stack_top:
    .globl irq_stack_bottom
irq_stack_bottom:
    .skip 16384
    .globl irq_stack_top
irq_stack_top:
    .balign 4
user_saved_esp:
    .skip 4

    .section .note.GNU-stack, "", @progbits
