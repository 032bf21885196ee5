/* Constants shared by the runtime's C and assembly sources. */
#ifndef POPEK_ASM_H
#define POPEK_ASM_H

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* page-align modules, want memory info */
#define MB_BOOT_MAGIC 0x2BADB002

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1B
#define SEL_UDATA 0x23
#define SEL_TSS 0x28

#endif
