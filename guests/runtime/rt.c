/*
 * popek guest runtime: descriptor tables, interrupt dispatch, serial console, printf,
 * exit, PIC/PIT helpers, command line, paging helpers and string functions.
 */
#include "rt.h"

/* ------------------------------------------------------------------ serial (COM1) */
#define COM1 0x3F8

void serial_init(void) {
    outb(COM1 + 1, 0x00); /* IER: no interrupts */
    outb(COM1 + 3, 0x80); /* LCR: DLAB */
    outb(COM1 + 0, 0x01); /* divisor 1 = 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xC7); /* FIFO on, cleared, 14-byte threshold */
    outb(COM1 + 4, 0x03); /* DTR | RTS */
}

void putc(char c) {
    while (!(inb(COM1 + 5) & 0x20)) {
    }
    outb(COM1, (uint8_t)c);
}

void puts(const char *s) {
    while (*s) putc(*s++);
}

/* ------------------------------------------------------------------ printf */
struct sink {
    char *buf; /* NULL: serial */
    size_t cap, len;
};

static void emit(struct sink *s, char c) {
    if (!s->buf)
        putc(c);
    else if (s->len + 1 < s->cap)
        s->buf[s->len] = c;
    s->len++;
}

static void emit_num(struct sink *s, uint32_t v, unsigned base, int neg, int width, char pad, int left) {
    char tmp[12];
    int n = 0;
    do {
        unsigned d = v % base;
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    int len = n + neg;
    if (left) {
        if (neg) emit(s, '-');
        while (n) emit(s, tmp[--n]);
        for (; len < width; len++) emit(s, ' ');
        return;
    }
    if (neg && pad == '0') emit(s, '-');
    for (; len < width; len++) emit(s, pad);
    if (neg && pad != '0') emit(s, '-');
    while (n) emit(s, tmp[--n]);
}

static int format(struct sink *s, const char *fmt, va_list ap) {
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            emit(s, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, left = 0;
        if (*fmt == '-') {
            left = 1;
            fmt++;
        }
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') fmt++;
        switch (*fmt) {
        case 'd': {
            int32_t v = va_arg(ap, int32_t);
            emit_num(s, v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v, 10, v < 0, width, pad, left);
            break;
        }
        case 'u':
            emit_num(s, va_arg(ap, uint32_t), 10, 0, width, pad, left);
            break;
        case 'x':
            emit_num(s, va_arg(ap, uint32_t), 16, 0, width, pad, left);
            break;
        case 'p':
            emit(s, '0');
            emit(s, 'x');
            emit_num(s, (uint32_t)va_arg(ap, void *), 16, 0, 8, '0', 0);
            break;
        case 'c':
            emit(s, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str) str = "(null)";
            int n = (int)strlen(str);
            if (!left)
                for (; n < width; n++) emit(s, ' ');
            while (*str) emit(s, *str++);
            if (left)
                for (; n < width; n++) emit(s, ' ');
            break;
        }
        case '%':
            emit(s, '%');
            break;
        case 0:
            return (int)s->len;
        default:
            emit(s, '%');
            emit(s, *fmt);
        }
    }
    return (int)s->len;
}

int vprintf(const char *fmt, va_list ap) {
    struct sink s = {0, 0, 0};
    return format(&s, fmt, ap);
}

int printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int snprintf(char *buf, size_t n, const char *fmt, ...) {
    struct sink s = {buf, n, 0};
    va_list ap;
    va_start(ap, fmt);
    format(&s, fmt, ap);
    va_end(ap);
    if (n) buf[s.len < n ? s.len : n - 1] = 0;
    return (int)s.len;
}

/* ------------------------------------------------------------------ exit */
void exit(uint32_t code) {
    outb(0xF4, (uint8_t)code);
    /* Not under QEMU/popek: stop here. */
    for (;;) {
        cli();
        hlt();
    }
}

