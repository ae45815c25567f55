//! BTF sanitization: the object's BTF rewritten so that a kernel whose BTF
//! loader lacks some kinds or flags accepts it (libbpf's
//! `bpf_object__sanitize_btf`, same rewrites). Every type keeps its id — a
//! rewrite happens in place, and the one type that may be added (the
//! ENUM64 placeholder) goes at the end — so map key/value type ids,
//! `.BTF.ext` func_info and line_info stay right.
//!
//! What the kernel lacks is probed by the load layer with tiny BTF blobs
//! (never guessed from the kernel version); this module only rewrites.

use super::{Btf, BtfEnum, BtfKind, BtfMember, BtfType, BtfTypeData};

/// What the running kernel's BTF loader does not accept. `Default`: it
/// accepts everything (nothing to rewrite).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BtfLacks {
    /// `FUNC` and `FUNC_PROTO` (5.0): FUNC becomes TYPEDEF, FUNC_PROTO ENUM.
    pub func: bool,
    /// `FUNC` with global linkage (5.6): every FUNC becomes static.
    pub global_func: bool,
    /// `VAR` and `DATASEC` (5.2): VAR becomes a one-byte INT, DATASEC a STRUCT.
    pub datasec: bool,
    /// A DATASEC named `?...` (6.5?): the `?` becomes `_`.
    pub qmark_datasec: bool,
    /// `FLOAT` (5.13): an anonymous STRUCT of the same size, no members.
    pub float: bool,
    /// `DECL_TAG` (5.16), on a type, member, variable or function parameter:
    /// a one-byte INT (named by the tag, as libbpf).
    pub decl_tag: bool,
    /// `TYPE_TAG` (5.17): an anonymous CONST.
    pub type_tag: bool,
    /// `ENUM64` (6.0): a UNION of the same size whose members (the
    /// enumerators) are all a one-byte INT `enum64_placeholder` at offset 0.
    pub enum64: bool,
    /// The ENUM kind flag that marks a signed enum (6.0): cleared.
    pub enum_signed: bool,
}

impl BtfLacks {
    /// Everything (for tests that force every rewrite).
    pub const ALL: BtfLacks = BtfLacks {
        func: true,
        global_func: true,
        datasec: true,
        qmark_datasec: true,
        float: true,
        decl_tag: true,
        type_tag: true,
        enum64: true,
        enum_signed: true,
    };

    /// Whether anything needs rewriting.
    pub fn any(&self) -> bool {
        *self != BtfLacks::default()
    }

    /// The features lacked, by name ("ENUM64", "signed ENUM", ...).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.func, "FUNC"),
            (self.global_func, "global FUNC"),
            (self.datasec, "VAR/DATASEC"),
            (self.qmark_datasec, "DATASEC named ?..."),
            (self.float, "FLOAT"),
            (self.decl_tag, "DECL_TAG"),
            (self.type_tag, "TYPE_TAG"),
            (self.enum64, "ENUM64"),
            (self.enum_signed, "signed ENUM"),
        ]
        .into_iter()
        .filter_map(|(lacks, name)| lacks.then_some(name))
        .collect()
    }

    /// Either's lacks (a probed kernel's and a test's pretended ones).
    pub fn union(self, o: BtfLacks) -> BtfLacks {
        BtfLacks {
            func: self.func || o.func,
            global_func: self.global_func || o.global_func,
            datasec: self.datasec || o.datasec,
            qmark_datasec: self.qmark_datasec || o.qmark_datasec,
            float: self.float || o.float,
            decl_tag: self.decl_tag || o.decl_tag,
            type_tag: self.type_tag || o.type_tag,
            enum64: self.enum64 || o.enum64,
            enum_signed: self.enum_signed || o.enum_signed,
        }
    }
}

