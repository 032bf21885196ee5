//! Code that every translation shares, emitted once at the start of the code buffer and
//! never flushed: entering translated code, calling a handler with the guest state in
//! `CpuState`, and the exits back to the run loop.
//!
//! A block reaches it by a 5-byte `call` or `jmp` instead of carrying its own copy: a
//! slow path is `mov r10d, index ; mov r11d, id ; call slow ; jmp back` (22 bytes, where a
//! copy of the stores, the call and the reloads took some 150), and an exit is
//! `mov [eip], next ; mov r10d, id ; mov r8d, site ; jmp chain_exit`. The shared code
//! runs with the block's register conventions (R15 = `&Cpu`, R14 = `&Ctx`, R9 = the
//! budget, R13D = EFLAGS but the arithmetic flags, guest registers in their host homes);
//! the handlers are called one `call` deeper than a block's body, so a handler that says
//! "leave" drops that return address before the shared epilogue.
//!
//! ```text
//!   enter(cpu, ctx, body): save host registers; r15, r14, r9; load guest registers; jmp body
//!   load_regs:      guest registers memory → host; ret
//!   callout:        (registers in memory) call the handler; leave if it says so; ret
//!   store_callout:  guest registers host → memory; then as callout
//!   segment_load:   (r8d = what to load) the fast path of a segment load; if it says
//!                   no, as callout
//!   store_segment_load: guest registers host → memory; then as segment_load
//!   port_in, store_port_in: the same for an IN of a port whose read changes nothing
//!   slow:           store; call the handler; leave or load; ret
//!   slow_flags:     as slow, then the guest flags → host EFLAGS
//!   refill:         (r8d = linear address) store; the soft-TLB refill; if it says no, the
//!                   handler; eax = 0 (refilled) or 1 (handled); ret
//!   chain_exit:     (r10d = id, r8 = site) store; budget gone: return 0; else CHAIN_MISS at site
//!   ret_store:      (r10d = id) store; return 0
//!   ret_end:        (r10d = id, registers in memory) return 0
//!   exit:           (status in RAX) restore host registers; ret
//! ```

use crate::code::{Emit, emit_load_flags, emit_load_registers, emit_store_registers, x64};
use crate::{CHAIN_MISS, Ctx};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler, dynasm};
use std::mem::offset_of;
use std::sync::OnceLock;

/// Where each piece of the shared code starts (offsets from the start of the code
/// buffer, which is where it lives).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shared {
    pub(crate) enter: usize,
    pub(crate) load_regs: usize,
    pub(crate) callout: usize,
    pub(crate) store_callout: usize,
    pub(crate) segment_load: usize,
    pub(crate) store_segment_load: usize,
    pub(crate) port_in: usize,
    pub(crate) store_port_in: usize,
    pub(crate) slow: usize,
    pub(crate) slow_flags: usize,
    pub(crate) refill: usize,
    pub(crate) chain_exit: usize,
    pub(crate) ret_store: usize,
    pub(crate) ret_end: usize,
    pub(crate) exit: usize,
    /// Bytes, rounded up to 64: where the first translation goes.
    pub(crate) len: usize,
}

impl Shared {
    /// The name of the piece that starts at `offset`, for listings.
    pub(crate) fn name_at(&self, offset: usize) -> Option<&'static str> {
        [
            (self.enter, "enter"),
            (self.load_regs, "load_regs"),
            (self.callout, "callout"),
            (self.store_callout, "store_callout"),
            (self.segment_load, "segment_load"),
            (self.store_segment_load, "store_segment_load"),
            (self.port_in, "port_in"),
            (self.store_port_in, "store_port_in"),
            (self.slow, "slow"),
            (self.slow_flags, "slow_flags"),
            (self.refill, "refill"),
            (self.chain_exit, "chain_exit"),
            (self.ret_store, "ret_store"),
            (self.ret_end, "ret_end"),
            (self.exit, "exit"),
        ]
        .into_iter()
        .find_map(|(at, name)| (at == offset).then_some(name))
    }
}

/// The shared code (the same bytes for every cache: it holds no absolute address).
pub(crate) fn shared() -> &'static (Vec<u8>, Shared) {
    static SHARED: OnceLock<(Vec<u8>, Shared)> = OnceLock::new();
    SHARED.get_or_init(emit_shared)
}

/// Calls the handler (R10D = instruction index, R11D = translation id: ESI and EDX are
/// guest registers' homes) with the guest registers in `CpuState`, one `call` deep;
/// leaves through `leave` if it says so.
fn call_handler(ops: &mut VecAssembler<X64Relocation>, leave: dynasmrt::DynamicLabel) {
    x64!(ops
        ; mov esi, r10d
        ; mov edx, r11d
        ; mov QWORD [r14 + offset_of!(Ctx, budget) as i32], r9
        ; mov rdi, r14
        ; sub rsp, 8
        ; call QWORD [r14 + offset_of!(Ctx, callout) as i32]
        ; add rsp, 8
        ; test rax, rax
        ; jnz =>leave
        ; mov r9, QWORD [r14 + offset_of!(Ctx, budget) as i32]
    );
}