void fail(const char *fmt, ...) {
    va_list ap;
    puts("FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putc('\n');
    exit(1);
}

/* ------------------------------------------------------------------ GDT / TSS */
struct dt_ptr {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

#define GDT_ENTRIES 16
static uint64_t gdt[GDT_ENTRIES] __attribute__((aligned(8)));
struct tss rt_tss __attribute__((aligned(128)));
extern char irq_stack_top[];
void gdt_load(const struct dt_ptr *p);

void gdt_set(int index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags) {
    uint64_t d = (limit & 0xFFFFull) | ((uint64_t)(base & 0xFFFFFF) << 16) | ((uint64_t)access << 40) |
                 ((uint64_t)((limit >> 16) & 0xF) << 48) | ((uint64_t)(flags & 0xF) << 52) |
                 ((uint64_t)(base >> 24) << 56);
    gdt[index] = d;
}

static void gdt_init(void) {
    gdt_set(0, 0, 0, 0, 0);
    gdt_set(1, 0, 0xFFFFF, 0x9A, 0xC); /* 0x08 kernel code */
    gdt_set(2, 0, 0xFFFFF, 0x92, 0xC); /* 0x10 kernel data */
    gdt_set(3, 0, 0xFFFFF, 0xFA, 0xC); /* 0x18 user code (DPL 3) */
    gdt_set(4, 0, 0xFFFFF, 0xF2, 0xC); /* 0x20 user data (DPL 3) */
    rt_tss.ss0 = SEL_KDATA;
    rt_tss.esp0 = (uint32_t)irq_stack_top;
    rt_tss.iomap_base = sizeof(struct tss); /* no I/O bitmap */
    gdt_set(5, (uint32_t)&rt_tss, sizeof(struct tss) - 1, 0x89, 0x0); /* 0x28 available 32-bit TSS */
    static struct dt_ptr p;
    p.limit = sizeof(gdt) - 1;
    p.base = (uint32_t)gdt;
    gdt_load(&p);
    __asm__ volatile("ltr %w0" ::"r"(SEL_TSS));
}

/* ------------------------------------------------------------------ IDT */
static uint64_t idt[256] __attribute__((aligned(8)));
static handler_fn handlers[256];
extern const uint32_t isr_stub_table[48];
extern char isr_128[], isr_129[];

void idt_set_gate(int vector, uint32_t offset, uint16_t selector, uint8_t type_attr) {
    idt[vector] = (offset & 0xFFFFull) | ((uint64_t)selector << 16) | ((uint64_t)type_attr << 40) |
                  ((uint64_t)(offset >> 16) << 48);
}

uint32_t isr_stub(int vector) {
    if (vector < 48) return isr_stub_table[vector];
    if (vector == 0x80) return (uint32_t)isr_128;
    if (vector == 0x81) return (uint32_t)isr_129;
    return 0;
}

void idt_reload(uint16_t limit) {
    static struct dt_ptr p;
    p.limit = limit;
    p.base = (uint32_t)idt;
    __asm__ volatile("lidt %0" ::"m"(p));
}

static void idt_init(void) {
    for (int v = 0; v < 48; v++) idt_set_gate(v, isr_stub_table[v], SEL_KCODE, IDT_GATE_INT);
    idt_set_gate(0x80, (uint32_t)isr_128, SEL_KCODE, IDT_GATE_INT_USER);
    idt_set_gate(0x81, (uint32_t)isr_129, SEL_KCODE, IDT_GATE_INT); /* DPL 0: ring 3 gets #GP */
    idt_reload(sizeof(idt) - 1);
}

void set_handler(int vector, handler_fn fn) { handlers[vector & 0xFF] = fn; }

/* ------------------------------------------------------------------ faults */
volatile struct fault_record last_fault;
extern const uint32_t __extable_start[], __extable_end[];

uint32_t extable_lookup(uint32_t eip) {
    for (const uint32_t *e = __extable_start; e < __extable_end; e += 2)
        if (e[0] == eip) return e[1];
    return 0;
}

int fault_fixup(struct regs *r) {
    uint32_t to = extable_lookup(r->eip);
    if (!to) return 0;
    last_fault.vector = r->vector;
    last_fault.err = r->err;
    last_fault.eip = r->eip;
    last_fault.cs = r->cs & 0xFFFF;
    last_fault.cr2 = r->vector == 14 ? read_cr2() : 0;
    last_fault.count++;
    r->eip = to;
    return 1;
}

static const char *const vector_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "15",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "22",  "23",  "24",  "25",  "26",  "27",  "28",  "29",  "30",  "31",
};

void isr_dispatch(struct regs *r) {
    handler_fn h = handlers[r->vector & 0xFF];
    if (h) {
        h(r);
        return;
    }
    if (r->vector < 32 && fault_fixup(r)) return;
    if (r->vector >= 32 && r->vector < 48) {
        /* Stray IRQ: acknowledge it so a later test is not blocked. */
        pic_eoi((int)r->vector - 32);
        return;
    }
    printf("unexpected %s vector=%u err=%x eip=%x cs=%x eflags=%x", r->vector < 32 ? vector_names[r->vector] : "int",
           r->vector, r->err, r->eip, r->cs & 0xFFFF, r->eflags);
    if (r->vector == 14) printf(" cr2=%x", read_cr2());
    putc('\n');
    fail("unexpected exception");
}

/* ------------------------------------------------------------------ syscalls */
volatile uint32_t syscall_count;

static void syscall_handler(struct regs *r) {
    syscall_count++;
    switch (r->eax) {
    case SYS_WRITE:
        puts((const char *)r->ebx);
        r->eax = 0;
        break;
    case SYS_EXIT:
        user_return(r->ebx);
    case SYS_NOP:
        r->eax = r->ebx + 1;
        break;
    default:
        r->eax = (uint32_t)-1;
    }
}

void syscalls_install(void) { set_handler(0x80, syscall_handler); }

/* ------------------------------------------------------------------ PIC / PIT */
#define PIC1 0x20
#define PIC2 0xA0

void pic_remap(uint8_t master_base, uint8_t slave_base) {
    outb(PIC1, 0x11); /* ICW1: edge, cascade, ICW4 needed */
    outb(PIC2, 0x11);
    outb(PIC1 + 1, master_base); /* ICW2 */
    outb(PIC2 + 1, slave_base);
    outb(PIC1 + 1, 0x04); /* ICW3: slave on IRQ2 */
    outb(PIC2 + 1, 0x02);
    outb(PIC1 + 1, 0x01); /* ICW4: 8086 mode */
    outb(PIC2 + 1, 0x01);
}

void pic_set_mask(uint16_t mask) {
    outb(PIC1 + 1, (uint8_t)mask);
    outb(PIC2 + 1, (uint8_t)(mask >> 8));
}

uint16_t pic_get_mask(void) { return (uint16_t)(inb(PIC1 + 1) | (inb(PIC2 + 1) << 8)); }

void pic_eoi(int irq) {
    if (irq >= 8) outb(PIC2, 0x20);
    outb(PIC1, 0x20);
}

uint16_t pic_read_irr(void) {
    outb(PIC1, 0x0A);
    outb(PIC2, 0x0A);
    return (uint16_t)(inb(PIC1) | (inb(PIC2) << 8));
}

uint16_t pic_read_isr(void) {
    outb(PIC1, 0x0B);
    outb(PIC2, 0x0B);
    return (uint16_t)(inb(PIC1) | (inb(PIC2) << 8));
}

void pit_set_periodic(uint16_t divisor) {
    outb(0x43, 0x34); /* channel 0, lo/hi byte, mode 2, binary */
    outb(0x40, (uint8_t)divisor);
    outb(0x40, (uint8_t)(divisor >> 8));
}

/* ------------------------------------------------------------------ multiboot */
struct multiboot_info *boot_info;
const char *boot_args = "";
static char cmdline_copy[256];

static void parse_cmdline(void) {
    if (!(boot_info->flags & 4) || !boot_info->cmdline) return;
    const char *src = (const char *)boot_info->cmdline;
    size_t n = 0;
    while (src[n] && n + 1 < sizeof(cmdline_copy)) {
        cmdline_copy[n] = src[n];
        n++;
    }
    cmdline_copy[n] = 0;
    const char *p = cmdline_copy;
    while (*p == ' ') p++;
    const char *w = p;
    int has_eq = 0;
    while (*w && *w != ' ') has_eq |= *w++ == '=';
    if (!has_eq) p = w;
    while (*p == ' ') p++;
    boot_args = p;
}

uint32_t arg_uint(const char *key, uint32_t def) {
    size_t kl = strlen(key);
    const char *p = boot_args;
    while (*p) {
        while (*p == ' ') p++;
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            uint32_t v = 0;
            const char *q = p + kl + 1;
            if (*q < '0' || *q > '9') return def;
            while (*q >= '0' && *q <= '9') v = v * 10 + (uint32_t)(*q++ - '0');
            return v;
        }
        while (*p && *p != ' ') p++;
    }
    return def;
}

