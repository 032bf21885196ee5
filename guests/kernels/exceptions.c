/*
 * exceptions: raises every exception the CPU can raise here and checks the vector, the
 * error code, the saved EIP (fault: the instruction; trap: the next one) and recovery.
 * Not raised: NMI (2), #NM (7) and #MF (16) (the fpu guest raises those two), 9 is
 * reserved since the 486, #AC (17) is not implemented by QEMU's TCG, #MC/#XM/#VE/#CP
 * (18-21) need machine checks, SSE, VMX or CET. #SS from a segment-limit violation is
 * left out because QEMU's TCG does not check data segment limits; #SS comes from MOV SS.
 */
#include "rt.h"

const char guest_name[] = "exceptions";

#define SEL_NP 0x30
#define NO_ERR 0xFFFFFFFFu

#define TEST(n) extern void n(void); extern char n##_at[]
TEST(t_de); TEST(t_de2); TEST(t_db); TEST(t_bp); TEST(t_of); TEST(t_br); TEST(t_ud); TEST(t_np);
TEST(t_np_gate); TEST(t_ss); TEST(t_gp_sel); TEST(t_gp_tss); TEST(t_gp_idt); TEST(t_gp_null);
TEST(t_pf_read); TEST(t_pf_write); TEST(t_pf_ro); TEST(t_ts);
extern void t_pf_fetch(void), t_of_clear(void), t_br_ok(void), t_df(void), t_ts_user(void), ts_user_handler(void);
extern char t_df_resume[], pf_page[], ro_page[];
extern volatile uint32_t ts_err, ts_eip, ts_cs, ts_count;

static uint8_t user_stack[PAGE_SIZE] __attribute__((aligned(16)));
static volatile uint32_t df_count, df_err;

static const char *const names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "15",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "22",  "23",  "24",  "25",  "26",  "27",  "28",  "29",  "30",  "31",
};

/* Run one test and check the fault the runtime recorded through the exception table. */
static void expect(void (*fn)(void), uint32_t vector, uint32_t err, const char *eip_label, const char *at,
                   uint32_t cr2, const char *what) {
    uint32_t n = last_fault.count;
    fn();
    CHECK(last_fault.count == n + 1, "%s: %s: no exception", names[vector], what);
    CHECK(last_fault.vector == vector, "%s: %s: got vector %u", names[vector], what, last_fault.vector);
    if (err != NO_ERR)
        CHECK(last_fault.err == err, "%s: %s: error code %x, expected %x", names[vector], what, last_fault.err, err);
    CHECK(last_fault.eip == (uint32_t)at, "%s: %s: saved EIP %x, expected %x", names[vector], what, last_fault.eip,
          (uint32_t)at);
    if (vector == 14)
        CHECK(last_fault.cr2 == cr2, "#PF: %s: CR2 %x, expected %x", what, last_fault.cr2, cr2);
    printf("%-4s vector %2u  ", names[vector], vector);
    if (err == NO_ERR)
        printf("error -     ");
    else
        printf("error %04x  ", err);
    printf("%s, EIP at %s", what, eip_label);
    if (vector == 14) printf(", CR2 ok");
    printf(": recovered\n");
}

static void debug_trap(struct regs *r) {
    r->eflags &= ~EFLAGS_TF;
    if (!fault_fixup(r)) fail("unexpected #DB at %x", r->eip);
}

static void double_fault(struct regs *r) {
    df_count++;
    df_err = r->err;
    /* #DF is an abort: the saved EIP is undefined, so resume at a known place. */
    r->eip = (uint32_t)t_df_resume;
}

