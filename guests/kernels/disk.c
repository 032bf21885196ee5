/*
 * disk: the primary ATA channel through PIO, as a small kernel driver uses it.
 *
 * The disk is popek_guests::pattern_disk(): 4096 sectors; in sector n the first four
 * bytes hold n and byte i >= 4 holds (n + i) & 0xFF. The guest writes sectors 2000-2001
 * with the complement of that pattern.
 *
 * Checked: the absent slave reads status 0; IDENTIFY DEVICE (model, size in words 60-61,
 * CHS in words 1/3/6, LBA bit) with nIEN set and no IRQ; READ SECTORS with one IRQ 14 per
 * sector through the 8259A, from LBA28 and CHS addresses, count 0 meaning 256; WRITE
 * SECTORS and reading the data back; SET MULTIPLE MODE and READ MULTIPLE (an IRQ per
 * block); an unknown command (ERR, ABRT); a read across the disk's end (the last sector,
 * then ERR); FLUSH CACHE;
 * software reset (then the signature).
 *
 * Statuses are printed without DSC (bit 4, obsolete since ATA-4), which drives set or not.
 *
 * Command line: then=triple (triple fault right after the writes) or then=spin (loop
 * forever after them), for the tests that check the writes survive any stop.
 */
#include "rt.h"

const char guest_name[] = "disk";

#define ATA_DATA 0x1f0
#define ATA_ERROR 0x1f1
#define ATA_COUNT 0x1f2
#define ATA_LBA0 0x1f3
#define ATA_LBA1 0x1f4
#define ATA_LBA2 0x1f5
#define ATA_DEVICE 0x1f6
#define ATA_STATUS 0x1f7
#define ATA_CTRL 0x3f6

#define ST_BSY 0x80
#define ST_DRDY 0x40
#define ST_DRQ 0x08
#define ST_ERR 0x01
#define CTRL_NIEN 0x02
#define CTRL_SRST 0x04

#define DISK_SECTORS 4096u
#define IRQ_VECTOR (0x28 + 6) /* IRQ 14: slave 8259A input 6 */

static volatile uint32_t irqs;
static uint8_t buf[256 * 512];

static void on_irq14(struct regs *r) {
    (void)r;
    irqs++;
    pic_eoi(14);
}

static inline void insl(uint16_t port, void *dst, uint32_t n) {
    __asm__ volatile("cld; rep insl" : "+D"(dst), "+c"(n) : "d"(port) : "memory");
}
static inline void outsl(uint16_t port, const void *src, uint32_t n) {
    __asm__ volatile("cld; rep outsl" : "+S"(src), "+c"(n) : "d"(port) : "memory");
}
static inline void insw(uint16_t port, void *dst, uint32_t n) {
    __asm__ volatile("cld; rep insw" : "+D"(dst), "+c"(n) : "d"(port) : "memory");
}

/* BSY, DRDY, DF, DRQ, ERR: the status without the obsolete DSC bit. */
static uint8_t bits(uint8_t st) { return st & 0xe9; }

/* Polls the alternate status until BSY is clear and DRQ or ERR is set. */
static uint8_t wait_data(void) {
    for (uint32_t i = 0; i < 10000000; i++) {
        uint8_t st = inb(ATA_CTRL);
        if (!(st & ST_BSY) && (st & (ST_DRQ | ST_ERR))) return st;
    }
    fail("no DRQ");
}

/* Polls the alternate status until BSY is clear. */
static uint8_t wait_idle(void) {
    for (uint32_t i = 0; i < 10000000; i++) {
        uint8_t st = inb(ATA_CTRL);
        if (!(st & ST_BSY)) return st;
    }
    fail("BSY forever");
}

/* Interrupts on until `irqs` reaches `want` (or a long while passes); 1 if it did. */
static int wait_irq(uint32_t want) {
    sti();
    for (uint32_t i = 0; i < 50000000 && irqs < want; i++) barrier();
    cli();
    return irqs >= want;
}

/* A short while with interrupts on: 1 if no IRQ came. */
static int no_irq(void) {
    uint32_t before = irqs;
    sti();
    for (uint32_t i = 0; i < 200000; i++) barrier();
    cli();
    return irqs == before;
}

