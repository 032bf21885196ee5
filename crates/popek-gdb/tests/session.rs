//! The stub in process: a client thread speaks the remote protocol by hand to
//! [`popek_gdb::run`] on a `hello` machine (no gdb, no Python).

use popek_devices::sink::NullSink;
use popek_gdb::{GdbServer, Notice, Options, Outcome};
use popek_machine::debug::Debugger;
use popek_machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A client that sends packets and reads replies (skipping acknowledgements).
struct Client(TcpStream);

impl Client {
    fn ask(&mut self, cmd: &str) -> String {
        let sum = cmd.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        self.0.write_all(format!("${cmd}#{sum:02x}").as_bytes()).expect("send");
        let mut reply = Vec::new();
        let mut byte = [0u8];
        loop {
            self.0.read_exact(&mut byte).expect("a reply");
            match byte[0] {
                b'+' if reply.is_empty() => {}
                b'#' => break,
                b => reply.push(b),
            }
        }
        self.0.read_exact(&mut [0u8; 2]).expect("checksum");
        String::from_utf8(reply).expect("ASCII").trim_start_matches('$').to_string()
    }
}

fn le32(hex: &str) -> u32 {
    let b: Vec<u8> = (0..4).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")).collect();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[test]
fn software_breakpoint_register_write_and_detach() {
    let g = popek_guests::find("hello").expect("hello");
    let kmain = popek_machine::symbols::Symbols::from_elf(g.elf).lookup("kmain").expect("kmain");
    let config = MachineConfig {
        cmdline: g.cmdline.to_string(),
        serial: Box::new(NullSink),
        engine: EngineKind::Interp,
        ..MachineConfig::default()
    };
    let machine = Machine::boot(config, g.elf).expect("boots");
    let mut d = Debugger::attach(machine, RunConfig::default());
    let server = GdbServer::bind(0).expect("a port");
    let port = server.port();
    let client = std::thread::spawn(move || {
        let mut c = Client(TcpStream::connect(("127.0.0.1", port)).expect("connects"));
        c.0.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        assert_eq!(c.ask("?"), "T05thread:01;");
        assert_eq!(c.ask(&format!("Z0,{kmain:x},1")), "OK");
        assert_eq!(c.ask("c"), "T05thread:01;swbreak:;");
        assert_eq!(le32(&c.ask("p8")), kmain);
        // A continue from a breakpoint's own address stops there again at once (QEMU).
        assert_eq!(c.ask("c"), "T05thread:01;swbreak:;");
        assert_eq!(le32(&c.ask("p8")), kmain);
        // The bytes at kmain, as the guest's memory holds them.
        assert_eq!(c.ask(&format!("m{kmain:x},3")), "83ec2c", "sub esp,2Ch");
        // EAX written, read back in the `g` block (its first register), and restored.
        let eax = c.ask("p0");
        assert_eq!(c.ask("P0=78563412"), "OK");
        assert_eq!(le32(&c.ask("g")), 0x1234_5678);
        assert_eq!(c.ask(&format!("P0={eax}")), "OK");
        // One step (`T05` as QEMU sends it, not `S05`) goes past the breakpoint.
        assert_eq!(c.ask("s"), "T05thread:01;");
        assert_eq!(le32(&c.ask("p8")), kmain + 3);
        assert_eq!(c.ask(&format!("z0,{kmain:x},1")), "OK");
        assert_eq!(c.ask("D"), "OK");
    });
    let opts = Options { wait: true, timeout: Some(Duration::from_secs(60)), interrupt: None, exit_status: |_| 0 };
    let mut notices = Vec::new();
    let outcome = popek_gdb::run(&mut d, &server, &opts, &mut |n| notices.push(n)).expect("serves");
    client.join().expect("the client's checks");
    // Detached, the guest ran on to its end.
    assert_eq!(outcome, Outcome::Stopped(StopReason::Exit(1)));
    assert_eq!(notices, [Notice::Waiting, Notice::Connected, Notice::Detached(None)]);
}
