//! `btf`: bytes → `Btf::parse` → every type look-up → `to_bytes` → the same BTF.
//! Under AFL it runs in persistent mode; with file arguments it replays them;
//! `btf --seeds DIR OBJ...` writes the objects' BTF to DIR as seeds.

#[global_allocator]
static ALLOC: rawbpf_fuzz::BoundedAlloc = rawbpf_fuzz::BoundedAlloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--seeds") && args.len() >= 2 {
        return rawbpf_fuzz::btf_seeds(&args[2..], &args[1]);
    }
    if !args.is_empty() {
        return rawbpf_fuzz::replay(rawbpf_fuzz::btf, &args);
    }
    afl::fuzz!(|data: &[u8]| rawbpf_fuzz::btf(data));
}
