/* hello: the smallest guest. Prints a greeting and the Multiboot information it received. */
#include "rt.h"

const char guest_name[] = "hello";

int kmain(void) {
    printf("Hello from a popek guest!\n");
    printf("multiboot magic: ok\n");
    if (boot_info->flags & 1)
        printf("mem_lower: %u KiB\nmem_upper: %u KiB\n", boot_info->mem_lower, boot_info->mem_upper);
    else
        printf("mem_lower/mem_upper: not provided\n");
    printf("cmdline: \"%s\"\n", boot_args);
    printf("printf check: %d %u %x %08x %s %c %p\n", -42, 42u, 0xbeefu, 0xabcu, "str", 'c', (void *)0x1234);
    printf("printf widths: [%5d] [%-5d] [%05d] [%-6s] [%6s] [%x]\n", -42, 42, -42, "ab", "ab", 0xFFFFFFFFu);
    return 0;
}