static void task(uint32_t lba, uint8_t count, uint8_t cmd) {
    outb(ATA_COUNT, count);
    outb(ATA_LBA0, (uint8_t)lba);
    outb(ATA_LBA1, (uint8_t)(lba >> 8));
    outb(ATA_LBA2, (uint8_t)(lba >> 16));
    outb(ATA_DEVICE, (uint8_t)(0xe0 | ((lba >> 24) & 0x0f)));
    outb(ATA_STATUS, cmd);
}

static uint8_t pattern_byte(uint32_t n, uint32_t i) { return i < 4 ? (uint8_t)(n >> (8 * i)) : (uint8_t)(n + i); }

/* 1 if `p` holds sector n of the pattern (or its complement when `inverted`). */
static int is_pattern(const uint8_t *p, uint32_t n, int inverted) {
    for (uint32_t i = 0; i < 512; i++) {
        uint8_t want = pattern_byte(n, i);
        if (p[i] != (uint8_t)(inverted ? ~want : want)) return 0;
    }
    return 1;
}

/* The sectors after the command was issued: an IRQ per `block` sectors, status DRQ
 * read (clearing the interrupt), the data by INSL. Returns the IRQs taken. */
static uint32_t read_data(uint32_t n, uint32_t block, const char *what) {
    uint32_t before = irqs;
    for (uint32_t s = 0; s < n; s += block) {
        CHECK(wait_irq(before + s / block + 1), "%s: no IRQ for sector %u", what, s);
        uint8_t st = inb(ATA_STATUS);
        CHECK(bits(st) == (ST_DRDY | ST_DRQ), "%s: status %02x before sector %u", what, st, s);
        uint32_t k = n - s < block ? n - s : block;
        insl(ATA_DATA, buf + s * 512, k * 128);
    }
    uint8_t st = wait_idle();
    CHECK(bits(st) == ST_DRDY, "%s: status %02x after the data", what, st);
    return irqs - before;
}

/* READ SECTORS: n sectors from lba (n = 256 is sent as count 0). */
static uint32_t read_sectors(uint32_t lba, uint32_t n) {
    task(lba, (uint8_t)n, 0x20);
    return read_data(n, 1, "read");
}

static int check_sectors(uint32_t lba, uint32_t n, int inverted) {
    for (uint32_t s = 0; s < n; s++)
        if (!is_pattern(buf + s * 512, lba + s, inverted)) return 0;
    return 1;
}

/* WRITE SECTORS of buf: DRQ, the data by OUTSL, an IRQ per sector. Returns the IRQs. */
static uint32_t write_sectors(uint32_t lba, uint32_t n) {
    uint32_t before = irqs;
    task(lba, (uint8_t)n, 0x30);
    for (uint32_t s = 0; s < n; s++) {
        uint8_t st = wait_data();
        CHECK(bits(st) == (ST_DRDY | ST_DRQ), "write: status %02x before sector %u", st, s);
        outsl(ATA_DATA, buf + s * 512, 128);
        CHECK(wait_irq(before + s + 1), "write: no IRQ after sector %u", s);
        st = inb(ATA_STATUS);
        uint8_t want = s + 1 < n ? (ST_DRDY | ST_DRQ) : ST_DRDY;
        CHECK(bits(st) == want, "write: status %02x after sector %u", st, s);
    }
    return irqs - before;
}

/* A command without data: its IRQ, then status and error. */
static void no_data(uint8_t cmd, uint8_t *st, uint8_t *err) {
    uint32_t before = irqs;
    outb(ATA_STATUS, cmd);
    CHECK(wait_irq(before + 1), "command %02x: no IRQ", cmd);
    *st = bits(inb(ATA_STATUS));
    *err = inb(ATA_ERROR);
}

static void ata_string(const uint16_t *w, uint32_t words, char *out) {
    for (uint32_t i = 0; i < words; i++) {
        out[2 * i] = (char)(w[i] >> 8);
        out[2 * i + 1] = (char)w[i];
    }
    uint32_t n = 2 * words;
    while (n > 0 && out[n - 1] == ' ') n--;
    out[n] = 0;
}

