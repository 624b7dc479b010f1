//! Compiles the eBPF program behind the `http-traffic` capability with clang
//! (`-target bpf`). Without clang the daemon still builds: the capability then
//! answers `unavailable` and says the program was not built.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "bpf/http_traffic.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("http_traffic.bpf.o");
    let candidates: Vec<String> = match env::var("CLANG") {
        Ok(clang) => vec![clang],
        Err(_) => vec!["clang-19".into(), "clang".into()],
    };
    let mut failures = Vec::new();
    for clang in &candidates {
        let result = Command::new(clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror", "-c", SOURCE, "-o"])
            .arg(&out)
            .output();
        match result {
            Ok(output) if output.status.success() => return,
            // Our program does not compile: a bug to fix, not a missing tool.
            Ok(output) => panic!("{clang} failed on {SOURCE}:\n{}", String::from_utf8_lossy(&output.stderr)),
            Err(err) => failures.push(format!("{clang}: {err}")),
        }
    }
    // An empty object: the daemon reports why at run time.
    std::fs::write(&out, b"").expect("writing the placeholder eBPF object");
    let why = failures.join("; ");
    println!("cargo:warning=the http-traffic eBPF program was not built ({why}); install clang-19 (make setup)");
}
