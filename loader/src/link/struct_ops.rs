//! struct_ops: a `BPF_MAP_TYPE_STRUCT_OPS` map whose value is the kernel's
//! `bpf_struct_ops_<name>`, filled with the object's programs and
//! registered (as a link where the kernel has one).
//!
//! Not done yet: no struct_ops program reaches this module, because the
//! load layer refuses them (`load::program`: "a struct_ops program (it is
//! loaded as a member of a struct_ops map)"), and [`attach_program`]
//! answers [`LinkError::Unsupported`] for the type. What is missing, in
//! the order it has to happen (libbpf's `bpf_object__init_struct_ops`,
//! `bpf_map__init_kern_struct_ops` and `bpf_map__attach_struct_ops`):
//!
//! 1. **The object model** (`obj/`): the `.struct_ops` and
//!    `.struct_ops.link` data sections. Each variable in them (its BTF
//!    `DATASEC` entry) is one struct_ops map, typed by a local struct
//!    (`struct tcp_congestion_ops`); its relocations (`.rel.struct_ops*`)
//!    name the program each function-pointer member points to, and its
//!    bytes hold the other members' values (`.name`, flags).
//! 2. **Kernel BTF** (`kernel_btf/`): the kernel's struct of that name and
//!    its wrapper `bpf_struct_ops_<name>` (whose `data` member is the
//!    struct; from 6.9 possibly in a module's BTF).
//! 3. **Loading the programs** (`load/`): each `struct_ops/NAME` program
//!    with `attach_btf_id` = the kernel struct's id and
//!    `expected_attach_type` = the index of the member it fills; a program
//!    no map member points to is not loaded.
//! 4. **Creating the map**: `BPF_MAP_CREATE` with type 26, key size 4,
//!    value size = sizeof(`bpf_struct_ops_<name>`), one entry, the
//!    object's BTF and `btf_vmlinux_value_type_id` = the wrapper's id
//!    (`BPF_F_VTYPE_BTF_OBJ_FD` + `value_type_btf_obj_fd` for a module's),
//!    and `BPF_F_LINK` for `.struct_ops.link` maps. `sys::MapCreate` has
//!    no field for these two yet.
//! 5. **The value**: the wrapper's bytes, with the local struct's members
//!    copied by name into `data` at the kernel's offsets (a member the
//!    kernel lacks must be zero), and each function pointer replaced by
//!    the program's fd.
//! 6. **Registering** (here): `BPF_MAP_UPDATE_ELEM` at key 0 registers it
//!    (the kernel keeps it until the map is deleted: detach is a delete of
//!    key 0); with `BPF_F_LINK`, the update only prepares it and
//!    `BPF_LINK_CREATE` with the map fd (attach type `BPF_STRUCT_OPS`, 44)
//!    registers it as a link (6.4+), an `Attachment::Bpf` like the others.
//!
//! [`attach_program`]: super::attach_program
//! [`LinkError::Unsupported`]: super::LinkError::Unsupported