int kmain(void) {
    gdt_set(SEL_NP / 8, 0, 0xFFFFF, 0x12, 0xC);    /* writable data, DPL 0, P=0 */
    set_handler(1, debug_trap);
    syscalls_install();

    expect(t_de, 0, NO_ERR, "fault", t_de_at, 0, "DIV by zero");
    expect(t_de2, 0, NO_ERR, "fault", t_de2_at, 0, "DIV quotient overflow");
    expect(t_db, 1, NO_ERR, "next", t_db_at, 0, "single step (EFLAGS.TF)");
    expect(t_bp, 3, NO_ERR, "next", t_bp_at, 0, "INT3");
    uint32_t n = last_fault.count;
    t_of_clear();
    CHECK(last_fault.count == n, "INTO with OF=0 raised an exception");
    expect(t_of, 4, NO_ERR, "next", t_of_at, 0, "INTO with OF=1 (OF=0: none)");
    n = last_fault.count;
    t_br_ok();
    CHECK(last_fault.count == n, "BOUND within bounds raised an exception");
    expect(t_br, 5, NO_ERR, "fault", t_br_at, 0, "BOUND out of range (in range: none)");
    expect(t_ud, 6, NO_ERR, "fault", t_ud_at, 0, "UD2");

    /* #DF: the #DE gate is made not present, so delivering #DE raises #NP -> #DF. */
    set_handler(8, double_fault);
    idt_set_gate(0, isr_stub(0), SEL_KCODE, IDT_GATE_INT & 0x7F);
    t_df();
    idt_set_gate(0, isr_stub(0), SEL_KCODE, IDT_GATE_INT);
    CHECK(df_count == 1 && df_err == 0, "#DF: count %u err %x", df_count, df_err);
    printf("#DF  vector  8  error 0000  #DE through a not-present gate -> #NP -> #DF: recovered\n");

    /* #TS: INT 0x80 from ring 3 with a bad TSS.SS0 (RPL 3 != DPL 0). */
    idt_set_gate(10, (uint32_t)ts_user_handler, SEL_UCODE, IDT_GATE_INT);
    rt_tss.ss0 = SEL_KDATA | 3;
    uint32_t ret = user_run(t_ts_user, (uint32_t)(user_stack + sizeof user_stack));
    idt_set_gate(10, isr_stub(10), SEL_KCODE, IDT_GATE_INT);
    CHECK(ts_count == 1, "#TS: count %u", ts_count);
    CHECK(ts_err == SEL_KDATA, "#TS: error code %x, expected %x", ts_err, SEL_KDATA);
    CHECK(ts_eip == (uint32_t)t_ts_at && (ts_cs & 0xFFFF) == SEL_UCODE, "#TS: saved CS:EIP %x:%x", ts_cs, ts_eip);
    CHECK(ret == 0x77 && rt_tss.ss0 == SEL_KDATA, "#TS: INT 0x80 retry returned %x", ret);
    printf("#TS  vector 10  error %04x  INT 0x80 from ring 3 with TSS.SS0 RPL 3, EIP at fault: recovered\n", ts_err);

    expect(t_np, 11, SEL_NP, "fault", t_np_at, 0, "MOV DS, not-present segment");
    idt_set_gate(47, isr_stub(47), SEL_KCODE, IDT_GATE_INT & 0x7F);
    expect(t_np_gate, 11, 47 * 8 + 2, "fault", t_np_gate_at, 0, "INT 47, not-present gate (IDT bit)");
    idt_set_gate(47, isr_stub(47), SEL_KCODE, IDT_GATE_INT);
    expect(t_ss, 12, SEL_NP, "fault", t_ss_at, 0, "MOV SS, not-present segment");
    expect(t_gp_sel, 13, 0x1238, "fault", t_gp_sel_at, 0, "MOV DS, selector beyond the GDT limit");
    expect(t_gp_tss, 13, SEL_TSS, "fault", t_gp_tss_at, 0, "MOV DS, TSS selector");
    idt_reload(0x80 * 8 + 7);
    expect(t_gp_idt, 13, 0x81 * 8 + 2, "fault", t_gp_idt_at, 0, "INT 0x81 beyond the IDT limit");
    idt_reload(256 * 8 - 1);
    expect(t_gp_null, 13, 0, "fault", t_gp_null_at, 0, "MOV SS, null selector");

    uint32_t *pd = pd_identity(PTE_P | PTE_W);
    *pte_of(pd, (uint32_t)pf_page) = 0;
    *pte_of(pd, (uint32_t)ro_page) &= ~PTE_W;
    paging_enable(pd);
    expect(t_pf_read, 14, 0, "fault", t_pf_read_at, (uint32_t)pf_page + 0x10, "read, not present");
    expect(t_pf_write, 14, 2, "fault", t_pf_write_at, (uint32_t)pf_page + 0x20, "write, not present");
    expect(t_pf_ro, 14, 3, "fault", t_pf_ro_at, (uint32_t)ro_page + 0x30, "write, read-only, CR0.WP=1");
    expect(t_pf_fetch, 14, 0, "fault", pf_page, (uint32_t)pf_page, "instruction fetch, not present");

    printf("not raised: NMI 2, #NM 7, #MF 16 (see fpu), 9 (reserved), #AC 17, #MC 18, #XM 19, #VE 20, #CP 21\n");
    printf("exceptions recovered: %u\n", last_fault.count + df_count + ts_count);
    return 0;
}
