//! Instruction classes and fields, as the kernel's `BPF_CLASS()` and
//! `BPF_SRC()` read an opcode (`code & 7`, `code & 8`): what CO-RE patching
//! and the reachability pass decode.

pub(crate) const BPF_LD: u8 = 0x00;
pub(crate) const BPF_LDX: u8 = 0x01;
pub(crate) const BPF_ST: u8 = 0x02;
pub(crate) const BPF_STX: u8 = 0x03;
pub(crate) const BPF_ALU: u8 = 0x04;
pub(crate) const BPF_JMP: u8 = 0x05;
pub(crate) const BPF_JMP32: u8 = 0x06;
pub(crate) const BPF_ALU64: u8 = 0x07;
pub(crate) const BPF_X: u8 = 0x08;
