//! kumori's data plane: the network model (`kumori-net`) realised as Linux networking, so
//! that packets meet the security groups, network ACLs, route tables, gateways and
//! peerings the reachability engine reasons about.
//!
//! - `plan`: model → the fabric it asks for (namespaces, links, commands, rulesets). Pure.
//! - `kernel`: a `Reconciler` applying the difference between plans; `sweep` removes all of
//!   a prefix's namespaces.
//! - `netns`: running code inside a named namespace (a thread that `setns`es).
//! - `probe`: real TCP, UDP and ICMP exchanges between two namespaces.
//!
//! The services layer builds the `Network` from the store; the server runs the reconciler
//! after every change. Design notes: `DESIGN.md` beside this crate.

pub mod kernel;
pub mod netns;
pub mod plan;
pub mod probe;

pub use kernel::{Reconciler, Report, check_capable};
pub use plan::{Fabric, Names, Options, plan};
