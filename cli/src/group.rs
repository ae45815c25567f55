//! `rawbpf attach OBJ` without `--dev` (a named group of links from one
//! load), `detach --name GROUP` / `detach --all`, and the kernel's links in
//! `list`.

use crate::cli::Parsed;
use crate::json::{Escaped, Json};
use crate::Failure;
use rawbpf::link::group::{self, GroupDir, GroupError, GroupOptions, KernelLink};
use rawbpf::link::AttachTargets;
use rawbpf::{LoadOptions, ObjectSpec};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Flags only a `--dev` attach takes.
const DEV_ONLY: &[&str] = &[
    "--ingress",
    "--egress",
    "--xdp",
    "--xdp-mode",
    "--tail",
    "--priority",
    "--replace",
    "--mode",
];
/// Flags only a group attach takes.
pub const GROUP_ONLY: &[&str] = &[
    "--name",
    "--cgroup",
    "--pid",
    "--uprobe-binary",
    "--uprobe-symbol",
    "--netfilter",
    "--foreground",
];

/// The default group name: the object file's name without `.o` and
/// `.bpf`, with anything but letters, digits, `_`, `-` and `.` made `_`.
fn default_name(file: &str) -> String {
    let base = Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("group");
    let base = base.strip_suffix(".o").unwrap_or(base);
    let base = base.strip_suffix(".bpf").unwrap_or(base);
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if name.is_empty() {
        "group".to_owned()
    } else {
        name
    }
}

fn targets(p: &Parsed) -> Result<AttachTargets, Failure> {
    let mut t = AttachTargets::default();
    t.cgroup = p.value("--cgroup").map(PathBuf::from);
    t.netns = p.value("--netns").map(str::to_owned);
    t.pid =
        p.value("--pid")
            .map(|v| {
                v.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    Failure::Usage(format!("attach: --pid {v}: expected a process id"))
                })
            })
            .transpose()?;
    t.uprobe_binary = p.value("--uprobe-binary").map(PathBuf::from);
    t.uprobe_symbol = p.value("--uprobe-symbol").map(str::to_owned);
    t.netfilter = p
        .value("--netfilter")
        .map(|v| {
            v.parse()
                .map_err(|e| Failure::Usage(format!("attach: --netfilter {v}: {e}")))
        })
        .transpose()?;
    Ok(t)
}

fn group_err(file: Option<&str>, e: GroupError) -> Failure {
    match (file, &e) {
        (Some(f), GroupError::Load(l)) => Failure::Error(format!("{f}: {}", crate::load_err(l))),
        (_, GroupError::BadName(_)) => Failure::Usage(e.to_string()),
        (_, GroupError::Link(rawbpf::link::LinkError::NotPinnable { .. })) => Failure::Error(
            format!("{e} (attach --foreground runs it, unpinned, while the command runs)"),
        ),
        _ => Failure::Error(e.to_string()),
    }
}

/// `rawbpf attach OBJ [--name GROUP] [--prog NAME]... [--cgroup PATH] ...`
pub fn attach(p: &Parsed) -> Result<String, Failure> {
    if let Some(flag) = DEV_ONLY
        .iter()
        .find(|f| p.switch(f) || p.value(f).is_some())
    {
        return Err(Failure::Usage(format!(
            "attach: {flag} needs --dev (without --dev, attach makes a group of links)"
        )));
    }
    let file = p.positional[0].as_str();
    if p.switch("--foreground") {
        return foreground(p, file);
    }
    let name = p
        .value("--name")
        .map_or_else(|| default_name(file), str::to_owned);
    group::check_name(&name).map_err(|e| Failure::Usage(format!("attach: --name: {e}")))?;
    let (spec, load, opts) = selection(p, file, name)?;
    let g = group::attach(&spec, &load, &opts).map_err(|e| group_err(Some(file), e))?;
    if p.switch("--json") {
        return Ok(format!("{}\n", attach_json(file, &g)));
    }
    for w in &g.warnings {
        crate::warn(w);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "attached group {} from {file}: {} link{}",
        g.name,
        g.links.len(),
        if g.links.len() == 1 { "" } else { "s" }
    );
    for l in &g.links {
        let link = match l.link_id {
            Some(id) => format!("link id {id}"),
            // A plain .struct_ops map: registered while the map lives.
            None if l.section.starts_with(".struct_ops") => {
                "registered by the pinned map (a .struct_ops map, not a link)".to_owned()
            }
            None => "held by the pinned map (no link on this kernel)".to_owned(),
        };
        let _ = writeln!(
            out,
            "  program {} ({}) -> {}: {link}",
            l.program, l.section, l.target
        );
    }
    for (prog, why) in &g.skipped {
        let _ = writeln!(out, "  skipped {prog}: {why}");
    }
    for (n, id, _) in &g.maps {
        let _ = writeln!(out, "  map     {n} id {id}");
    }
    let _ = writeln!(
        out,
        "pinned under {} (rawbpf detach --name {} removes it)",
        g.dir.display(),
        g.name
    );
    Ok(out)
}

