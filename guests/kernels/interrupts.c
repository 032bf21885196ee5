/*
 * interrupts: 8259A PIC remap, 8254 PIT channel 0 periodic ticks counted with HLT, EOI,
 * the ISR/IRR registers, and IRQ masking (no ticks while IRQ0 is masked; the edge stays
 * pending in IRR and is delivered once unmasked). Output depends on no timing.
 */
#include "rt.h"

const char guest_name[] = "interrupts";

static volatile uint32_t ticks;
static volatile uint32_t isr_bit_in_handler;

static void timer_irq(struct regs *r) {
    (void)r;
    ticks++;
    /* While the handler runs, IRQ0 is in service. */
    if (pic_read_isr() & 1) isr_bit_in_handler++;
    if (ticks > 5)
        outb(0x20, 0x60); /* OCW2: specific EOI for IRQ0 */
    else
        pic_eoi(0); /* OCW2: non-specific EOI */
}

/* Channel 2 one-shot (mode 0, gate from port 0x61 bit 0): poll OUT2 on port 0x61 bit 5.
 * Returns 0 if it never fired within the loop bound. */
static int pit2_wait(uint16_t count) {
    outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01)); /* gate on, speaker off */
    outb(0x43, 0xB0);                                  /* channel 2, lo/hi, mode 0 */
    outb(0x42, (uint8_t)count);
    outb(0x42, (uint8_t)(count >> 8));
    for (uint32_t i = 0; i < 200000000u; i++)
        if (inb(0x61) & 0x20) return 1;
    return 0;
}

int kmain(void) {
    set_handler(32, timer_irq);
    printf("PIC remapped: IRQ0-7 -> vectors 32-39, IRQ8-15 -> 40-47\n");
    CHECK(pic_get_mask() == 0xFFFF, "IMR should read back 0xffff, got %x", pic_get_mask());
    printf("IMR reads back %x\n", pic_get_mask());

    pit_set_periodic((uint16_t)(PIT_HZ / 1000)); /* 1 kHz */
    printf("PIT channel 0: mode 2, divisor %u (1 kHz)\n", PIT_HZ / 1000);
    pic_set_mask(0xFFFE);

    const uint32_t want = 10;
    /* STI;HLT;CLI: a tick wakes the HLT and interrupts are off again right after it. */
    while (ticks < want) __asm__ volatile("sti; hlt; cli" ::: "memory");
    CHECK(ticks == want, "expected %u ticks, got %u", want, ticks);
    printf("got %u ticks with HLT\n", ticks);
    printf("5 acknowledged with non-specific EOI, 5 with specific EOI\n");
    CHECK(isr_bit_in_handler == ticks, "ISR bit 0 not set inside the handler (%u of %u)", isr_bit_in_handler, ticks);
    printf("ISR bit 0 set inside every handler: yes\n");
    CHECK(pic_read_isr() == 0, "ISR not clear after EOI: %x", pic_read_isr());
    printf("ISR clear after EOI: yes\n");

    /* Mask IRQ0 and let the PIT run for ~6.9 ms (channel 2 one-shot, several ch0 periods), IF=1. */
    pic_set_mask(0xFFFF);
    uint32_t before = ticks;
    sti();
    int fired = pit2_wait(0x2000);
    cli();
    CHECK(fired, "PIT channel 2 never reached terminal count (port 0x61 bit 5)");
    printf("PIT channel 2 one-shot reached terminal count (port 0x61 OUT2)\n");
    CHECK(ticks == before, "%u ticks arrived while IRQ0 was masked", ticks - before);
    printf("IRQ0 masked: no ticks arrived\n");
    CHECK(pic_read_irr() & 1, "IRR bit 0 not set while masked: irr=%x", pic_read_irr());
    printf("IRR bit 0 pending while masked: yes\n");

    /* Unmask with IF=0: nothing is delivered until STI. */
    pic_set_mask(0xFFFE);
    CHECK(ticks == before, "tick delivered with IF=0");
    printf("unmasked with IF=0: no tick delivered\n");
    sti_hlt();
    cli();
    CHECK(ticks > before, "no tick after STI");
    printf("after STI+HLT: tick delivered\n");

    pic_set_mask(0xFFFF);
    outb(0x43, 0x30); /* channel 0 mode 0: stop periodic ticks (one final terminal count) */
    outb(0x40, 0xFF);
    outb(0x40, 0xFF);
    printf("IRQ0 masked, PIT channel 0 switched to one-shot mode\n");
    return 0;
}
