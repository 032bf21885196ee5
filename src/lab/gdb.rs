//! Lab 9's gdb script: real gdb, in batch mode, against popek's gdb stub serving `hello`
//! from inside the grader (the machine the answers come from).

use super::run::Spec;
use anyhow::{Context, Result};
use popek::machine::StopReason;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs `script` in gdb against `hello` waiting at its first instruction: gdb's output
/// (stdout, then stderr). The grader's own failures are errors; gdb's are in the output.
pub fn run_script(script: &Path) -> std::result::Result<String, String> {
    run(script).map_err(|e| format!("{e:#}"))
}

fn run(script: &Path) -> Result<String> {
    let spec = Spec::new("hello");
    let work = std::env::temp_dir().join(format!("popek-lab9-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let elf = work.join("hello.elf");
    std::fs::write(&elf, spec.image()?).with_context(|| format!("cannot write {}", elf.display()))?;
    let server = popek::gdb::GdbServer::bind(0).context("cannot listen for gdb")?;
    let gdb = Command::new("gdb")
        .args(["-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off"])
        .arg("-ex")
        .arg(format!("file {}", elf.display()))
        .arg("-ex")
        .arg(format!("target remote 127.0.0.1:{}", server.port()))
        .arg("-x")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run gdb (lab 9's script needs it: apt-get install gdb)")?;
    // The stub waits for gdb; if gdb ends without killing the guest (or never connects),
    // its end is the stub's end too.
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let waiter = std::thread::spawn(move || {
        let out = gdb.wait_with_output();
        flag.store(true, Ordering::Relaxed);
        out
    });
    let mut d = spec.debugger()?;
    let opts = popek::gdb::Options {
        wait: true,
        timeout: Some(Duration::from_secs(60)),
        interrupt: Some(done),
        exit_status: status,
    };
    let stub = popek::gdb::run(&mut d, &server, &opts, &mut |_| {});
    let out = waiter.join().map_err(|_| anyhow::anyhow!("the gdb waiter panicked"))?.context("gdb")?;
    let _ = std::fs::remove_dir_all(&work);
    stub.context("the gdb stub")?;
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The exit status gdb is told about (as `popek run --gdb` reports it).
fn status(stop: &StopReason) -> u8 {
    match stop {
        StopReason::Exit(s) => u8::try_from(*s & 0xff).unwrap_or_default(),
        _ => 0,
    }
}