/// What a group attach or a foreground attach loads and attaches: the
/// object, its load options (`--btf`, `--set`) and the selection
/// (`--prog`, the target flags) under `name`.
fn selection(
    p: &Parsed,
    file: &str,
    name: String,
) -> Result<(ObjectSpec, LoadOptions, GroupOptions), Failure> {
    let opts = GroupOptions {
        name,
        programs: p.values("--prog").map(str::to_owned).collect(),
        targets: targets(p)?,
    };
    let spec = ObjectSpec::from_file(file)?;
    let load = LoadOptions {
        target_btf: p.value("--btf").map(PathBuf::from),
        globals: crate::load::set_flags(p, &spec)?,
        pin_by_name_dir: crate::load::pin_maps_dir(p),
        ..LoadOptions::for_file(Path::new(file))
    };
    Ok((spec, load, opts))
}

/// `attach OBJ --foreground`: the group's selection attached without pins
/// until SIGINT or SIGTERM, then detached (exit 0). For what bpffs cannot
/// pin (tracepoints and kprobes before 5.15) and for watching a tool run.
fn foreground(p: &Parsed, file: &str) -> Result<String, Failure> {
    if p.value("--name").is_some() {
        return Err(Failure::Usage(
            "attach: --name names a pinned group; --foreground pins nothing".into(),
        ));
    }
    // Before anything is attached: an interrupt from here on detaches.
    crate::signals::catch_interrupts()
        .map_err(|e| Failure::Error(format!("attach: holding SIGINT and SIGTERM: {e}")))?;
    let (spec, load, opts) = selection(p, file, String::new())?;
    let session =
        rawbpf::link::session::attach(&spec, &load, &opts).map_err(|e| group_err(Some(file), e))?;
    for w in &session.collection.warnings {
        crate::warn(w);
    }
    let mut out = String::new();
    if p.switch("--json") {
        let links = session.links.iter().map(|l| {
            let id = l.info().ok().flatten().map(|i| i.id);
            Json::Obj(vec![
                ("program", l.program().into()),
                ("target", l.target().into()),
                ("link_id", Json::opt(id, Json::from)),
            ])
        });
        let maps = session
            .collection
            .maps
            .iter()
            .map(|m| Json::Obj(vec![("name", m.name().into()), ("id", m.id().into())]));
        let doc = Json::Obj(vec![
            ("file", file.into()),
            ("links", Json::Arr(links.collect())),
            ("maps", Json::Arr(maps.collect())),
            ("pinned", Json::Bool(false)),
        ]);
        let _ = writeln!(out, "{doc}");
    } else {
        let n = session.links.len();
        let _ = writeln!(
            out,
            "attached {n} link{} from {file}, nothing pinned",
            if n == 1 { "" } else { "s" }
        );
        for l in &session.links {
            let _ = writeln!(out, "  program {} -> {}", l.program(), l.target());
        }
        for (prog, why) in &session.skipped {
            let _ = writeln!(out, "  skipped {prog}: {why}");
        }
        for m in &session.collection.maps {
            let _ = writeln!(out, "  map     {} id {}", m.name(), m.id());
        }
        let _ = writeln!(
            out,
            "running until Ctrl-C (SIGINT) or SIGTERM; then detached"
        );
    }
    crate::print(&out)?;
    crate::signals::wait_for_interrupt()
        .map_err(|e| Failure::Error(format!("attach: waiting for SIGINT: {e}")))?;
    let n = session.links.len();
    drop(session);
    Ok(if p.switch("--json") {
        String::new()
    } else {
        format!("detached {n} link{}\n", if n == 1 { "" } else { "s" })
    })
}