/// A one-byte unsigned INT record (what VAR and DECL_TAG become, and the
/// ENUM64 placeholder): 1 is the safe size, as libbpf notes — a larger one
/// could overrun the variable it stands for.
fn one_byte_int(name_off: u32) -> BtfType {
    BtfType {
        name_off,
        kind: BtfKind::Int,
        kind_flag: false,
        vlen_extra: 0,
        size_or_type: 1,
        data: BtfTypeData::Int {
            encoding: 0,
            offset: 0,
            bits: 8,
        },
    }
}

/// `name` as a C identifier: every character that cannot be in one
/// (`.`, `?`, ...) becomes `_` (a STRUCT's name must be one).
fn identifier(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A copy of `btf` that a kernel lacking `lacks` accepts, with how many
/// types were rewritten. Type ids do not change (one type may be appended:
/// the ENUM64 placeholder).
pub fn sanitize(btf: &Btf, lacks: &BtfLacks) -> (Btf, usize) {
    let mut out = btf.clone();
    if !lacks.any() {
        return (out, 0);
    }
    // A DECL_TAG may point at a VAR or a FUNC's parameter, which a kernel
    // without those kinds does not have after rewriting (and such a kernel
    // predates DECL_TAG anyway).
    let lacks = &BtfLacks {
        decl_tag: lacks.decl_tag || lacks.datasec || lacks.func,
        ..*lacks
    };
    let mut placeholder = None;
    let mut changed = 0;
    for id in 1..btf.len() {
        let t = &btf.types[id as usize];
        let new = match rewrite(btf, t, lacks, &mut out, &mut placeholder) {
            Some(new) => new,
            None => continue,
        };
        out.types[id as usize] = new;
        changed += 1;
    }
    (out, changed)
}

/// The rewritten form of `t`, or `None` to keep it. New strings and the
/// ENUM64 placeholder go into `out`.
fn rewrite(
    btf: &Btf,
    t: &BtfType,
    lacks: &BtfLacks,
    out: &mut Btf,
    placeholder: &mut Option<u32>,
) -> Option<BtfType> {
    use BtfKind as K;
    let mut new = t.clone();
    match t.kind {
        K::Var if lacks.datasec => new = one_byte_int(t.name_off),
        K::DeclTag if lacks.decl_tag => new = one_byte_int(t.name_off),
        K::Datasec if lacks.datasec => {
            let BtfTypeData::Datasec(vars) = &t.data else {
                return None;
            };
            let name = identifier(btf.string(t.name_off).unwrap_or(""));
            new.name_off = out.add_string(&name);
            new.kind = K::Struct;
            new.kind_flag = false;
            new.data = BtfTypeData::Members(
                vars.iter()
                    .map(|v| BtfMember {
                        // The variable's name is the member's.
                        name_off: btf.type_by_id(v.type_id).map_or(0, |vt| vt.name_off),
                        type_id: v.type_id,
                        offset: v.offset.wrapping_mul(8),
                    })
                    .collect(),
            );
        }
        K::Datasec if lacks.qmark_datasec => {
            let name = btf.string(t.name_off).unwrap_or("");
            let rest = name.strip_prefix('?')?;
            new.name_off = out.add_string(&format!("_{rest}"));
        }
        K::FuncProto if lacks.func => {
            let BtfTypeData::Params(params) = &t.data else {
                return None;
            };
            new.kind = K::Enum;
            new.kind_flag = false;
            new.size_or_type = 4; // the kernel's size for an ENUM
            new.data = BtfTypeData::Enum(
                params
                    .iter()
                    .map(|p| BtfEnum {
                        name_off: p.name_off,
                        val: p.type_id as i32,
                    })
                    .collect(),
            );
        }
        K::Func if lacks.func => {
            new.kind = K::Typedef;
            new.vlen_extra = 0;
        }
        K::Func if lacks.global_func && t.vlen_extra != 0 => new.vlen_extra = 0,
        K::Float if lacks.float => {
            new.name_off = 0; // "float" is not a struct name C accepts
            new.kind = K::Struct;
            new.data = BtfTypeData::Members(Vec::new());
        }
        K::TypeTag if lacks.type_tag => {
            new.name_off = 0;
            new.kind = K::Const;
        }
        K::Enum if lacks.enum_signed && t.kind_flag => new.kind_flag = false,
        K::Enum64 if lacks.enum64 => {
            let BtfTypeData::Enum64(values) = &t.data else {
                return None;
            };
            let int = *placeholder.get_or_insert_with(|| {
                let name = out.add_string("enum64_placeholder");
                out.add_type(one_byte_int(name))
            });
            new.kind = K::Union;
            new.kind_flag = false;
            new.data = BtfTypeData::Members(
                values
                    .iter()
                    .map(|v| BtfMember {
                        name_off: v.name_off,
                        type_id: int,
                        offset: 0,
                    })
                    .collect(),
            );
        }
        _ => return None,
    }
    Some(new)
}

#[cfg(test)]
mod tests {
    use super::super::tests::Builder;
    use super::*;

    const INT: u32 = (1 << 24) | 32; // signed, 32 bits

    fn lacks(f: impl FnOnce(&mut BtfLacks)) -> BtfLacks {
        let mut l = BtfLacks::default();
        f(&mut l);
        l
    }

    /// Sanitizes and checks the result still parses (the same validation
    /// as any object's BTF) and keeps every id.
    fn run(b: &Builder, l: BtfLacks) -> (Btf, Btf) {
        let btf = Btf::parse(&b.build()).unwrap();
        let (out, _) = sanitize(&btf, &l);
        let again = Btf::parse(&out.to_bytes()).unwrap();
        assert_eq!(again, out, "encodes and parses back");
        assert!(out.len() >= btf.len());
        (btf, out)
    }

    fn name(btf: &Btf, id: u32) -> &str {
        btf.type_name(id).unwrap()
    }

    #[test]
    fn nothing_lacked_nothing_changes() {
        let mut b = Builder::new();
        let n = b.s("float");
        b.t(n, BtfKind::Float, 0, 8, &[]);
        let (btf, out) = run(&b, BtfLacks::default());
        assert_eq!(btf, out);
    }

    #[test]
    fn signed_enum_flag_cleared() {
        let mut b = Builder::new();
        let (e, a) = (b.s("e"), b.s("A"));
        b.t(e, BtfKind::Enum, 1 | (1 << 31), 4, &[a, (-1i32) as u32]);
        let (btf, out) = run(&b, lacks(|l| l.enum_signed = true));
        assert!(btf.types[1].kind_flag);
        let t = &out.types[1];
        assert_eq!(
            (t.kind, t.kind_flag, name(&out, 1)),
            (BtfKind::Enum, false, "e")
        );
        assert_eq!(t.data, btf.types[1].data, "values kept");
        // Lacking only ENUM64 leaves a signed ENUM alone.
        let (_, out) = run(&b, lacks(|l| l.enum64 = true));
        assert!(out.types[1].kind_flag);
    }

    #[test]
    fn enum64_becomes_union_of_placeholder_ints() {
        let mut b = Builder::new();
        let (e, a, c) = (b.s("big"), b.s("A"), b.s("C"));
        b.t(e, BtfKind::Enum64, 2 | (1 << 31), 8, &[a, 1, 2, c, 0, 1]);
        let (btf, out) = run(&b, lacks(|l| l.enum64 = true));
        assert_eq!(out.len(), btf.len() + 1, "one placeholder appended");
        let u = &out.types[1];
        assert_eq!(
            (u.kind, u.kind_flag, u.size_or_type),
            (BtfKind::Union, false, 8)
        );
        assert_eq!(name(&out, 1), "big");
        let BtfTypeData::Members(m) = &u.data else {
            panic!("{u:?}")
        };
        assert_eq!(m.len(), 2);
        assert!(m.iter().all(|m| m.type_id == 2 && m.offset == 0));
        assert_eq!(out.string(m[1].name_off).unwrap(), "C");
        let p = &out.types[2];
        assert_eq!((p.kind, p.size_or_type), (BtfKind::Int, 1));
        assert_eq!(name(&out, 2), "enum64_placeholder");
    }

    #[test]
    fn one_placeholder_for_all_enum64s() {
        let mut b = Builder::new();
        let (e, a) = (b.s("e"), b.s("A"));
        b.t(e, BtfKind::Enum64, 1, 8, &[a, 1, 2]);
        b.t(0, BtfKind::Enum64, 1, 4, &[a, 3, 0]);
        let (btf, out) = run(&b, lacks(|l| l.enum64 = true));
        assert_eq!(out.len(), btf.len() + 1);
        assert_eq!(out.types[2].size_or_type, 4, "size kept");
    }

    #[test]
    fn float_becomes_anonymous_empty_struct() {
        let mut b = Builder::new();
        let n = b.s("double");
        b.t(n, BtfKind::Float, 0, 8, &[]);
        let (_, out) = run(&b, lacks(|l| l.float = true));
        let t = &out.types[1];
        assert_eq!(
            (t.kind, t.name_off, t.size_or_type),
            (BtfKind::Struct, 0, 8)
        );
        assert_eq!(t.data, BtfTypeData::Members(vec![]));
    }

    #[test]
    fn decl_tags_become_one_byte_ints() {
        let mut b = Builder::new();
        let (int, x, a, f, tag) = (b.s("int"), b.s("x"), b.s("a"), b.s("f"), b.s("user"));
        b.t(int, BtfKind::Int, 0, 4, &[INT]); // 1
        b.t(x, BtfKind::Var, 0, 1, &[1]); // 2
        b.t(tag, BtfKind::DeclTag, 0, 2, &[u32::MAX]); // 3: on the variable
        b.t(0, BtfKind::FuncProto, 1, 1, &[a, 1]); // 4
        b.t(f, BtfKind::Func, 1, 4, &[]); // 5
        b.t(tag, BtfKind::DeclTag, 0, 5, &[0]); // 6: on parameter 0
        let (_, out) = run(&b, lacks(|l| l.decl_tag = true));
        for id in [3, 6] {
            let t = &out.types[id];
            assert_eq!((t.kind, t.size_or_type), (BtfKind::Int, 1), "[{id}]");
            assert_eq!(name(&out, id as u32), "user");
        }
        assert_eq!(out.types[2].kind, BtfKind::Var, "the rest kept");
    }

    #[test]
    fn type_tag_becomes_anonymous_const() {
        let mut b = Builder::new();
        let (int, tag) = (b.s("int"), b.s("percpu"));
        b.t(int, BtfKind::Int, 0, 4, &[INT]);
        b.t(tag, BtfKind::TypeTag, 0, 1, &[]);
        b.t(0, BtfKind::Ptr, 0, 2, &[]);
        let (_, out) = run(&b, lacks(|l| l.type_tag = true));
        let t = &out.types[2];
        assert_eq!((t.kind, t.name_off, t.size_or_type), (BtfKind::Const, 0, 1));
        assert_eq!(
            out.types[3].size_or_type, 2,
            "the pointer still points at it"
        );
    }

    fn func_btf() -> Builder {
        let mut b = Builder::new();
        let (int, a, f, g) = (b.s("int"), b.s("a"), b.s("f"), b.s("g"));
        b.t(int, BtfKind::Int, 0, 4, &[INT]); // 1
        b.t(0, BtfKind::FuncProto, 1, 1, &[a, 1]); // 2
        b.t(f, BtfKind::Func, 1, 2, &[]); // 3: global
        b.t(g, BtfKind::Func, 0, 2, &[]); // 4: static
        b
    }

    #[test]
    fn global_func_becomes_static() {
        let (_, out) = run(&func_btf(), lacks(|l| l.global_func = true));
        assert_eq!(out.types[3].kind, BtfKind::Func);
        assert_eq!(out.types[3].func_linkage(), 0);
        assert_eq!(out.types[3].size_or_type, 2);
        assert_eq!(out.types[2].kind, BtfKind::FuncProto);
    }

    #[test]
    fn no_func_kinds_becomes_typedef_and_enum() {
        let (_, out) = run(&func_btf(), lacks(|l| l.func = true));
        for id in [3, 4] {
            let t = &out.types[id];
            assert_eq!(
                (t.kind, t.size_or_type, t.vlen_extra),
                (BtfKind::Typedef, 2, 0)
            );
        }
        let p = &out.types[2];
        assert_eq!((p.kind, p.size_or_type), (BtfKind::Enum, 4));
        let BtfTypeData::Enum(v) = &p.data else {
            panic!("{p:?}")
        };
        assert_eq!(v.len(), 1);
        assert_eq!((out.string(v[0].name_off).unwrap(), v[0].val), ("a", 1));
    }

    fn datasec_btf(section: &str) -> Builder {
        let mut b = Builder::new();
        let (int, x, y, d) = (b.s("int"), b.s("x"), b.s("y"), b.s(section));
        b.t(int, BtfKind::Int, 0, 4, &[INT]); // 1
        b.t(x, BtfKind::Var, 0, 1, &[1]); // 2
        b.t(y, BtfKind::Var, 0, 1, &[1]); // 3
        b.t(d, BtfKind::Datasec, 2, 8, &[2, 0, 4, 3, 4, 4]); // 4
        b
    }

    #[test]
    fn var_and_datasec_become_int_and_struct() {
        let (_, out) = run(&datasec_btf("?.data.cfg"), lacks(|l| l.datasec = true));
        assert_eq!(out.types[2].kind, BtfKind::Int);
        assert_eq!(name(&out, 2), "x");
        let s = &out.types[4];
        assert_eq!((s.kind, s.size_or_type), (BtfKind::Struct, 8));
        assert_eq!(name(&out, 4), "__data_cfg");
        let BtfTypeData::Members(m) = &s.data else {
            panic!("{s:?}")
        };
        let got: Vec<_> = m
            .iter()
            .map(|m| (out.string(m.name_off).unwrap(), m.type_id, m.offset))
            .collect();
        assert_eq!(got, [("x", 2, 0), ("y", 3, 32)]);
    }

    /// A DECL_TAG on a VAR or a FUNC's parameter would point at an INT or a
    /// TYPEDEF once those are rewritten: it goes too.
    #[test]
    fn decl_tags_go_with_var_and_func() {
        let mut b = func_btf();
        let (x, tag) = (b.s("x"), b.s("t"));
        b.t(x, BtfKind::Var, 0, 1, &[1]); // 5
        b.t(tag, BtfKind::DeclTag, 0, 5, &[u32::MAX]); // 6
        b.t(tag, BtfKind::DeclTag, 0, 3, &[0]); // 7
        for l in [lacks(|l| l.datasec = true), lacks(|l| l.func = true)] {
            let (_, out) = run(&b, l);
            assert_eq!(out.types[6].kind, BtfKind::Int, "{l:?}");
            assert_eq!(out.types[7].kind, BtfKind::Int, "{l:?}");
        }
    }

    #[test]
    fn qmark_datasec_renamed() {
        let (btf, out) = run(
            &datasec_btf("?.struct_ops"),
            lacks(|l| l.qmark_datasec = true),
        );
        assert_eq!(out.types[4].kind, BtfKind::Datasec);
        assert_eq!(name(&out, 4), "_.struct_ops");
        // A DATASEC not named ?... is left alone.
        let (_, out2) = run(&datasec_btf(".data"), lacks(|l| l.qmark_datasec = true));
        assert_eq!(name(&out2, 4), ".data");
        assert_eq!(btf.types[2], out.types[2]);
    }

    #[test]
    fn names_list_what_is_lacked() {
        assert!(BtfLacks::default().names().is_empty());
        assert_eq!(BtfLacks::ALL.names().len(), 9);
        let l = lacks(|l| l.float = true).union(lacks(|l| l.enum64 = true));
        assert_eq!(l.names(), ["FLOAT", "ENUM64"]);
    }
}
