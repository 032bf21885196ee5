/*
 * ioapic_serial: interrupts through the I/O APIC (82093AA) to the local APIC, with the
 * 8259A masked. COM1's IRQ 4 on pin 4: a THRE interrupt edge-triggered, a received
 * byte (loopback) edge-triggered, THRE again level-triggered (remote IRR set while the
 * vector is in service, cleared by the local APIC's EOI, and an EOI with the line still
 * up delivers it again); the PIT's IRQ 0 arrives at pin 2 (the interrupt source
 * override every PC has) and ticks are counted with STI;HLT. Output depends on no timing.
 */
#include "apic.h"
#include "rt.h"

const char guest_name[] = "ioapic_serial";

#define COM1 0x3F8
#define V_COM1 0x24
#define V_PIT 0x20
#define V_SPURIOUS 0x2F

static volatile uint32_t com1_irqs, pit_ticks;
static volatile uint32_t last_iir, rx_byte, remote_irr_in_handler, tmr_in_handler;
static volatile int level_mode, rx_mode;

static uint32_t entry_low(int pin) { return ioapic_read(0x10u + 2u * (uint32_t)pin); }

static void com1_irq(struct regs *r) {
    (void)r;
    com1_irqs++;
    if (level_mode) {
        if (entry_low(4) & IOAPIC_REMOTE_IRR) remote_irr_in_handler++;
        if (lapic_bit(LAPIC_TMR, V_COM1)) tmr_in_handler++;
        /* The first time, EOI with the line still up: the I/O APIC sends it again. */
        if (com1_irqs == 1) {
            lapic_eoi();
            return;
        }
    }
    last_iir = inb(COM1 + 2) & 0x0F; /* reading IIR clears a THRE interrupt */
    if (rx_mode) rx_byte = inb(COM1);
    lapic_eoi();
}

static void pit_irq(struct regs *r) {
    (void)r;
    pit_ticks++;
    lapic_eoi();
}

static int wait_irqs(uint32_t n) {
    for (uint32_t i = 0; i < 10000000u; i++)
        if (com1_irqs >= n) return 1;
    return 0;
}

int kmain(void) {
    set_handler(V_COM1, com1_irq);
    set_handler(V_PIT, pit_irq);
    pic_set_mask(0xFFFF);
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | V_SPURIOUS);
    lapic_write(LAPIC_LINT0, LVT_MASKED);
    lapic_write(LAPIC_TPR, 0);

    uint32_t ver = ioapic_read(1);
    printf("I/O APIC: ID %u, %u redirection entries\n", ioapic_read(0) >> 24, ((ver >> 16) & 0xFF) + 1);
    int masked = 0;
    for (int pin = 0; pin < 24; pin++) masked += (entry_low(pin) & IOAPIC_MASKED) != 0;
    printf("masked at boot: %d of 24\n", masked);

    /* COM1 THRE, edge-triggered, pin 4 -> vector 0x24. */
    ioapic_route(4, V_COM1);
    CHECK(entry_low(4) == V_COM1, "entry 4 reads %x", entry_low(4));
    outb(COM1 + 4, 0x0B); /* DTR | RTS | OUT2 */
    sti();
    outb(COM1 + 1, 0x02); /* IER: THR empty */
    int ok = wait_irqs(1);
    cli();
    outb(COM1 + 1, 0x00);
    CHECK(ok, "no THRE interrupt through the I/O APIC");
    printf("COM1 THRE interrupt on vector %x: IIR id %x\n", V_COM1, last_iir);
    CHECK(!lapic_bit(LAPIC_ISR, V_COM1), "ISR bit left set");

    /* A received byte (loopback), FIFO trigger level 1. */
    outb(COM1 + 2, 0x07);
    outb(COM1 + 4, 0x1B); /* loopback | OUT2 | DTR | RTS */
    while (inb(COM1 + 5) & 0x01) (void)inb(COM1);
    rx_mode = 1;
    com1_irqs = 0;
    outb(COM1 + 1, 0x01); /* IER: received data */
    sti();
    outb(COM1, 'Z');
    ok = wait_irqs(1);
    cli();
    outb(COM1 + 1, 0x00);
    outb(COM1 + 4, 0x0B);
    outb(COM1 + 2, 0xC7);
    rx_mode = 0;
    CHECK(ok, "no receive interrupt through the I/O APIC");
    printf("COM1 receive interrupt: IIR id %x, byte '%c'\n", last_iir, (char)rx_byte);

    /* Level-triggered THRE: remote IRR while in service; EOI with the line up re-sends. */
    ioapic_route(4, IOAPIC_LEVEL | V_COM1);
    level_mode = 1;
    com1_irqs = 0;
    sti();
    outb(COM1 + 1, 0x02);
    ok = wait_irqs(2);
    cli();
    outb(COM1 + 1, 0x00);
    level_mode = 0;
    CHECK(ok, "level-triggered: %u deliveries", com1_irqs);
    for (volatile int i = 0; i < 1000; i++) {
    }
    CHECK(com1_irqs == 2, "level-triggered: %u deliveries", com1_irqs);
    printf("level-triggered: delivered again after an EOI with the line up: yes\n");
    CHECK(remote_irr_in_handler == 2 && tmr_in_handler == 2, "remote IRR %u, TMR %u of 2", remote_irr_in_handler,
          tmr_in_handler);
    printf("remote IRR and TMR set in the handler: yes\n");
    CHECK(!(entry_low(4) & IOAPIC_REMOTE_IRR), "remote IRR still set after EOI: %x", entry_low(4));
    printf("remote IRR clear after the last EOI: yes\n");
    ioapic_route(4, IOAPIC_MASKED | V_COM1);

    /* PIT channel 0 at 1 kHz: IRQ 0 arrives at pin 2. */
    ioapic_route(2, V_PIT);
    pit_set_periodic((uint16_t)(PIT_HZ / 1000));
    while (pit_ticks < 5) sti_hlt(), cli();
    ioapic_route(2, IOAPIC_MASKED | V_PIT);
    outb(0x43, 0x30); /* channel 0 mode 0: no more periodic ticks */
    outb(0x40, 0xFF);
    outb(0x40, 0xFF);
    printf("PIT IRQ 0 on pin 2: %u ticks with HLT\n", pit_ticks);
    return 0;
}
