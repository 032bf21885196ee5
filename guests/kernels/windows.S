/*
 * windows: interrupt windows, each a function that the C side calls with IRQ0 pending (or
 * pending and masked, or pending behind one in service). The labels after each
 * instruction are the EIPs at which the interrupt may arrive; windows.c prints which one
 * it did. All are called with IF=0 and return with IF=0.
 */
    .text

#define WIN(name) .globl name; name:
#define AT(name) .globl name; name:

/* STI then two NOPs: the STI shadow lets exactly one instruction run. */
WIN(win_sti)
    sti
AT(win_sti_1)
    nop
AT(win_sti_2)
    nop
AT(win_sti_3)
    cli
    ret

/* STI then CLI: the CLI runs in the shadow, so the interrupt is never taken here. */
WIN(win_sti_cli)
    sti
AT(win_sti_cli_1)
    cli
AT(win_sti_cli_2)
    ret

/* STI; STI: the second STI runs in the first's shadow and opens no shadow of its own. */
WIN(win_sti_sti)
    sti
AT(win_sti_sti_1)
    sti
AT(win_sti_sti_2)
    nop
AT(win_sti_sti_3)
    nop
    cli
    ret

/* STI; MOV SS: the MOV SS runs in the STI shadow; shadows do not chain. */
WIN(win_sti_movss)
    movw %ss, %ax
    sti
AT(win_sti_movss_1)
    movw %ax, %ss
AT(win_sti_movss_2)
    nop
AT(win_sti_movss_3)
    nop
    cli
    ret

/* STI; POP SS: likewise. */
WIN(win_sti_popss)
    pushl %ss
    sti
AT(win_sti_popss_1)
    popl %ss
AT(win_sti_popss_2)
    nop
AT(win_sti_popss_3)
    nop
    cli
    ret

/* POPF that sets IF: no shadow, the interrupt comes right after it. */
WIN(win_popf)
    pushfl
    orl $0x200, (%esp)
    popfl
AT(win_popf_1)
    nop
AT(win_popf_2)
    nop
    cli
    ret

/* IRET to a frame with IF set: right after it, before the first instruction it returns to. */
WIN(win_iret)
    pushfl
    orl $0x200, (%esp)
    pushl %cs
    pushl $win_iret_1
    iret
AT(win_iret_1)
    nop
AT(win_iret_2)
    nop
    cli
    ret

/* IF=1 with IRQ0 masked and pending: the OUT that unmasks it lets it in right after. */
WIN(win_unmask)
    sti
    nop
    nop
    movb $0xfe, %al
    outb %al, $0x21
AT(win_unmask_1)
    nop
AT(win_unmask_2)
    nop
    cli
    ret

/* IF=1 with IRQ0 in service and pending again: the EOI lets it in right after. */
WIN(win_eoi)
    sti
    nop
    nop
    movb $0x20, %al
    outb %al, $0x20
AT(win_eoi_1)
    nop
AT(win_eoi_2)
    nop
    cli
    ret

/* STI; HLT: the interrupt wakes the HLT and returns past it. */
WIN(win_hlt)
    sti
AT(win_hlt_1)
    hlt
AT(win_hlt_2)
    nop
    cli
    ret

    .section .note.GNU-stack, "", @progbits
