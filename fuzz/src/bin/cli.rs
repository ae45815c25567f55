//! `cli`: text → the rawbpf command-line parser (NUL-separated arguments)
//! and the library's value parsers (`--tail`, swap's argument).
//! Under AFL it runs in persistent mode; with file arguments it replays them.

#[global_allocator]
static ALLOC: rawbpf_fuzz::BoundedAlloc = rawbpf_fuzz::BoundedAlloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        return rawbpf_fuzz::replay(rawbpf_fuzz::cli, &args);
    }
    afl::fuzz!(|data: &[u8]| rawbpf_fuzz::cli(data));
}