int arg_str(const char *key, char *buf, size_t size) {
    size_t kl = strlen(key);
    const char *p = boot_args;
    while (*p) {
        while (*p == ' ') p++;
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            const char *q = p + kl + 1;
            size_t n = 0;
            while (q[n] && q[n] != ' ' && n + 1 < size) {
                buf[n] = q[n];
                n++;
            }
            if (size) buf[n] = 0;
            return 1;
        }
        while (*p && *p != ' ') p++;
    }
    return 0;
}

/* ------------------------------------------------------------------ paging */
#define POOL_PAGES 64
static uint8_t page_pool[POOL_PAGES][PAGE_SIZE] __attribute__((aligned(4096)));
static int pool_used;

void *page_alloc(void) {
    if (pool_used >= POOL_PAGES) fail("page pool exhausted");
    void *p = page_pool[pool_used++];
    memset(p, 0, PAGE_SIZE);
    return p;
}

uint32_t *pte_of(uint32_t *pd, uint32_t va) {
    uint32_t pde = pd[va >> 22];
    if (!(pde & PTE_P) || (pde & PTE_PS)) return 0;
    return (uint32_t *)(pde & ~0xFFFu) + ((va >> 12) & 0x3FF);
}

void map_page(uint32_t *pd, uint32_t va, uint32_t pa, uint32_t flags) {
    uint32_t *pde = &pd[va >> 22];
    if (!(*pde & PTE_P)) *pde = (uint32_t)page_alloc() | PTE_P | PTE_W | PTE_U;
    uint32_t *pt = (uint32_t *)(*pde & ~0xFFFu);
    pt[(va >> 12) & 0x3FF] = (pa & ~0xFFFu) | flags;
}

