//! The network model: pure functions, no I/O. For now the CIDR rules VPCs and subnets obey;
//! the reachability engine will live here too, so that it can be unit- and property-tested
//! without a server or a database.

pub mod cidr;