/// `attach --json` of a group.
fn attach_json(file: &str, g: &group::Group) -> Json {
    let links = g
        .links
        .iter()
        .map(|l| {
            Json::Obj(vec![
                ("program", l.program.as_str().into()),
                ("section", l.section.as_str().into()),
                ("target", l.target.as_str().into()),
                ("prog_id", l.prog_id.into()),
                ("link_id", Json::opt(l.link_id, Json::from)),
                ("pin", l.pin.display().to_string().into()),
            ])
        })
        .collect();
    let maps = g
        .maps
        .iter()
        .map(|(n, id, pin)| {
            Json::Obj(vec![
                ("name", n.as_str().into()),
                ("id", (*id).into()),
                ("pin", pin.display().to_string().into()),
            ])
        })
        .collect();
    let skipped = g
        .skipped
        .iter()
        .map(|(prog, why)| {
            Json::Obj(vec![
                ("program", prog.as_str().into()),
                ("reason", why.as_str().into()),
            ])
        })
        .collect();
    Json::Obj(vec![
        ("file", file.into()),
        ("name", g.name.as_str().into()),
        ("pin_dir", g.dir.display().to_string().into()),
        ("links", Json::Arr(links)),
        ("maps", Json::Arr(maps)),
        ("skipped", Json::Arr(skipped)),
        (
            "warnings",
            Json::Arr(g.warnings.iter().map(|w| w.as_str().into()).collect()),
        ),
    ])
}