fn emit_shared() -> (Vec<u8>, Shared) {
    let mut ops = VecAssembler::<X64Relocation>::new(0);
    let (leave, exit, tail) = (ops.fresh_label(), ops.fresh_label(), ops.fresh_label());
    let at = |ops: &VecAssembler<X64Relocation>| ops.offset().0;

    let enter = at(&ops);
    x64!(ops
        ; push rbp
        ; push rbx
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; sub rsp, 8
        ; mov r15, rdi
        ; mov r14, rsi
        ; mov r9, QWORD [r14 + offset_of!(Ctx, budget) as i32]
        ; mov r11, rdx // the body (RDX is guest EDX's home)
    );
    emit_load_registers(&mut ops);
    x64!(ops; jmp r11);

    let load_regs = at(&ops);
    emit_load_registers(&mut ops);
    x64!(ops; ret);

    let callout = at(&ops);
    call_handler(&mut ops, leave);
    x64!(ops; ret);

    let store_callout = at(&ops);
    emit_store_registers(&mut ops);
    call_handler(&mut ops, leave);
    x64!(ops; ret);

    // The fast paths of a segment load and of a pure IN (`Ctx::segment_load`,
    // `Ctx::port_in`) and the soft-TLB refill of a rewritten access's slow path
    // (`Ctx::refill`), with the guest registers in `CpuState`: R9 (the budget, also stored
    // for the callee to see), R10 and R11 (the callout's arguments) kept across the call,
    // which also keeps the stack aligned for it. If the function returns 0, that is all
    // (EAX = 0); else the instruction's handler runs (EAX = 1: the refill's caller tells
    // the two apart).
    let fast = |ops: &mut VecAssembler<X64Relocation>, function: i32| {
        let store = at(ops);
        emit_store_registers(ops);
        let plain = at(ops);
        x64!(ops
            ; mov QWORD [r14 + offset_of!(Ctx, budget) as i32], r9
            ; push r9
            ; push r10
            ; push r11
            ; mov rdi, r14
            ; mov esi, r8d
            ; call QWORD [r14 + function]
            ; pop r11
            ; pop r10
            ; pop r9
            ; test rax, rax
            ; jnz >full
            ; ret
            ; full:
        );
        call_handler(ops, leave);
        x64!(ops
            ; mov eax, 1
            ; ret
        );
        (plain, store)
    };
    let (segment_load, store_segment_load) = fast(&mut ops, offset_of!(Ctx, segment_load) as i32);
    let (port_in, store_port_in) = fast(&mut ops, offset_of!(Ctx, port_in) as i32);

    let slow = at(&ops);
    emit_store_registers(&mut ops);
    call_handler(&mut ops, leave);
    emit_load_registers(&mut ops);
    x64!(ops; ret);

    let slow_flags = at(&ops);
    emit_store_registers(&mut ops);
    call_handler(&mut ops, leave);
    emit_load_registers(&mut ops);
    emit_load_flags(&mut ops);
    x64!(ops; ret);

    // A rewritten access's slow path (R8D = its linear address): the soft-TLB refill, and
    // if it cannot make the check hit, the handler.
    let (_, refill) = fast(&mut ops, offset_of!(Ctx, refill) as i32);

    // A handler said "leave" (RAX = its status): drop the return address into the block.
    x64!(ops
        ; =>leave
        ; add rsp, 8
        ; jmp =>exit
    );

    let chain_exit = at(&ops);
    emit_store_registers(&mut ops);
    x64!(ops
        ; mov QWORD [r14 + offset_of!(Ctx, budget) as i32], r9
        ; test r9, r9
        ; jle >out_of_budget
        ; mov QWORD [r14 + offset_of!(Ctx, chain_site) as i32], r8
        ; mov eax, CHAIN_MISS as i32
        ; jmp =>tail
        ; out_of_budget:
        ; xor eax, eax
        ; jmp =>tail
    );

    let ret_store = at(&ops);
    emit_store_registers(&mut ops);
    let ret_end = at(&ops);
    x64!(ops
        ; mov QWORD [r14 + offset_of!(Ctx, budget) as i32], r9
        ; xor eax, eax
        ; =>tail
        ; mov DWORD [r14 + offset_of!(Ctx, last) as i32], r10d
    );
    let exit_at = at(&ops);
    x64!(ops
        ; =>exit
        ; add rsp, 8
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbx
        ; pop rbp
        ; ret
    );
    let code = ops.finalize().expect("the shared code's labels are all defined");
    let len = code.len().next_multiple_of(64);
    let shared = Shared {
        enter,
        load_regs,
        callout,
        store_callout,
        segment_load,
        store_segment_load,
        port_in,
        store_port_in,
        slow,
        slow_flags,
        refill,
        chain_exit,
        ret_store,
        ret_end,
        exit: exit_at,
        len,
    };
    (code, shared)
}
