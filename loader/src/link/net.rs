//! Network hooks that are not a device's: network namespace links
//! (sk_lookup, flow_dissector), sockmap and sockhash programs (sk_msg,
//! sk_skb), netfilter links, and socket filters on a caller's socket.

use super::{unsupported, AttachTargets, Link, LinkError};
use crate::load::Program;
use crate::obj::ProgramSpec;

/// Attaches a network program where its section says.
pub(super) fn attach(
    _program: &Program,
    spec: &ProgramSpec,
    _targets: &AttachTargets,
) -> Result<Vec<Link>, LinkError> {
    Err(unsupported(spec, format!("section {}", spec.section())))
}