uint32_t *pd_identity(uint32_t flags) {
    uint32_t *pd = page_alloc();
    for (uint32_t a = 0; a < 0x400000; a += PAGE_SIZE) map_page(pd, a, a, flags);
    return pd;
}

void paging_enable(uint32_t *pd) {
    write_cr3((uint32_t)pd);
    write_cr0(read_cr0() | CR0_PG | CR0_WP);
}

/* ------------------------------------------------------------------ strings */
/* In their own file: the native build of benches/compare.sh compiles the same routines. */
#include "strings.c"

/* ------------------------------------------------------------------ 64-bit division (libgcc) */
/* In their own file too: the native build of the benchmarks links the same helpers, so that
 * its 64-bit divisions do the guest's work rather than libgcc's. */
#include "div64.c"

/* ------------------------------------------------------------------ entry */
void rt_main(uint32_t magic, struct multiboot_info *mbi) {
    serial_init();
    gdt_init();
    idt_init();
    pic_remap(0x20, 0x28);
    pic_set_mask(0xFFFF);
    if (magic != MB_BOOT_MAGIC) fail("bad multiboot magic %x", magic);
    boot_info = mbi;
    parse_cmdline();
    int r = kmain();
    if (r) fail("%s returned %d", guest_name, r);
    printf("%s: PASS\n", guest_name);
    exit(0);
}