int kmain(void) {
    set_handler(IRQ_VECTOR, on_irq14);
    pic_set_mask((uint16_t)~((1u << 14) | (1u << 2)));

    /* The master: wait until it is ready (xv6's idewait). */
    outb(ATA_DEVICE, 0xe0);
    uint8_t st = 0;
    for (uint32_t i = 0; i < 10000000 && (st & (ST_BSY | ST_DRDY)) != ST_DRDY; i++) st = inb(ATA_STATUS);
    CHECK((st & (ST_BSY | ST_DRDY)) == ST_DRDY, "master never ready: %02x", st);
    printf("master: status %02x\n", bits(st));

    /* The slave is absent: its status reads 0. */
    outb(ATA_DEVICE, 0xf0);
    st = inb(ATA_STATUS);
    printf("slave: status %02x (absent)\n", st);
    CHECK(st == 0, "absent slave status %02x", st);
    outb(ATA_DEVICE, 0xe0);

    /* IDENTIFY DEVICE with nIEN set: the data, and no interrupt. */
    outb(ATA_CTRL, CTRL_NIEN);
    outb(ATA_STATUS, 0xec);
    st = wait_data();
    static uint16_t id[256];
    insw(ATA_DATA, id, 256);
    int quiet = no_irq();
    uint8_t after = bits(inb(ATA_STATUS));
    char model[41], firmware[9];
    ata_string(id + 27, 20, model);
    ata_string(id + 23, 4, firmware);
    uint32_t sectors = id[60] | (uint32_t)id[61] << 16;
    printf("identify: status %02x, then %02x after 256 words, IRQ with nIEN set: %s\n", bits(st), after,
           quiet ? "none" : "yes");
    printf("identify: model \"%s\"\n", model);
    printf("identify: %u sectors, CHS %u/%u/%u, LBA %s\n", sectors, id[1], id[3], id[6],
           (id[49] & (1u << 9)) ? "supported" : "not supported");
    CHECK(quiet && bits(st) == (ST_DRDY | ST_DRQ) && after == ST_DRDY, "identify protocol");
    CHECK(sectors == DISK_SECTORS, "disk size %u", sectors);
    CHECK(firmware[0] != 0 && model[0] != 0, "empty model or firmware string");
    outb(ATA_CTRL, 0);

    /* READ SECTORS, one and several. */
    uint32_t n = read_sectors(5, 1);
    printf("read: lba 5, 1 sector, %u IRQ, pattern %s\n", n, check_sectors(5, 1, 0) ? "ok" : "WRONG");
    CHECK(n == 1 && check_sectors(5, 1, 0), "read lba 5");
    n = read_sectors(1000, 3);
    printf("read: lba 1000, 3 sectors, %u IRQs, pattern %s\n", n, check_sectors(1000, 3, 0) ? "ok" : "WRONG");
    CHECK(n == 3 && check_sectors(1000, 3, 0), "read lba 1000");

    /* WRITE SECTORS: the complement of the pattern at 2000-2001, then read back. */
    for (uint32_t s = 0; s < 2; s++)
        for (uint32_t i = 0; i < 512; i++) buf[s * 512 + i] = (uint8_t)~pattern_byte(2000 + s, i);
    n = write_sectors(2000, 2);
    memset(buf, 0, 1024);
    uint32_t m = read_sectors(1999, 4);
    int back = is_pattern(buf, 1999, 0) && is_pattern(buf + 512, 2000, 1) && is_pattern(buf + 1024, 2001, 1) &&
               is_pattern(buf + 1536, 2002, 0);
    printf("write: lba 2000, 2 sectors, %u IRQs; read back 1999-2002 (%u IRQs): %s\n", n, m,
           back ? "ok" : "WRONG");
    CHECK(n == 2 && m == 4 && back, "write and read back");

    char then[16];
    if (arg_str("then", then, sizeof then)) {
        if (strcmp(then, "triple") == 0) {
            puts("then: triple fault\n");
            idt_reload(0);
            __asm__ volatile("int3");
        }
        puts("then: spin\n");
        for (;;) barrier();
    }

    /* Count 0 is 256 sectors. */
    n = read_sectors(3000, 256);
    printf("read: lba 3000, count 0 = 256 sectors, %u IRQs, pattern %s\n", n,
           check_sectors(3000, 256, 0) ? "ok" : "WRONG");
    CHECK(n == 256 && check_sectors(3000, 256, 0), "read 256 sectors");

    /* CHS: cylinder 1, head 2, sector 5 = (1 * 16 + 2) * 63 + 4 = LBA 1138. */
    outb(ATA_COUNT, 1);
    outb(ATA_LBA0, 5);
    outb(ATA_LBA1, 1);
    outb(ATA_LBA2, 0);
    outb(ATA_DEVICE, 0xa2);
    outb(ATA_STATUS, 0x20);
    n = read_data(1, 1, "read chs");
    printf("read: CHS 1/2/5 = lba 1138, %u IRQ, pattern %s\n", n, check_sectors(1138, 1, 0) ? "ok" : "WRONG");
    CHECK(n == 1 && check_sectors(1138, 1, 0), "read CHS");

    /* SET MULTIPLE MODE 4, READ MULTIPLE of 10 sectors: 3 blocks, 3 IRQs. */
    uint8_t err;
    outb(ATA_COUNT, 4);
    no_data(0xc6, &st, &err);
    CHECK(st == ST_DRDY, "set multiple: %02x", st);
    task(100, 10, 0xc4);
    n = read_data(10, 4, "read multiple");
    printf("read multiple: block 4, lba 100, 10 sectors, %u IRQs, pattern %s\n", n,
           check_sectors(100, 10, 0) ? "ok" : "WRONG");
    CHECK(n == 3 && check_sectors(100, 10, 0), "read multiple");

    /* A read with nIEN set: the data by polling, no IRQ. */
    outb(ATA_CTRL, CTRL_NIEN);
    task(7, 1, 0x20);
    st = wait_data();
    insl(ATA_DATA, buf, 128);
    quiet = no_irq();
    after = bits(inb(ATA_STATUS));
    outb(ATA_CTRL, 0);
    printf("read with nIEN set: status %02x, then %02x, IRQ: %s, pattern %s\n", bits(st), after,
           quiet ? "none" : "yes", check_sectors(7, 1, 0) ? "ok" : "WRONG");
    CHECK(quiet && after == ST_DRDY && check_sectors(7, 1, 0), "nIEN read");

    /* An unknown command, a range beyond the disk, FLUSH CACHE. */
    no_data(0xff, &st, &err);
    printf("unknown command ff: status %02x, error %02x (ABRT)\n", st, err);
    CHECK(st == (ST_DRDY | ST_ERR) && err == 0x04, "unknown command");
    /* Across the end: the last sector comes, then ERR (without DRQ) and an IRQ. */
    task(DISK_SECTORS - 1, 2, 0x20);
    CHECK(wait_irq(irqs + 1), "no IRQ for the last sector");
    st = bits(inb(ATA_STATUS));
    CHECK(st == (ST_DRDY | ST_DRQ), "last sector: status %02x", st);
    insl(ATA_DATA, buf, 128);
    CHECK(wait_irq(irqs + 1), "no IRQ for the sector beyond the end");
    uint8_t beyond = bits(inb(ATA_STATUS));
    printf("read across the end: lba %u %s, then ERR %s, DRQ %s\n", DISK_SECTORS - 1,
           check_sectors(DISK_SECTORS - 1, 1, 0) ? "ok" : "WRONG", beyond & ST_ERR ? "set" : "clear",
           beyond & ST_DRQ ? "set" : "clear");
    CHECK(check_sectors(DISK_SECTORS - 1, 1, 0) && (beyond & (ST_ERR | ST_DRQ)) == ST_ERR, "across the end: %02x",
          beyond);
    no_data(0xe7, &st, &err);
    printf("flush cache: status %02x\n", st);
    CHECK(st == ST_DRDY, "flush cache");

    /* Software reset: ready with the signature after SRST. (BSY while SRST is set is not
     * checked here: QEMU finishes the reset in a bottom half that may run before the
     * guest's next IN, so what that IN sees depends on host timing. ide.rs's unit test
     * checks popek's BSY.) */
    outb(ATA_CTRL, CTRL_SRST | CTRL_NIEN);
    outb(ATA_CTRL, CTRL_NIEN);
    st = bits(wait_idle());
    uint8_t sig[5] = {inb(ATA_ERROR), inb(ATA_COUNT), inb(ATA_LBA0), inb(ATA_LBA1), inb(ATA_LBA2)};
    printf("software reset: status %02x, error %02x, signature %02x %02x %02x %02x\n", st, sig[0], sig[1], sig[2],
           sig[3], sig[4]);
    CHECK(st == ST_DRDY && sig[0] == 1 && sig[1] == 1 && sig[2] == 1 && sig[3] == 0 && sig[4] == 0, "reset");
    (void)inb(ATA_STATUS);
    outb(ATA_CTRL, 0);
    return 0;
}
