/*
 * exceptions: the instruction sequences that raise each exception. Every fault site
 * NAME_at is listed in the exception table with its resume address, so the runtime
 * records the fault and continues; for traps NAME_at is the instruction after the trap.
 * Routines follow the cdecl convention (EAX, ECX, EDX clobbered).
 */
#include "asm.h"

#define SEL_NP 0x30    /* data segment, not present */

.macro FAULT name
    .globl \name\()_at
\name\()_at:
.endm
.macro RESUME name
\name\()_resume:
    .pushsection .extable, "a"
    .long \name\()_at, \name\()_resume
    .popsection
.endm
.macro TRAP name
    .globl \name\()_at
\name\()_at:
    .pushsection .extable, "a"
    .long \name\()_at, \name\()_at
    .popsection
.endm

    .text
    .globl t_de
t_de:                           /* #DE: divide by zero */
    xorl %edx, %edx
    movl $1, %eax
    xorl %ecx, %ecx
FAULT t_de
    divl %ecx
RESUME t_de
    ret

    .globl t_de2
t_de2:                          /* #DE: quotient 2^32 does not fit */
    movl $1, %edx
    xorl %eax, %eax
    movl $1, %ecx
FAULT t_de2
    divl %ecx
RESUME t_de2
    ret

    .globl t_db
t_db:                           /* #DB: single step, trap after the instruction following POPF */
    pushfl
    orl $0x100, (%esp)
    popfl
    nop
TRAP t_db
    ret

    .globl t_bp
t_bp:                           /* #BP: INT3 is a trap */
    int3
TRAP t_bp
    ret

    .globl t_of
t_of:                           /* #OF: INTO with OF=1 is a trap */
    movl $0x7fffffff, %eax
    addl $1, %eax
    into
TRAP t_of
    ret

    .globl t_of_clear
t_of_clear:                     /* INTO with OF=0: nothing happens */
    xorl %eax, %eax
    into
    ret

    .globl t_br
t_br:                           /* #BR: 20 is outside [0, 10] */
    movl $20, %eax
FAULT t_br
    bound %eax, bounds
RESUME t_br
    ret

    .globl t_br_ok
t_br_ok:                        /* BOUND inside the bounds: nothing happens */
    movl $10, %eax
    bound %eax, bounds
    ret

    .globl t_ud
t_ud:                           /* #UD: UD2 */
FAULT t_ud
    ud2
RESUME t_ud
    ret

    .globl t_df
t_df:                           /* #DF: #DE whose gate is not present raises #NP: two contributory faults */
    xorl %edx, %edx
    movl $1, %eax
    xorl %ecx, %ecx
    divl %ecx
    .globl t_df_resume
t_df_resume:
    ret

    .globl t_np
t_np:                           /* #NP: load DS with a not-present segment */
    movw $SEL_NP, %ax
FAULT t_np
    movw %ax, %ds
RESUME t_np
    ret

    .globl t_np_gate
t_np_gate:                      /* #NP: INT through a not-present gate (vector 47) */
FAULT t_np_gate
    int $47
RESUME t_np_gate
    ret

    .globl t_ss
t_ss:                           /* #SS: load SS with a not-present segment */
    movw $SEL_NP, %ax
FAULT t_ss
    movw %ax, %ss
RESUME t_ss
    ret

    .globl t_gp_sel
t_gp_sel:                       /* #GP(sel): selector beyond the GDT limit */
    movw $0x1238, %ax
FAULT t_gp_sel
    movw %ax, %ds
RESUME t_gp_sel
    ret

    .globl t_gp_tss
t_gp_tss:                       /* #GP(sel): a TSS selector loaded into DS */
    movw $SEL_TSS, %ax
FAULT t_gp_tss
    movw %ax, %ds
RESUME t_gp_tss
    movw $SEL_KDATA, %ax
    movw %ax, %ds
    ret

    .globl t_gp_idt
t_gp_idt:                       /* #GP(vector*8+2): INT beyond the IDT limit */
FAULT t_gp_idt
    int $0x81
RESUME t_gp_idt
    ret

    .globl t_gp_null
t_gp_null:                        /* #GP(0): MOV SS with the null selector */
    xorl %eax, %eax
FAULT t_gp_null
    movw %ax, %ss
RESUME t_gp_null
    ret

    .globl t_pf_read
t_pf_read:                      /* #PF: read of a not-present page */
FAULT t_pf_read
    movl pf_page + 0x10, %eax
RESUME t_pf_read
    ret

    .globl t_pf_write
t_pf_write:                     /* #PF: write to a not-present page */
FAULT t_pf_write
    movl $1, pf_page + 0x20
RESUME t_pf_write
    ret

    .globl t_pf_ro
t_pf_ro:                        /* #PF: supervisor write to a read-only page with CR0.WP=1 */
FAULT t_pf_ro
    movl $1, ro_page + 0x30
RESUME t_pf_ro
    ret

    .globl t_pf_fetch
t_pf_fetch:                     /* #PF: instruction fetch from a not-present page */
    movl $pf_page, %eax
    jmp *%eax
t_pf_fetch_resume:
    ret
    .pushsection .extable, "a"
    .long pf_page, t_pf_fetch_resume
    .popsection

/*
 * Ring 3 part of the #TS test. The kernel sets TSS.SS0 to a selector whose RPL (3) differs
 * from the handler's DPL (0), so INT 0x80 raises #TS(SS0 selector). The #TS gate points to
 * a ring-3 code segment: it is delivered without a stack switch, on this user stack.
 */
    .globl t_ts_user
t_ts_user:
    movl $2, %eax               /* SYS_EXIT */
    movl $0x77, %ebx
FAULT t_ts
    int $0x80
1:  jmp 1b

    .globl ts_user_handler
ts_user_handler:                /* CPL 3: error code, EIP, CS, EFLAGS on the user stack */
    popl ts_err
    pushl %eax
    movl 4(%esp), %eax
    movl %eax, ts_eip
    movl 8(%esp), %eax
    movl %eax, ts_cs
    popl %eax
    movl $SEL_KDATA, rt_tss + 8 /* repair SS0 (flat memory: no paging yet) */
    incl ts_count
    iret                        /* retries the INT 0x80, which now works */

    .data
    .balign 4
bounds:
    .long 0, 10
    .globl ts_err, ts_eip, ts_cs, ts_count
ts_err:     .long 0
ts_eip:     .long 0
ts_cs:      .long 0
ts_count:   .long 0

    .bss
    .balign 4096
    .globl pf_page, ro_page
pf_page:
    .skip 4096
ro_page:
    .skip 4096

    .section .note.GNU-stack, "", @progbits
