//! `parse`: bytes → `ObjectSpec::parse` → link, patch, encode, check.
//! Under AFL (built by `cargo afl build`) it runs in persistent mode; run
//! directly with file arguments it replays them (`cargo run --bin parse -- FILE`).

#[global_allocator]
static ALLOC: rawbpf_fuzz::BoundedAlloc = rawbpf_fuzz::BoundedAlloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        return rawbpf_fuzz::replay(rawbpf_fuzz::parse, &args);
    }
    afl::fuzz!(|data: &[u8]| rawbpf_fuzz::parse(data));
}
