//! The network model: pure functions, no I/O. The CIDR rules VPCs and subnets obey, and
//! reachability over a snapshot of the VPC model (`reach`), so that both can be unit- and
//! property-tested without a server or a database.

pub mod cidr;
pub mod held;
pub mod reach;