/// `rawbpf detach --name GROUP`, or `rawbpf detach --all` without `--dev`.
pub fn detach(p: &Parsed) -> Result<String, Failure> {
    for flag in ["--ingress", "--egress", "--xdp", "--priority", "--netns"] {
        if p.switch(flag) || p.value(flag).is_some() {
            return Err(Failure::Usage(format!("detach: {flag} needs --dev")));
        }
    }
    let done = match p.value("--name") {
        Some(_) if p.switch("--all") => {
            return Err(Failure::Usage(
                "detach: --name and --all exclude each other".into(),
            ))
        }
        Some(name) => vec![group::detach(name).map_err(|e| group_err(None, e))?],
        None => {
            let done = group::detach_all().map_err(|e| group_err(None, e))?;
            // And the link iterator `list` keeps pinned (reloaded on use).
            let _ = rawbpf::link::kernel_links::remove_iterator_cache();
            done
        }
    };
    if p.switch("--json") {
        let rows = done
            .iter()
            .map(|d| {
                Json::Obj(vec![
                    ("name", d.name.as_str().into()),
                    ("removed", d.removed.into()),
                    ("links_detached", d.links.into()),
                    (
                        "reconciled",
                        Json::Arr(
                            d.reconciled
                                .iter()
                                .map(|r| r.display().to_string().into())
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect();
        return Ok(format!(
            "{}\n",
            Json::Obj(vec![("groups", Json::Arr(rows))])
        ));
    }
    let mut out = String::new();
    if done.is_empty() {
        out.push_str("no groups were attached\n");
    }
    for d in &done {
        for r in &d.reconciled {
            let _ = writeln!(
                out,
                "reconciled {}: what a stopped rawbpf left of group {}",
                r.display(),
                d.name
            );
        }
        if d.removed {
            let _ = writeln!(
                out,
                "detached group {} ({} link{}) and removed its pins",
                d.name,
                d.links,
                if d.links == 1 { "" } else { "s" }
            );
        }
    }
    Ok(out)
}

/// The kernel's links and rawbpf's group directories, for `list`.
pub struct Links {
    links: Vec<KernelLink>,
    groups: Vec<GroupDir>,
}

/// Reads every link and group.
pub fn read() -> Result<Links, Failure> {
    Ok(Links {
        // The link iterator, loaded once and kept pinned in rawbpf's cache.
        links: rawbpf::link::kernel_links::list_links_with(
            &rawbpf::link::kernel_links::ListOptions::with_iterator_pin(
                rawbpf::link::kernel_links::default_iterator_pin(),
            ),
        )
        .map_err(|e| group_err(None, e))?,
        groups: group::groups().map_err(|e| group_err(None, e))?,
    })
}

fn state(g: &GroupDir) -> &'static str {
    match g.staged_by {
        None => "attached",
        Some(_) if g.stager_runs() => "in progress",
        Some(_) => "half-done",
    }
}

impl Links {
    /// `list --json`'s `links` and `groups`.
    pub fn json(&self) -> [(&'static str, Json); 2] {
        let links = Json::Raw(self.links_json());
        let groups = self
            .groups
            .iter()
            .map(|g| {
                Json::Obj(vec![
                    ("name", g.name.as_str().into()),
                    ("path", g.path.display().to_string().into()),
                    ("state", state(g).into()),
                    ("pid", Json::opt(g.staged_by, Json::from)),
                    (
                        "links",
                        Json::Arr(
                            g.links
                                .iter()
                                .map(|(pin, id)| {
                                    Json::Obj(vec![
                                        ("pin", pin.as_str().into()),
                                        ("id", Json::opt(*id, Json::from)),
                                    ])
                                })
                                .collect(),
                        ),
                    ),
                    (
                        "maps",
                        Json::Arr(g.maps.iter().map(|m| m.as_str().into()).collect()),
                    ),
                    (
                        "clears_it",
                        Json::opt(g.half_done().then(|| clears(g)), Json::from),
                    ),
                ])
            })
            .collect();
        [("links", links), ("groups", Json::Arr(groups))]
    }

    /// The `links` array, written straight into one string: a host can
    /// have thousands of links, and a tree of values costs allocations per
    /// field (the issue 21 bench lists 1,000). The same text as a
    /// [`Json::Obj`] per link.
    fn links_json(&self) -> String {
        let mut out = String::with_capacity(2 + self.links.len() * 160);
        out.push('[');
        for (i, l) in self.links.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"id\":{},\"type\":{},\"prog_id\":{},\"prog_name\":{},\"target\":{},\"group\":",
                l.id,
                Escaped(&group::link_type_name(l.link_type)),
                l.prog_id,
                Escaped(&l.prog_name),
                Escaped(&l.target),
            );
            match &l.group {
                Some(g) => {
                    let _ = write!(out, "{}}}", Escaped(g));
                }
                None => out.push_str("null}"),
            }
        }
        out.push(']');
        out
    }

    /// `list`'s text after the TC/TCX/XDP view.
    pub fn text(&self, out: &mut String) {
        if self.links.is_empty() {
            out.push_str("no BPF links\n");
        } else {
            out.push_str("\nBPF links:\n");
            let mut rows = vec![["ID", "TYPE", "PROG_ID", "PROG", "TARGET", "GROUP"]
                .map(String::from)
                .to_vec()];
            for l in &self.links {
                rows.push(vec![
                    l.id.to_string(),
                    group::link_type_name(l.link_type),
                    l.prog_id.to_string(),
                    l.prog_name.clone(),
                    if l.target.is_empty() {
                        "-".to_owned()
                    } else {
                        l.target.clone()
                    },
                    l.group.clone().unwrap_or_else(|| "-".to_owned()),
                ]);
            }
            crate::inspect::table(out, &rows);
        }
        for g in &self.groups {
            match state(g) {
                "attached" => {}
                "in progress" => {
                    let _ = writeln!(
                        out,
                        "in progress: {}: group {} (rawbpf pid {})",
                        g.path.display(),
                        g.name,
                        g.staged_by.unwrap_or(0)
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "half-done: {}: group {} left by a stopped rawbpf (pid {}), {} link{} still pinned; cleared by {}",
                        g.path.display(),
                        g.name,
                        g.staged_by.unwrap_or(0),
                        g.links.len(),
                        if g.links.len() == 1 { "" } else { "s" },
                        clears(g)
                    );
                }
            }
        }
    }
}

fn clears(g: &GroupDir) -> String {
    format!(
        "rawbpf detach --name {} (or the next attach --name {})",
        g.name, g.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        assert_eq!(default_name("objs/minimal.bpf.o"), "minimal");
        assert_eq!(default_name("x/tcx.o"), "tcx");
        assert_eq!(default_name("a b+c.o"), "a_b_c");
        assert_eq!(default_name(".o"), "group");
    }
}
