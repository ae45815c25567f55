//! struct_ops: a `BPF_MAP_TYPE_STRUCT_OPS` map whose value is the kernel's
//! `bpf_struct_ops_<name>`, filled with the object's programs and
//! registered (as a link where the kernel has one).
