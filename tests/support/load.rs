//! Loading objects through the library for the kernel tests: a collection
//! with its tail-call slots filled, a program's return value on a frame,
//! and the hex and little-endian decoding of what `--json` and maps show.

use super::obj;
use rawbpf::load::{Collection, LoadOptions, TailSlot};
use rawbpf::{LoadError, ObjectSpec};

pub fn load(name: &str, tails: &[&str]) -> Result<Collection, LoadError> {
    let spec = ObjectSpec::from_file(obj(name)).unwrap();
    let mut opts = LoadOptions::for_file(std::path::Path::new(name));
    opts.tails = tails
        .iter()
        .map(|t| {
            let (map, rest) = t.split_once(':').unwrap();
            let (key, prog) = rest.split_once('=').unwrap();
            TailSlot {
                map: map.into(),
                key: key.parse().unwrap(),
                program: (!prog.is_empty()).then(|| prog.into()),
            }
        })
        .collect();
    Collection::load(&spec, &opts)
}

pub fn retval(c: &Collection, prog: &str, frame: &[u8]) -> u32 {
    c.program(prog).unwrap().test_run(frame, 1).unwrap().retval
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn u64_le(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap())
}
